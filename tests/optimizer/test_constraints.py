"""Tests of optimizer.constraints and optimizer.universe: lowering to pieces, defaults, errors.

Every constraint object is lowered by ``resolve(constraints, assets, universe)`` to canonical
pieces (``Row``, ``Bound``, ``Norm1``, ``RiskLimit``); the tests check the pieces' numbers and
that every bad input raises ``InputError`` naming the constraint, asset or tag at fault.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from optimizer.constraints import (
    Bound,
    Bounds,
    Budget,
    DeviationBand,
    ExposureLimit,
    GroupLimit,
    LeverageLimit,
    LinearConstraint,
    LongOnly,
    Norm1,
    RiskLimit,
    Row,
    TrackingErrorLimit,
    TurnoverLimit,
    resolve,
    with_defaults,
)
from optimizer.errors import InputError
from optimizer.universe import Universe

ASSETS = pd.Index(["US_EQ", "INTL_EQ", "BONDS", "REITS", "PE"])
UNI = Universe(
    assets=list(ASSETS),
    tags={
        "US_EQ": ["equity", "liquid"],
        "INTL_EQ": ["equity", "liquid"],
        "BONDS": ["fixed income", "liquid"],
        "REITS": ["alternatives"],
        "PE": ["alternatives", "private"],
    },
)
N = len(ASSETS)
NAN = float("nan")


def pieces_of(constraint, universe: Universe | None = UNI) -> list:
    """The pieces one constraint lowers to (defaults are added but filtered out)."""
    cset = resolve([constraint], ASSETS, universe)
    return [p for p in cset.pieces if p.name == constraint.name]


def as_vector(mapping: dict[str, float], default: float = 0.0) -> np.ndarray:
    return np.array([mapping.get(a, default) for a in ASSETS], dtype=float)


# ----------------------------------------------------------------------------- lowering


def test_budget_is_one_equality_row() -> None:
    (row,) = pieces_of(Budget(0.9))
    assert isinstance(row, Row)
    assert row.name == row.label == "budget"
    np.testing.assert_array_equal(row.coef, np.ones(N))
    assert row.lo == row.hi == 0.9


def test_budget_named_and_recorded_on_the_set() -> None:
    cset = resolve([Budget(0.95, name="invested")], ASSETS, None)
    assert cset.budget == 0.95
    assert cset.names[0] == "invested"
    assert not any(isinstance(c, Budget) and c.name == "budget" for c in cset.constraints)


def test_long_only_is_a_zero_floor_on_every_asset() -> None:
    pieces = pieces_of(LongOnly())
    assert [p.index for p in pieces] == list(range(N))
    assert all(isinstance(p, Bound) and p.lo == 0.0 and p.hi == math.inf for p in pieces)
    assert [p.label for p in pieces] == [f"long-only [{a}]" for a in ASSETS]


def test_scalar_bounds_apply_to_every_asset() -> None:
    pieces = pieces_of(Bounds(lower=0.02, upper=0.4, name="policy bounds"))
    assert len(pieces) == N
    for i, p in enumerate(pieces):
        assert (p.index, p.lo, p.hi) == (i, 0.02, 0.4)
        assert p.label == f"policy bounds [{ASSETS[i]}]"


@pytest.mark.parametrize("upper", [np.float32(0.5), np.int64(1), 0.5, 1])
def test_scalar_bounds_accept_numpy_scalars(upper) -> None:
    pieces = pieces_of(Bounds(upper=upper))
    assert [p.hi for p in pieces] == pytest.approx([float(upper)] * N)


def test_per_asset_bounds_only_bound_the_named_assets() -> None:
    pieces = pieces_of(Bounds(lower={"BONDS": 0.1}, upper={"PE": 0.05, "BONDS": 0.6}))
    got = {ASSETS[p.index]: (p.lo, p.hi) for p in pieces}
    assert got == {"BONDS": (0.1, 0.6), "PE": (-math.inf, 0.05)}


def test_bounds_accept_a_series() -> None:
    upper = pd.Series({"US_EQ": 0.5, "REITS": 0.1})
    pieces = pieces_of(Bounds(upper=upper))
    assert {ASSETS[p.index]: p.hi for p in pieces} == {"US_EQ": 0.5, "REITS": 0.1}


def test_bounds_copy_their_mapping() -> None:
    upper = {"PE": 0.05}
    c = Bounds(upper=upper)
    upper["PE"] = 0.9
    assert pieces_of(c)[0].hi == 0.05
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "other"  # type: ignore[misc]


def test_group_limit_by_tag() -> None:
    (row,) = pieces_of(GroupLimit(tag="equity", max=0.7, name="equity cap"))
    assert row.name == "equity cap"
    np.testing.assert_array_equal(row.coef, [1, 1, 0, 0, 0])
    assert (row.lo, row.hi) == (-math.inf, 0.7)


def test_group_limit_by_assets_with_floor_and_cap() -> None:
    c = GroupLimit(assets=["BONDS", "REITS"], min=0.2, max=0.5)
    assert c.name == "group [BONDS, REITS]"
    (row,) = pieces_of(c, universe=None)
    np.testing.assert_array_equal(row.coef, [0, 0, 1, 1, 0])
    assert (row.lo, row.hi) == (0.2, 0.5)


def test_group_limit_default_names() -> None:
    assert GroupLimit(tag="liquid", min=0.3).name == "group liquid"
    many = GroupLimit(assets=list(ASSETS), max=1.0)
    assert many.name == "group [US_EQ, INTL_EQ, BONDS, REITS, ...]"
    assert GroupLimit(assets="PE", max=0.1).assets == ("PE",)


def test_deviation_band_per_asset_scalar_width() -> None:
    ref = {"US_EQ": 0.4, "BONDS": 0.6}
    pieces = pieces_of(DeviationBand(reference=ref, width=0.05, name="tactical"))
    got = {ASSETS[p.index]: (p.lo, p.hi) for p in pieces}
    # every asset is banded; an asset missing from the reference has reference 0
    expected = {
        a: (as_vector(ref)[i] - 0.05, as_vector(ref)[i] + 0.05) for i, a in enumerate(ASSETS)
    }
    assert got.keys() == expected.keys()
    for a in ASSETS:
        assert got[a] == pytest.approx(expected[a], abs=1e-15)


def test_deviation_band_width_mapping_bands_only_named_assets() -> None:
    ref = pd.Series({"US_EQ": 0.4, "INTL_EQ": 0.2, "BONDS": 0.4})
    band = DeviationBand(reference=ref, width={"US_EQ": 0.1, "BONDS": 0.02})
    assert band.name == "deviation band"
    pieces = pieces_of(band)
    got = {ASSETS[p.index]: (p.lo, p.hi) for p in pieces}
    assert got.keys() == {"US_EQ", "BONDS"}
    assert got["US_EQ"] == pytest.approx((0.3, 0.5))
    assert got["BONDS"] == pytest.approx((0.38, 0.42))


def test_deviation_band_on_a_tag_bands_the_total() -> None:
    ref = {"US_EQ": 0.35, "INTL_EQ": 0.25, "BONDS": 0.4}
    band = DeviationBand(reference=ref, width=0.1, tag="equity")
    assert band.name == "band equity"
    (row,) = pieces_of(band)
    np.testing.assert_array_equal(row.coef, [1, 1, 0, 0, 0])
    assert (row.lo, row.hi) == pytest.approx((0.5, 0.7))


def test_turnover_limit_is_a_norm1_around_current() -> None:
    cur = {"US_EQ": 0.6, "BONDS": 0.4}
    (p,) = pieces_of(TurnoverLimit(current=cur, max=0.2))
    assert isinstance(p, Norm1) and p.name == "turnover limit"
    np.testing.assert_array_equal(p.center, as_vector(cur))
    np.testing.assert_array_equal(p.scale, np.ones(N))
    assert p.max == 0.2


def test_leverage_limit_is_a_norm1_around_zero() -> None:
    (p,) = pieces_of(LeverageLimit(1.5))
    assert isinstance(p, Norm1) and p.name == "leverage limit"
    np.testing.assert_array_equal(p.center, np.zeros(N))
    assert p.max == 1.5


def test_tracking_error_limit_is_a_risk_limit() -> None:
    bench = {"US_EQ": 0.6, "BONDS": 0.4}
    (p,) = pieces_of(TrackingErrorLimit(benchmark=bench, max=0.03, name="TE"))
    assert isinstance(p, RiskLimit) and p.name == "TE"
    np.testing.assert_array_equal(p.benchmark, as_vector(bench))
    assert p.max == 0.03


def test_exposure_limit_row_of_scores() -> None:
    scores = dict(zip(ASSETS, [1.1, 0.9, 0.0, 0.7, 1.3], strict=True))
    (row,) = pieces_of(ExposureLimit(scores=scores, min=0.2, max=0.8, name="beta"))
    np.testing.assert_array_equal(row.coef, as_vector(scores))
    assert (row.lo, row.hi) == (0.2, 0.8)


def test_linear_constraint_one_row() -> None:
    c = LinearConstraint({"US_EQ": 1.0, "BONDS": -2.0}, upper=0.1, name="equity vs bonds")
    (row,) = pieces_of(c)
    np.testing.assert_array_equal(row.coef, [1, 0, -2, 0, 0])
    assert (row.lo, row.hi) == (-math.inf, 0.1)
    assert row.label == "equity vs bonds"


def test_linear_constraint_dataframe_rows() -> None:
    coef = pd.DataFrame(
        {"US_EQ": [1.0, 0.0], "INTL_EQ": [1.0, np.nan], "PE": [np.nan, 2.0]},
        index=["equity", "pe"],
    )
    c = LinearConstraint(coef, lower=[0.1, -math.inf], upper=[0.8, 0.3], name="rows")
    rows = pieces_of(c)
    assert [r.label for r in rows] == ["rows [equity]", "rows [pe]"]
    np.testing.assert_array_equal(rows[0].coef, [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(rows[1].coef, [0, 0, 0, 0, 2])
    assert (rows[0].lo, rows[0].hi) == (0.1, 0.8)
    assert (rows[1].lo, rows[1].hi) == (-math.inf, 0.3)


def test_lowered_rows_measure_what_the_constraint_says() -> None:
    """A piece evaluated at w equals the quantity computed from its definition."""
    rng = np.random.default_rng(3)
    w = rng.dirichlet(np.ones(N))
    ref = dict(zip(ASSETS, rng.dirichlet(np.ones(N)), strict=True))
    cons = [
        GroupLimit(tag="liquid", min=0.0, max=1.0, name="liquid"),
        DeviationBand(reference=ref, width=1.0, tag="alternatives", name="alts band"),
        TurnoverLimit(current=ref, max=2.0, name="turnover"),
    ]
    cset = resolve(cons, ASSETS, UNI)
    by_name = {p.name: p for p in cset.pieces}
    assert by_name["liquid"].coef @ w == pytest.approx(w[:3].sum())
    assert by_name["alts band"].coef @ w == pytest.approx(w[3:].sum())
    alts_ref = ref["REITS"] + ref["PE"]
    assert by_name["alts band"].lo == pytest.approx(alts_ref - 1.0)
    t = by_name["turnover"]
    assert t.scale @ np.abs(w - t.center) == pytest.approx(np.abs(w - as_vector(ref)).sum())


# ----------------------------------------------------------------------------- defaults


def test_defaults_budget_and_long_only() -> None:
    cset = resolve([], ASSETS, None)
    assert cset.names == ["budget", "long-only"]
    assert cset.budget == 1.0
    assert isinstance(cset.pieces[0], Row) and cset.pieces[0].lo == 1.0
    assert sum(isinstance(p, Bound) for p in cset.pieces) == N


def test_default_budget_not_added_when_given() -> None:
    names = [c.name for c in with_defaults([Budget(0.8)])]
    assert names == ["budget", "long-only"]
    assert with_defaults([Budget(0.8)])[0].total == 0.8


def test_long_only_kept_with_non_negative_bounds() -> None:
    names = [c.name for c in with_defaults([Bounds(lower=0.0, upper=0.3)])]
    assert names == ["budget", "long-only", "bounds"]


@pytest.mark.parametrize(
    "bounds",
    [Bounds(lower=-0.2), Bounds(lower={"PE": -0.1}), Bounds(lower=pd.Series({"US_EQ": -1.0}))],
    ids=["scalar", "mapping", "series"],
)
def test_long_only_lifted_when_bounds_allow_shorts(bounds: Bounds) -> None:
    assert bounds.allows_short
    names = [c.name for c in with_defaults([bounds])]
    assert names == ["budget", "bounds"]


def test_explicit_long_only_not_duplicated() -> None:
    names = [c.name for c in with_defaults([LongOnly(), Budget(1.0)])]
    assert names.count("long-only") == 1 and names.count("budget") == 1


def test_defaults_do_not_mutate_the_callers_list() -> None:
    given = [GroupLimit(tag="equity", max=0.5)]
    resolve(given, ASSETS, UNI)
    assert len(given) == 1


# ----------------------------------------------------------------------------- errors


def test_unknown_asset_in_bounds() -> None:
    with pytest.raises(InputError, match=r"'caps'.*unknown assets: ZZ"):
        resolve([Bounds(upper={"ZZ": 0.1}, name="caps")], ASSETS, None)


def test_unknown_asset_in_group() -> None:
    with pytest.raises(InputError, match=r"'tech'.*unknown assets: AAPL"):
        resolve([GroupLimit(assets=["US_EQ", "AAPL"], max=0.3, name="tech")], ASSETS, None)


@pytest.mark.parametrize(
    "constraint",
    [
        DeviationBand(reference={"XX": 0.5}, width=0.1, name="c"),
        TurnoverLimit(current={"XX": 0.5}, max=0.1, name="c"),
        TrackingErrorLimit(benchmark={"XX": 1.0}, max=0.1, name="c"),
        ExposureLimit(scores={**dict.fromkeys(ASSETS, 1.0), "XX": 1.0}, max=1, name="c"),
        LinearConstraint({"XX": 1.0}, lower=0.0, name="c"),
    ],
    ids=["band", "turnover", "tracking", "exposure", "linear"],
)
def test_unknown_asset_named_by_every_per_asset_constraint(constraint) -> None:
    with pytest.raises(InputError, match=r"'c'.*XX"):
        resolve([constraint], ASSETS, UNI)


def test_unknown_tag_suggests_the_closest() -> None:
    with pytest.raises(InputError, match=r"unknown tag 'equty'.*did you mean 'equity'"):
        resolve([GroupLimit(tag="equty", max=0.5)], ASSETS, UNI)


def test_unknown_tag_in_a_band() -> None:
    with pytest.raises(InputError, match=r"'alternativs'.*did you mean 'alternatives'"):
        resolve([DeviationBand({"PE": 0.1}, 0.05, tag="alternativs")], ASSETS, UNI)


def test_tag_without_universe() -> None:
    with pytest.raises(InputError, match=r"'equity cap' uses tag 'equity'.*universe="):
        resolve([GroupLimit(tag="equity", max=0.5, name="equity cap")], ASSETS, None)


def test_group_min_above_max() -> None:
    with pytest.raises(InputError, match=r"'equity band': min 0.8 is above max 0.6"):
        GroupLimit(tag="equity", min=0.8, max=0.6, name="equity band")


def test_exposure_min_above_max() -> None:
    with pytest.raises(InputError, match=r"'esg': min 2 is above max 1"):
        ExposureLimit(dict.fromkeys(ASSETS, 1.0), min=2, max=1, name="esg")


def test_bounds_lower_above_upper_names_the_asset() -> None:
    with pytest.raises(InputError, match=r"'b': lower bound 0.5 is above upper bound 0.2 for PE"):
        resolve([Bounds(lower={"PE": 0.5}, upper={"PE": 0.2}, name="b")], ASSETS, None)


def test_linear_lower_above_upper() -> None:
    coef = pd.DataFrame({"US_EQ": [1.0, 1.0]}, index=["r0", "r1"])
    with pytest.raises(InputError, match=r"'lin': lower above upper in row r1"):
        LinearConstraint(coef, lower=[0.0, 0.5], upper=[1.0, 0.4], name="lin")


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeviationBand({"US_EQ": 0.5}, -0.01, name="tact"),
        lambda: DeviationBand({"US_EQ": 0.5}, {"US_EQ": 0.1, "BONDS": -0.1}, name="tact"),
    ],
    ids=["scalar", "mapping"],
)
def test_negative_band_width(make) -> None:
    with pytest.raises(InputError, match=r"'tact': width must be non-negative"):
        make()


def test_band_on_a_tag_needs_one_width() -> None:
    with pytest.raises(InputError, match=r"'band equity'.*one number width"):
        DeviationBand({"US_EQ": 0.5}, {"US_EQ": 0.1}, tag="equity")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: TurnoverLimit({"US_EQ": 1.0}, -0.1), "'turnover limit': max must be non-negative"),
        (lambda: LeverageLimit(-1.0), "'leverage limit': max must be non-negative"),
        (lambda: TrackingErrorLimit({"US_EQ": 1.0}, -0.01), "'tracking error limit': max"),
    ],
)
def test_negative_limits(make, words: str) -> None:
    with pytest.raises(InputError, match=words):
        make()


def test_duplicate_constraint_names() -> None:
    cons = [GroupLimit(tag="equity", max=0.6, name="cap"), Bounds(upper=0.3, name="cap")]
    with pytest.raises(InputError, match=r"two constraints share the name 'cap'"):
        resolve(cons, ASSETS, UNI)


def test_duplicate_default_names() -> None:
    with pytest.raises(InputError, match=r"'bounds'.*distinct name="):
        resolve([Bounds(upper=0.5), Bounds(lower={"PE": 0.01})], ASSETS, None)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Budget("all"), r"'budget': total must be a number, got 'all'"),
        (lambda: Budget(None), r"'budget': total is required"),
        (lambda: GroupLimit(tag="equity", max="a lot"), r"'group equity': max must be a number"),
        (lambda: GroupLimit(tag="equity"), r"'group equity' needs min=, max= or both"),
        (lambda: GroupLimit(max=0.3), r"GroupLimit needs exactly one of tag= or assets="),
        (
            lambda: GroupLimit(tag="equity", assets=["US_EQ"], max=0.3, name="g"),
            r"GroupLimit 'g' needs exactly one of tag= or assets=",
        ),
        (lambda: GroupLimit(assets=[], max=0.3), r"assets= is empty"),
        (lambda: Bounds(), r"'bounds' needs lower=, upper= or both"),
        (lambda: Bounds(lower="none"), r"'bounds': lower bound must be a number or a mapping"),
        (lambda: Bounds(upper=[0.1, 0.2]), r"'bounds': upper bound must be a number or a mapping"),
        (lambda: Bounds(upper={"PE": "high"}), r"'bounds': upper bound must map asset ids"),
        (lambda: DeviationBand(0.5, 0.1), r"reference must map asset -> weight"),
        (lambda: DeviationBand({"PE": 0.1}, "wide"), r"'deviation band': width"),
        (lambda: TurnoverLimit({"PE": "x"}, 0.1), r"'turnover limit': current must map"),
        (lambda: TrackingErrorLimit({"PE": 1.0}, "1%"), r"'tracking error limit': max must be"),
        (lambda: LeverageLimit(None), r"'leverage limit': max is required"),
        (lambda: LinearConstraint([1.0, 2.0], lower=0), r"coefficients must be a mapping"),
        (lambda: LinearConstraint({"PE": 1.0}), r"'linear constraint' needs lower=, upper="),
        (lambda: LinearConstraint({"PE": 1.0}, lower="x"), r"lower must be a number"),
        (lambda: LinearConstraint({"PE": 1.0}, upper=[1, 2]), r"upper has 2 values for 1 rows"),
        (
            lambda: LinearConstraint(pd.DataFrame({"PE": ["a"]}), upper=1),
            r"coefficients must be numbers",
        ),
        (lambda: ExposureLimit({"PE": 1.0}), r"'exposure limit' needs min=, max= or both"),
    ],
)
def test_wrong_types_and_missing_arguments(make, words: str) -> None:
    with pytest.raises(InputError, match=words):
        make()


def test_unknown_constraint_object() -> None:
    with pytest.raises(InputError, match=r"unknown constraint object.*optimizer.constraints"):
        resolve([{"max": 0.5}], ASSETS, None)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Budget(NAN), r"'budget': total is NaN"),
        (lambda: GroupLimit(tag="equity", max=NAN, name="g"), r"'g': max is NaN"),
        (lambda: GroupLimit(tag="equity", min=NAN, max=0.5, name="g"), r"'g': min is NaN"),
        (lambda: Bounds(lower=NAN), r"'bounds': lower bound is NaN"),
        (lambda: TurnoverLimit({"PE": 0.1}, NAN), r"'turnover limit': max is NaN"),
        (lambda: LeverageLimit(NAN), r"'leverage limit': max is NaN"),
        (lambda: TrackingErrorLimit({"PE": 1.0}, NAN), r"'tracking error limit': max is NaN"),
        (lambda: ExposureLimit({"PE": 1.0}, max=NAN), r"'exposure limit': max is NaN"),
        (lambda: DeviationBand({"PE": 0.1}, NAN), r"'deviation band': width must be a number"),
        (lambda: DeviationBand({"PE": 0.1}, {"PE": NAN}), r"'deviation band': width must be a"),
        (lambda: LinearConstraint({"PE": 1.0}, lower=NAN, name="lin"), r"'lin': lower is NaN"),
        (lambda: LinearConstraint({"PE": 1.0}, upper=[NAN], name="lin"), r"'lin': upper is NaN"),
        (
            lambda: LinearConstraint({"PE": NAN, "BONDS": 1.0}, lower=0, name="lin"),
            r"'lin': coefficient is NaN for PE",
        ),
    ],
)
def test_nan_at_construction(make, words: str) -> None:
    with pytest.raises(InputError, match=words):
        make()


@pytest.mark.parametrize(
    "constraint, words",
    [
        (Bounds(upper={"PE": NAN, "BONDS": 0.5}), r"'bounds': upper bound is NaN for PE"),
        (DeviationBand({"REITS": NAN}, 0.1), r"'deviation band': reference is NaN for REITS"),
        (TurnoverLimit({"BONDS": NAN}, 0.1), r"'turnover limit': current weight is NaN for BONDS"),
        (
            TrackingErrorLimit({"US_EQ": NAN}, 0.1),
            r"'tracking error limit': benchmark weight is NaN for US_EQ",
        ),
        (
            ExposureLimit({**dict.fromkeys(ASSETS, 1.0), "PE": NAN}, max=1),
            r"'exposure limit': score is NaN for PE",
        ),
        (
            ExposureLimit({**dict.fromkeys(ASSETS, 1.0), "PE": math.inf}, max=1),
            r"'exposure limit': scores must be finite",
        ),
    ],
)
def test_nan_per_asset_at_resolve(constraint, words: str) -> None:
    with pytest.raises(InputError, match=words):
        resolve([constraint], ASSETS, UNI)


def test_exposure_scores_must_cover_every_asset() -> None:
    c = ExposureLimit({"US_EQ": 1.0, "PE": 1.3}, max=1.0, name="beta")
    with pytest.raises(InputError, match=r"'beta': score is missing for INTL_EQ, BONDS, REITS"):
        resolve([c], ASSETS, None)


def test_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        GroupLimit(tag="equity", min=1, max=0)


# ----------------------------------------------------------------------------- universe


def test_universe_members_tags_and_index() -> None:
    assert UNI.members("equity") == ["US_EQ", "INTL_EQ"]
    assert UNI.members("liquid") == ["US_EQ", "INTL_EQ", "BONDS"]
    assert UNI.tags_of("PE") == ("alternatives", "private")
    assert UNI.all_tags == ["alternatives", "equity", "fixed income", "liquid", "private"]
    assert UNI.index.equals(ASSETS)


def test_universe_single_string_tag_and_untagged_asset() -> None:
    uni = Universe(["A", "B"], tags={"A": "equity"})
    assert uni.tags_of("A") == ("equity",)
    assert uni.tags_of("B") == ()


def test_universe_duplicate_assets() -> None:
    with pytest.raises(InputError, match=r"duplicate asset ids: BONDS"):
        Universe(["US_EQ", "BONDS", "PE", "BONDS"])


def test_universe_unknown_asset_in_tags() -> None:
    with pytest.raises(InputError, match=r"unknown asset 'US_EQUITY'.*did you mean 'US_EQ'"):
        Universe(["US_EQ", "BONDS"], tags={"US_EQUITY": ["equity"]})


def test_universe_unknown_tag_did_you_mean() -> None:
    with pytest.raises(InputError, match=r"unknown tag 'privat'.*did you mean 'private'"):
        UNI.members("privat")


def test_universe_unknown_tag_without_close_match() -> None:
    with pytest.raises(InputError, match=r"unknown tag 'crypto': no asset carries it$"):
        UNI.members("crypto")


@pytest.mark.parametrize(
    "assets, words",
    [("US_EQ", "not one string"), ([], "at least one asset")],
)
def test_universe_bad_assets(assets, words: str) -> None:
    with pytest.raises(InputError, match=words):
        Universe(assets)


def test_universe_check_assets_names_unknown() -> None:
    with pytest.raises(
        InputError, match=r"holdings names unknown assets: BOND.*did you mean 'BONDS'"
    ):
        UNI.check_assets(["US_EQ", "BOND"], what="holdings")
    with pytest.raises(InputError, match=r"tags_of names unknown assets: ZZ"):
        UNI.tags_of("ZZ")
