"""``[batch]``: the model portfolios and prices of a batch of accounts (``trimtab batch``).

A batch rebalances many accounts, each toward one of a few model portfolios
named by id; the accounts themselves (holdings, model id, cash flow,
restrictions) come from the accounts file given on the command line
(:mod:`scenarios.batch.accounts`). The scenario file gives what the accounts
share::

    [batch]
    prices = { US_EQ = 412.5, ... }     # price per unit by asset (every tradeable asset);
                                        # needed when the accounts give quantities

    [batch.pooled]                      # optional: limits on the trade pooled across accounts
    kind = "gross"                      # or "net": what is pooled per asset
    cap_adv = 0.10                      # cap each pooled trade at 10% of [costs].adv, or
    cap = { US_EQ = 5e6 }               #   caps in currency by asset
    impact = 0.1                        # impact k sigma_j |Q_j|^1.5 / sqrt(adv_j) on the
                                        #   pooled trade (needs [costs].adv)

    [[batch.models]]
    id = "growth"                       # the accounts file names it in its ``model`` column
    weights = { US_EQ = 0.6, ... }      # target weights (decimals, sum to 1; others 0)

The covariance comes from ``[estimates]``, the policy constraints from
``[constraints]``, the costs from ``[costs]`` and the rebalance options from
``[rebalance]`` (which a batch scenario may give without ``[holdings]``; its
``cash_flow`` and ``threshold`` are per account, so not used there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from scenarios.loader import Table, frozen_mapping, join
from scenarios.schema.common import SHORTS, Names, by_asset, check_sum

_BATCH = ("models", "prices", "pooled")
_MODEL = ("id", "weights")
_POOLED = ("kind", "cap_adv", "cap", "impact")


@dataclass(frozen=True, eq=False)
class BatchSpec:
    """The ``[batch]`` section.

    Attributes
    ----------
    models : mapping model id -> pandas.Series
        Target weights (decimals) of each model portfolio, every asset of the
        universe in ``[[assets]]`` order (0 when not named), summing to 1.
    prices : pandas.Series or None
        Price per unit (currency) of the assets priced, in universe order.
    pooled : dict or None
        The ``[batch.pooled]`` limits on the trade pooled across accounts:
        ``kind`` ("gross" or "net") and any of ``cap_adv`` (fraction of
        ``[costs].adv``), ``cap`` (currency by asset), ``impact`` (the
        coefficient ``k``); read by :mod:`scenarios.batch.pooled`.
    """

    models: Mapping[str, pd.Series]
    prices: pd.Series | None = None
    pooled: Mapping[str, Any] | None = None


def read_batch(top: Table, names: Names, long_only: bool) -> BatchSpec | None:
    """The ``[batch]`` section, or None when the file has none.

    Raises
    ------
    InputError
        No ``[[batch.models]]``, a duplicate or badly formed model id, weights
        naming unknown assets, negative while long-only, or not summing to 1,
        prices not positive (each with its key path).
    """
    t = top.table("batch", _BATCH)
    if t is None:
        return None
    tables = t.tables("models", _MODEL)
    if not tables:
        raise t.error(
            "models",
            'missing (required): add at least one [[batch.models]] with id = "..." and '
            "weights = { asset = weight, ... }",
        )
    models: dict[str, pd.Series] = {}
    for m in tables:
        mid = m.string("id")
        if mid in models:
            raise m.error("id", f"duplicate model id {mid!r}: each [[batch.models]] id is unique")
        weights = by_asset(m, "weights", names, every=False)
        if long_only and (weights < 0).any():
            bad = weights.index[weights < 0][0]
            raise m.r.error(
                join(m.path("weights"), bad), f"negative weight {weights[bad]:g}{SHORTS}"
            )
        check_sum(m, "weights", float(weights.sum()), f"model {mid!r} weights")
        models[mid] = weights.reindex(names.assets, fill_value=0.0).rename(mid)
    prices = by_asset(t, "prices", names, every=False, default=None, low=0, strict_low=True)
    pooled = None
    p = t.table("pooled", _POOLED)
    if p is not None:
        pooled = {"kind": p.string("kind", "gross", choices=("gross", "net"))}
        if "cap_adv" in p:
            pooled["cap_adv"] = p.number(
                "cap_adv", low=0, strict_low=True, hint=" (a fraction of adv: 0.1 is 10%)"
            )
        if "cap" in p:
            p.not_with(("cap_adv",), "with batch.pooled.cap (give caps or cap_adv)")
            cap = by_asset(p, "cap", names, every=False, low=0)
            pooled["cap"] = {a: float(v) for a, v in cap.items()}
        if "impact" in p:
            pooled["impact"] = p.number("impact", low=0)
        if len(pooled) == 1:
            raise p.error(None, "give cap_adv, cap or impact (the pooled limits)")
    return BatchSpec(models=frozen_mapping(models), prices=prices, pooled=pooled)
