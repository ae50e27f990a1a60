"""``[model]``: the allocation model, its objective and parameters, Black-Litterman views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.black_litterman import View, views_matrix
from scenarios.loader import Table, frozen_mapping, join
from scenarios.schema.common import PCT, Names, by_asset
from scenarios.schema.estimates import EstimatesSpec

MODEL_KINDS = ("mean_variance", "black_litterman", "risk_parity", "min_cvar", "policy")
OBJECTIVES = ("max_sharpe", "min_variance", "target_return", "target_risk", "max_utility")
#: The model key each objective needs.
OBJECTIVE_PARAM = {
    "max_sharpe": None,
    "min_variance": None,
    "target_return": "target_return",
    "target_risk": "target_volatility",
    "max_utility": "risk_aversion",
}
PRIORS = ("policy", "equal")

_MODEL = (
    "kind",
    "objective",
    "target_return",
    "target_volatility",
    "risk_aversion",
    "tau",
    "prior",
    "views",
    "budgets",
    "alpha",
    "l2_gamma",
)
_VIEW = ("picks", "value", "confidence", "name")


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """The allocation model.

    ``kind``: mean_variance | black_litterman | risk_parity | min_cvar | policy.
    ``objective``: the mean-variance objective (mean_variance and
    black_litterman only, else None). ``params``: the model keys that apply,
    with defaults filled in: ``target_return``, ``target_volatility`` or
    ``risk_aversion`` as the objective needs, and ``l2_gamma`` when given (the
    L2 regularization of the mean-variance objective; absent: 0); for black_litterman also
    ``tau``, ``prior`` ("policy" | "equal") and ``risk_aversion``; for
    risk_parity ``budgets`` (Series by asset, or None for equal risk); for
    min_cvar ``alpha`` and, when given, ``target_return``. ``views``: the
    Black-Litterman views (may name tags: pass ``universe=``).
    """

    kind: str
    objective: str | None
    params: Mapping[str, Any]
    views: tuple[View, ...] = ()


def read_model(top: Table, names: Names, est: EstimatesSpec, policy: pd.Series | None) -> ModelSpec:
    """The ``[model]`` section (mean-variance max-Sharpe when absent)."""
    t = top.table("model", _MODEL)
    if t is None:
        t = Table(top.r, {}, "model", _MODEL)
    kind = t.string("kind", "mean_variance", choices=MODEL_KINDS)
    objective = None
    applies = {"kind"}
    if kind in ("mean_variance", "black_litterman"):
        objective = t.string("objective", "max_sharpe", choices=OBJECTIVES)
        applies |= {"objective", "l2_gamma"}
        if OBJECTIVE_PARAM[objective]:
            applies.add(OBJECTIVE_PARAM[objective])
    if kind == "black_litterman":
        applies |= {"tau", "prior", "views", "risk_aversion"}
    elif kind == "risk_parity":
        applies.add("budgets")
    elif kind == "min_cvar":
        applies |= {"alpha", "target_return"}
    for key in t.data:
        if key not in applies:
            why = f"with kind = {kind!r}"
            if objective is not None and key in OBJECTIVE_PARAM.values():
                why += f" and objective = {objective!r}"
            raise t.error(key, f"not used {why}")

    params: dict[str, Any] = {}
    wanted = OBJECTIVE_PARAM[objective] if objective is not None else None
    if wanted == "target_return":
        params["target_return"] = t.number("target_return", low=-1, high=1, hint=PCT)
    elif wanted == "target_volatility":
        params["target_volatility"] = t.number(
            "target_volatility", low=0, high=2, strict_low=True, hint=PCT
        )
    if wanted == "risk_aversion" or kind == "black_litterman":
        params["risk_aversion"] = t.number("risk_aversion", low=0, strict_low=True)
    if objective is not None and "l2_gamma" in t:
        params["l2_gamma"] = t.number("l2_gamma", low=0)
    if kind == "black_litterman":
        params["tau"] = t.number("tau", 0.05, low=0, high=1, strict_low=True)
    if kind == "min_cvar":
        params["alpha"] = t.number("alpha", 0.95, low=0, high=1, strict_low=True, strict_high=True)
        if "target_return" in t:
            params["target_return"] = t.number("target_return", low=-1, high=1, hint=PCT)
    views: tuple[View, ...] = ()
    if kind == "black_litterman":
        params["prior"] = t.string("prior", "policy", choices=PRIORS)
        if params["prior"] == "policy" and policy is None:
            raise t.error("prior", "'policy' needs a [policy] table (or set prior = 'equal')")
        views = _views(t, names)
    if kind == "risk_parity":
        budgets = by_asset(t, "budgets", names, every=True, default=None, low=0, strict_low=True)
        params["budgets"] = None if budgets is None else budgets.rename("budget")
    if kind == "policy" and policy is None:
        raise t.error("kind", "'policy' needs a [policy] table with the weights")
    if kind == "min_cvar" and est.source == "cma":
        raise t.error(
            "kind", "'min_cvar' needs return scenarios: estimates.source = 'prices' or 'returns'"
        )
    return ModelSpec(kind=kind, objective=objective, params=frozen_mapping(params), views=views)


def _views(t: Table, names: Names) -> tuple[View, ...]:
    """``[[model.views]]``, checked together as a views matrix."""
    out = []
    for v in t.tables("views", _VIEW):
        picks_raw = v.raw("picks")
        if not isinstance(picks_raw, dict) or not picks_raw:
            raise v.error("picks", "expected a non-empty table of asset id or tag -> coefficient")
        for key in picks_raw:
            names.asset_or_tag(v.r, join(v.path("picks"), key), key)
        picks = v.numbers("picks")
        value = v.number("value", low=-1, high=1, hint=PCT)
        confidence = v.number("confidence", None, low=0, high=1)
        name = v.string("name", None)
        with v.r.wrap(v.where):
            out.append(View(picks=picks, value=value, confidence=confidence, name=name))
    with t.r.wrap(t.path("views")):
        views_matrix(out, names.assets, universe=names.universe)
    return tuple(out)
