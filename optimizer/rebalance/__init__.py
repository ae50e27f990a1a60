"""Cost-aware rebalancing: current holdings plus a target become trades worth their cost.

With post-trade value ``V1 = V0 + cash_flow`` and trades ``t`` (currency), the
post-trade weights are ``w = (h + t) / V1``. In weight units (``b - s = t / V1``,
buys ``b`` and sells ``s`` non-negative) the optimizer minimizes

    tracking_weight * (w - target)' C (w - target)      ex-ante tracking variance
    + sum(buy_rate * b + sell_rate * s)                  proportional costs
    + sum(k_i * (b_i + s_i)^1.5),  k_i = impact_i sqrt(V1)  market impact
    + turnover_penalty * sum(b + s)

subject to the policy's constraints on ``w`` (fully invested and long-only by
default) and the trading limits below. Costs are fractions of ``V1``.

``tracking_weight`` is what cutting the tracking error from one point (1%) to
zero is worth, in basis points of cost: ``tracking_weight * 0.01**2`` equals
``tracking_weight`` basis points. The default, 100, pays up to 100 bps to
remove a full point of tracking error, about 4 bps for the last 0.2 points.

Definitions
-----------
* **Trades in weight units**: ``t = (after - before) / V1``, the value after
  trading less the value before, over the post-trade value.
* **Turnover cap** (``max_turnover=``, the constraint ``"turnover cap"``):
  ``sum_i |t_i| <= max_turnover``, traded notional (buys plus sells) over
  ``V1``. A withdrawal or contribution counts: its trades are traded notional.
* **Participation limit** (``participation=``, ``"participation limit"``):
  ``|t_i| V1 <= participation * adv_i`` in every asset.
* **Reported turnover** (``RebalancePlan.turnover``): traded notional over the
  account's value *before* trading, ``V0`` (a figure to report, not the cap's
  measure); an account of cash only (``V0 = 0``) is measured against the cash
  it invests, ``V1``, so buying it into the target is 100%. Always finite.
* **Liquidation**: a withdrawal of the whole portfolio (``V1 = 0``, to within
  ``LIQUIDATION_TOL`` of ``V0``) sells every position, without a solve; the
  plan's ``status`` is ``"liquidation"`` and its notes say so. The turnover cap
  and the participation limits still hold (a breach is an ``InfeasibleError``
  naming them); a withdrawal above ``V0`` is an error naming both amounts.

Both limits are constraints of the program and are verified again on the final
plan, after rounding to whole lots; rounding keeps them (it rounds toward zero
and drops lots where needed), and a breach it cannot avoid (a withdrawal that
must be met in whole lots) is reported by name in ``plan.checks`` and the notes.

Fixed ticket costs are not convex: a two-stage method handles them
(:mod:`optimizer.rebalance.fixed`). Soft constraints (``priority=``) give way by
priority when the whole set cannot hold (:mod:`optimizer.soft`), with the
trade limits and the untradeable assets counted; ``plan.relaxed`` says what gave.

Layout
------
:mod:`~optimizer.rebalance.rebalancer` (the held :class:`Rebalancer`),
:mod:`~optimizer.rebalance.account` (one account's inputs and account pieces),
:mod:`~optimizer.rebalance.program` (the program's named variable blocks),
:mod:`~optimizer.rebalance.tracking` (the tracking term as a deviation),
:mod:`~optimizer.rebalance.session` (the solves of one plan),
:mod:`~optimizer.rebalance.fixed` (tickets and minimum trades),
:mod:`~optimizer.rebalance.lots` (whole lots), :mod:`~optimizer.rebalance.plan`
(the plan), :mod:`~optimizer.rebalance.pooled` (limits and impact pooled across
accounts, with :mod:`~optimizer.rebalance.pooled_book`), and the tax-aware plans:
:mod:`~optimizer.rebalance.taxlots` (:class:`TaxLots`, :class:`RecentTrades`,
:class:`TaxModel`), :mod:`~optimizer.rebalance.tax` (lot sales, the convex tax, the
directions) and :mod:`~optimizer.rebalance.taxplan` (inputs, lot sales after
rounding, the tax report). The one-shot
:func:`rebalance` reads its inputs by content: it takes a :class:`Rebalancer`
from :data:`SHARED`, a bounded cache keyed by the content of the covariance,
constraints, universe, costs and options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from optimizer.compiled import ContentCache
from optimizer.constraints import constraint_tuple
from optimizer.costs import CostModel
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.rebalance.discrete import DiscreteAllocation, discrete_allocation
from optimizer.rebalance.pooled import (
    AccountBook,
    PooledLimits,
    PooledOutcome,
    pooled_rebalance,
)
from optimizer.rebalance.rebalancer import DEFAULT_TRACKING_WEIGHT, Rebalancer
from optimizer.rebalance.taxlots import RecentTrades, TaxLots, TaxModel
from optimizer.riskmodel import content_key
from optimizer.trades import RebalancePlan
from optimizer.universe import Universe
from optimizer.values import content

__all__ = [
    "DEFAULT_TRACKING_WEIGHT",
    "SHARED",
    "AccountBook",
    "CostModel",
    "DiscreteAllocation",
    "PooledLimits",
    "PooledOutcome",
    "Rebalancer",
    "RecentTrades",
    "TaxLots",
    "TaxModel",
    "discrete_allocation",
    "pooled_rebalance",
    "rebalance",
    "rebalance_batch",
    "shared",
]

#: The one-shot calls' rebalancers, keyed by content and bounded in bytes (never changes an
#: answer: a hit is a rebalancer built from equal inputs).
SHARED = ContentCache(max_bytes=32 * 2**20, max_items=32)

#: Keyword options that fix a :class:`Rebalancer` (the rest of :func:`rebalance`'s are per plan).
OPTIONS = (
    "tracking_weight",
    "turnover_penalty",
    "max_turnover",
    "no_trade_bands",
    "band_to",
    "min_trade",
    "lot_size",
    "untradeable",
    "participation",
    "solvers",
    "holdings_as",
    "currency",
)


def shared(
    cov,
    *,
    costs: CostModel | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    **options,
) -> Rebalancer:
    """The :class:`Rebalancer` of this content from :data:`SHARED` (made on a miss).

    Parameters
    ----------
    cov, costs, constraints, universe, **options
        As for :class:`Rebalancer`.
    """
    cons = constraint_tuple(constraints)
    key = (
        "rebalance",
        content_key(cov),
        cons,
        universe,
        costs,
        tuple((k, content(options[k])) for k in sorted(options)),
    )

    def make() -> Rebalancer:
        return Rebalancer(cov, costs=costs, constraints=cons, universe=universe, **options)

    return SHARED.get(key, make)


def rebalance(
    holdings: pd.Series,
    target: pd.Series,
    *,
    cov,
    costs: CostModel | None = None,
    prices: pd.Series | None = None,
    holdings_as: str = "value",
    cash_flow: float = 0.0,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    tracking_weight: float = DEFAULT_TRACKING_WEIGHT,
    turnover_penalty: float = 0.0,
    max_turnover: float | None = None,
    no_trade_bands: float | Mapping[str, float] | None = None,
    band_to: str = "edge",
    min_trade: float = 0.0,
    lot_size: float | Mapping[str, float] | None = None,
    untradeable: Sequence[str] = (),
    participation: float | None = None,
    solvers: Sequence[str] | None = None,
    as_of=None,
    portfolio_id: str | None = None,
    currency: str | None = None,
) -> RebalancePlan:
    """Trades that move ``holdings`` toward ``target`` when they are worth their cost.

    The one-shot form of ``Rebalancer(cov, ...).plan(holdings, target, ...)``:
    the rebalancer is looked up by the content of its inputs, so a batch of
    calls with the same covariance, constraints and costs compiles once.

    Parameters
    ----------
    holdings : pandas.Series
        Market values by asset (currency), or quantities with ``holdings_as="quantity"``
        and ``prices``. Assets of the covariance missing here hold nothing.
    target : pandas.Series
        Target weights (decimals) summing to the budget (1 unless a ``Budget`` is given).
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance; fixes the assets and their order.
    costs : CostModel, optional
        Proportional, impact and fixed costs; none by default.
    prices : pandas.Series, optional
        Price per unit; turns notionals into quantities (rounded to ``lot_size``).
    holdings_as : {"value", "quantity"}
        What ``holdings`` holds.
    cash_flow : float
        Currency to invest (> 0) or to raise (< 0); the trades sum to it exactly
        (less the cash left idle by rounding to lots). Raising the whole
        portfolio is a liquidation: every position is sold (the notes say so).
    constraints, universe
        Policy constraints on the post-trade weights, as for allocation (hard,
        or soft with ``priority=``).
    tracking_weight : float
        Basis points of cost worth paying to cut tracking error from 1 point to 0
        (module docstring); default 100.
    turnover_penalty : float
        Extra cost per unit of traded weight (decimal, 0.001 is 10 bps).
    max_turnover : float, optional
        Cap on traded notional over the post-trade value (buys plus sells).
    no_trade_bands : float or mapping asset -> float, optional
        Assets whose weight is within the band of target are not traded; the
        others are brought back inside the band (``band_to="edge"``, a hard
        limit) or traded freely toward target (``band_to="target"``).
    band_to : {"edge", "target"}
    min_trade : float
        Smallest trade (currency); smaller trades are dropped unless dropping
        them would break a constraint, in which case they are kept at this size.
    lot_size : float or mapping, optional
        Round quantities to multiples of this (1 for whole shares); needs ``prices``.
    untradeable : sequence of str
        Assets that stay as they are (private equity, hedge funds).
    participation : float, optional
        Trade at most this fraction of the average daily value (``costs.adv``).
    solvers : sequence of str, optional
        Solver chain.
    as_of, portfolio_id, currency
        Carried into the orders.

    Returns
    -------
    RebalancePlan

    Raises
    ------
    InputError
        Unknown assets, negative holdings in a long-only account, a target not
        summing to the budget, missing prices for an asset that must trade, NaN.
    InfeasibleError
        A withdrawal above what the tradeable assets hold (the message says how
        much can be raised), or hard constraints that cannot hold after trading.
    SolverError
        Every solver failed.
    """
    rb = shared(
        cov,
        costs=costs,
        constraints=constraints,
        universe=universe,
        tracking_weight=tracking_weight,
        turnover_penalty=turnover_penalty,
        max_turnover=max_turnover,
        no_trade_bands=no_trade_bands,
        band_to=band_to,
        min_trade=min_trade,
        lot_size=lot_size,
        untradeable=untradeable,
        participation=participation,
        solvers=solvers,
        holdings_as=holdings_as,
        currency=currency,
    )
    return rb.plan(
        holdings,
        target,
        prices=prices,
        cash_flow=cash_flow,
        as_of=as_of,
        portfolio_id=portfolio_id,
    )


def rebalance_batch(holdings: pd.DataFrame, target, **kwargs) -> dict[str, RebalancePlan]:
    """Rebalance many accounts that share a structure, with one :class:`Rebalancer`.

    Parameters
    ----------
    holdings : pandas.DataFrame
        One row per account (index: account id), one column per asset
        (market values, currency).
    target : pandas.Series or pandas.DataFrame
        One target for all accounts, or one row per account.
    **kwargs
        As for :func:`rebalance` (``cov``, ``costs``, ``constraints``, ...);
        ``cash_flow`` may be a Series by account.

    Returns
    -------
    dict
        Account id -> :class:`RebalancePlan`. An account that fails raises its
        error with the account id added to the message.
    """
    if not isinstance(holdings, pd.DataFrame):
        raise InputError("holdings must be a DataFrame, one row per account")
    if "cov" not in kwargs:
        raise InputError("rebalance_batch needs cov=")
    flows = kwargs.pop("cash_flow", 0.0)
    per_plan = {k: kwargs.pop(k) for k in ("prices", "as_of") if k in kwargs}
    kwargs.pop("portfolio_id", None)
    cov = kwargs.pop("cov")
    unknown = set(kwargs) - set(OPTIONS) - {"costs", "constraints", "universe"}
    if unknown:
        raise InputError(f"rebalance_batch got unknown keyword {sorted(unknown)[0]!r}")
    rb = Rebalancer(cov, **kwargs)
    plans = {}
    for account, row in holdings.iterrows():
        tgt = target.loc[account] if isinstance(target, pd.DataFrame) else target
        flow = flows.loc[account] if isinstance(flows, pd.Series) else flows
        try:
            plans[account] = rb.plan(
                row, tgt, cash_flow=flow, portfolio_id=str(account), **per_plan
            )
        except InfeasibleError as exc:
            raise InfeasibleError(f"account {account}: {exc}", exc.diagnosis) from exc
        except SolverError as exc:
            raise SolverError(f"account {account}: {exc}", exc.attempts) from exc
        except InputError as exc:
            raise InputError(f"account {account}: {exc}") from exc
    return plans
