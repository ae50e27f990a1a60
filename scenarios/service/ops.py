"""What each synchronous endpoint computes, with the engine's own functions.

Each function takes the cache and a loaded scenario (from a JSON document or a
TOML text: :mod:`~scenarios.service.documents`) and returns the JSON-ready answer the command line prints with ``--json``:

- :func:`allocate`: the model's allocation (``scenarios.engine.target_allocation``,
  the tactical overlay included) as :meth:`optimizer.Allocation.to_dict`, with the
  Sharpe ratio at the scenario's rate and the relaxed soft constraints;
- :func:`rebalance`: ``trimtab rebalance --json``: the orders (``trimtab.orders/1``)
  of the plan that moves ``[holdings]`` to the target, or ``{"trade": false, "reasons"}``
  when the threshold trigger says not to trade;
- :func:`frontier`: ``trimtab frontier --json``;
- :func:`run`: ``trimtab run --json`` (:func:`scenarios.outputs.run_report`).

The scenario, its estimates and its target are kept by content
(:class:`~scenarios.service.documents.DocumentCache`), and the rebalance holds
its compiled :class:`~optimizer.rebalance.Rebalancer` (from the bounded
content-keyed cache of :func:`optimizer.rebalance.shared`: a repeated structure
never recompiles) with the holdings, target and prices labelled by the
rebalancer's own asset index (:class:`Trading`), so a repeated account pays
neither the cache's content key nor a pandas index comparison per request.
No cached object changes an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from scenarios.service.documents import DocumentCache


@dataclass(frozen=True)
class Prepared:
    """A scenario with its estimates and target allocation (and tactical overlay)."""

    scenario: Any
    estimates: Any
    allocation: Any
    overlay: Any


def estimates(cache: DocumentCache, scn):
    """The estimates of ``scn`` (cached by its content's SHA-256)."""
    return cache.get(("estimates", scn.sha256), scn.estimates.build)


def prepared(cache: DocumentCache, scn) -> Prepared:
    """The :class:`Prepared` scenario ``scn`` (cached by its content's SHA-256)."""
    from scenarios.engine import target_allocation

    def make() -> Prepared:
        est = estimates(cache, scn)
        alloc, ov = target_allocation(scn, est)
        return Prepared(scn, est, alloc, ov)

    return cache.get(("prepared", scn.sha256), make)


@dataclass(frozen=True)
class Trading:
    """What the rebalance of a scenario with holdings needs, ready for ``Rebalancer.plan``.

    Attributes
    ----------
    scenario : Scenario
    rebalancer : optimizer.rebalance.Rebalancer
        From :func:`optimizer.rebalance.shared` (the scenario's covariance, costs,
        constraints, universe and ``[rebalance]`` options).
    holdings, target : pandas.Series
        Market values (currency) and target weights (decimals) by asset; on the
        rebalancer's own index when they list its assets in its order.
    plan_kwargs : dict
        The per-plan keywords (``prices`` likewise labelled, ``cash_flow``, ``as_of``,
        ``portfolio_id``).
    """

    scenario: Any
    rebalancer: Any
    holdings: pd.Series
    target: pd.Series
    plan_kwargs: dict[str, Any]


def _labelled(values, index: pd.Index):
    """``values`` on ``index`` itself when its labels are the same, in order; else as given."""
    if isinstance(values, pd.Series) and values.index.equals(index):
        return pd.Series(values.to_numpy(), index=index, name=values.name)
    return values


def trading(cache: DocumentCache, scn) -> Trading:
    """The :class:`Trading` of ``scn`` (cached by its content's SHA-256; needs holdings)."""
    from optimizer.rebalance import OPTIONS, shared

    def make() -> Trading:
        p = prepared(cache, scn)
        kw = scn.rebalance.kwargs()
        options = {k: kw.pop(k) for k in OPTIONS if k in kw}
        rb = shared(
            p.estimates.cov,
            costs=scn.costs,
            constraints=list(scn.constraints),
            universe=scn.universe,
            **options,
        )
        if "prices" in kw:
            kw["prices"] = _labelled(kw["prices"], rb.assets)
        holdings = _labelled(scn.holdings.values, rb.assets)
        return Trading(scn, rb, holdings, _labelled(p.allocation.weights, rb.assets), kw)

    return cache.get(("trading", scn.sha256), make)


def allocate(cache: DocumentCache, scn) -> dict[str, Any]:
    """The allocation of a scenario document, JSON-ready."""
    from scenarios.engine import relaxed_of, sharpe

    p = prepared(cache, scn)
    out = p.allocation.to_dict()
    out["sharpe"] = sharpe(p.allocation, p.scenario.estimates.risk_free_rate)
    out["relaxed"] = relaxed_of(p.allocation)
    out["model"] = {"kind": p.scenario.model.kind, "objective": p.scenario.model.objective}
    return out


def rebalance(cache: DocumentCache, scn) -> dict[str, Any]:
    """The orders of a scenario document with ``[holdings]`` (``trimtab rebalance --json``).

    Raises
    ------
    InputError
        No ``holdings`` section.
    """
    from optimizer.triggers import Threshold
    from scenarios.engine import rebalance_decision

    p = prepared(cache, scn)
    if scn.holdings is None:
        raise InputError(
            "request.toml: holdings: missing: a rebalance needs the holdings (values, or "
            "quantities with prices) in a holdings section"
        )
    if scn.rebalance.threshold is not None:
        decision = rebalance_decision(
            scn.holdings.values, p.allocation.weights, Threshold(scn.rebalance.threshold), scn
        )
        if not decision.trade:
            return {"trade": False, "reasons": list(decision.reasons)}
    if scn.taxable:  # tax lots: the plan of `trimtab rebalance` (trimtab.orders/2)
        from scenarios.engine import plan_rebalance

        return plan_rebalance(scn, p.allocation.weights, p.estimates.cov).to_orders()
    t = trading(cache, scn)
    return t.rebalancer.plan(t.holdings, t.target, **t.plan_kwargs).to_orders()


def frontier(cache: DocumentCache, scn, points: int) -> dict[str, Any]:
    """The efficient frontier of a scenario document (``trimtab frontier --json``)."""
    from scenarios.engine import check_frontier_points
    from scenarios.engine import frontier as frontier_of

    check_frontier_points(points, "points")
    return frontier_of(scn, estimates(cache, scn), points, None).to_dict()


def run(cache: DocumentCache, scn) -> dict[str, Any]:
    """The run of a TOML scenario (``trimtab run --json``: report.json's content)."""
    from scenarios.engine import run_scenario
    from scenarios.outputs import run_report

    return run_report(run_scenario(scn))
