"""Tests of optimizer.validation: every rule and message, one verdict from every entry point.

The second half checks the point of the module: a covariance gets the same verdict, and the
same numbers, from every function that takes one, whatever its scale and the order of its
labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import risk
from models.black_litterman import View, black_litterman
from models.estimates import Estimates
from models.expected_returns import equilibrium
from models.mean_variance import min_variance
from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance
from optimizer.validation import SYMMETRY_RTOL

ASSETS = ["US_EQ", "INTL_EQ", "BONDS", "CASH"]


def frame(values, labels=ASSETS, columns=None) -> pd.DataFrame:
    return pd.DataFrame(np.array(values, dtype=float), index=labels, columns=columns or labels)


def good_cov() -> pd.DataFrame:
    vol = np.array([0.16, 0.18, 0.05, 0.01])
    corr = np.array(
        [[1.0, 0.8, 0.1, 0.0], [0.8, 1.0, 0.1, 0.0], [0.1, 0.1, 1.0, 0.2], [0.0, 0.0, 0.2, 1.0]]
    )
    return frame(np.outer(vol, vol) * corr)


def near_psd(smallest: float) -> pd.DataFrame:
    """Largest |entry| 1 and smallest eigenvalue ``smallest`` (a tiny negative number)."""
    b = 0.5 - smallest  # eigenvalues of [[.5, b], [b, .5]]: .5 + b and .5 - b
    c = np.array([[1.0, 0, 0, 0], [0, 0.5, b, 0], [0, b, 0.5, 0], [0, 0, 0, 0.04]])
    return frame(c)


# --------------------------------------------------------------------------------------------
# labels, names, numbers
# --------------------------------------------------------------------------------------------


def test_names_lists_then_counts() -> None:
    assert validation.names(["A", "B"]) == "A, B"
    ids = [f"A{i}" for i in range(25)]
    assert validation.names(ids).endswith("A19 and 5 more")
    assert validation.names(ids, limit=2) == "A0, A1 and 23 more"


def test_labels_duplicates_are_named() -> None:
    with pytest.raises(InputError, match=r"^weights has duplicate asset ids: A, B$"):
        validation.labels(["A", "B", "A", "B", "C"], what="weights")


def test_labels_matched_by_name_in_any_order() -> None:
    out = validation.labels(["C", "A", "B"], what="x", assets=pd.Index(["A", "B", "C"]))
    assert list(out) == ["C", "A", "B"]


def test_labels_missing_and_unknown_are_named() -> None:
    with pytest.raises(
        InputError,
        match=r"^mu and cov name different assets: missing from mu: C; in mu but not in cov: Z$",
    ):
        validation.labels(["A", "B", "Z"], what="mu", assets=pd.Index(list("ABC")), against="cov")


@pytest.mark.parametrize("value", [3, 2.5, np.float64(0.1), np.int64(7), -1.0])
def test_finite_number_accepts_reals(value) -> None:
    assert validation.finite_number(value, what="x") == float(value)


@pytest.mark.parametrize(
    "value, positive, match",
    [
        ("3", False, r"^x must be a number, got '3'$"),
        (True, False, r"^x must be a number, got True$"),
        (None, False, r"^x must be a number, got None$"),
        (np.nan, False, r"^x must be finite, got nan$"),
        (-np.inf, False, r"^x must be finite, got -inf$"),
        ("small", True, r"^x must be a positive number, got 'small'$"),
        (0.0, True, r"^x must be a positive finite number, got 0.0$"),
        (np.inf, True, r"^x must be a positive finite number, got inf$"),
    ],
)
def test_finite_number_errors(value, positive: bool, match: str) -> None:
    with pytest.raises(InputError, match=match):
        validation.finite_number(value, what="x", positive=positive)


# --------------------------------------------------------------------------------------------
# vectors by asset
# --------------------------------------------------------------------------------------------


def test_vector_aligns_by_name_and_copies() -> None:
    s = pd.Series([3.0, 1.0, 2.0], index=["C", "A", "B"])
    out = validation.vector(s, pd.Index(["A", "B", "C"]), what="w")
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    same = validation.vector(s, s.index, what="w")
    same[0] = 99.0
    assert s.iloc[0] == 3.0  # a fresh array, never a view of the caller's data


def test_vector_accepts_a_mapping_and_object_reals() -> None:
    assets = pd.Index(["A", "B"])
    np.testing.assert_array_equal(validation.vector({"B": 2, "A": 1}, assets, what="w"), [1, 2])
    obj = pd.Series([1.0, 2], index=assets, dtype=object)
    np.testing.assert_array_equal(validation.vector(obj, assets, what="w"), [1.0, 2.0])


def test_series_keeps_name_and_order() -> None:
    s = pd.Series([0.1, 0.2], index=["B", "A"], name="mu")
    out = validation.series(s, what="mu")
    assert list(out.index) == ["B", "A"] and out.name == "mu" and out.dtype == float
    out = validation.series(s, pd.Index(["A", "B"]), what="mu")
    assert list(out.index) == ["A", "B"] and list(out) == [0.2, 0.1]


@pytest.mark.parametrize(
    "values, match",
    [
        (np.ones(2), r"^w must be a pandas Series labelled by asset \(or a mapping\), got ndarray"),
        ({"A": "lots", "B": 1.0}, r"^w must map asset ids to numbers, got \{'A': 'lots'"),
        (pd.Series([1.0, 2.0, 3.0], index=["A", "B", "A"]), r"^w has duplicate asset ids: A$"),
        (pd.Series(["x", "y"], index=["A", "B"]), r"^w must be numeric, got dtype (object|str)$"),
        (pd.Series([True, False], index=["A", "B"]), r"^w must be numeric, got dtype bool$"),
        (
            pd.Series([1.0, 2.0], index=["A", "Z"]),
            r"^w and cov name different assets: missing from w: B; in w but not in cov: Z$",
        ),
        (
            pd.Series([np.nan, np.inf], index=["B", "A"]),
            r"^w has NaN or inf values for assets: A, B$",
        ),
    ],
)
def test_vector_errors_name_the_culprit(values, match: str) -> None:
    with pytest.raises(InputError, match=match):
        validation.vector(values, pd.Index(["A", "B"]), what="w")


# --------------------------------------------------------------------------------------------
# covariances: each rule
# --------------------------------------------------------------------------------------------


def test_covariance_returns_a_symmetric_copy() -> None:
    cov = good_cov()
    out = validation.covariance(cov)
    pd.testing.assert_frame_equal(out, cov)
    cov.iloc[0, 0] = 99.0
    assert out.iloc[0, 0] != 99.0


def test_reordered_columns_are_put_in_the_rows_order() -> None:
    cov = good_cov()
    shuffled = cov.loc[ASSETS[::-1], ASSETS[1:] + ASSETS[:1]]
    out = validation.covariance(shuffled)
    assert list(out.index) == ASSETS[::-1] and list(out.columns) == ASSETS[::-1]
    pd.testing.assert_frame_equal(out.loc[ASSETS, ASSETS], cov)


def test_assets_fix_the_order() -> None:
    cov = good_cov()
    order = pd.Index(["CASH", "US_EQ", "BONDS", "INTL_EQ"])
    out = validation.covariance(cov.loc[:, ASSETS[::-1]], assets=order)
    pd.testing.assert_frame_equal(out, cov.loc[order, order])
    labels, values = validation.covariance_values(cov, assets=order)
    assert labels.equals(order) and values.flags.c_contiguous
    np.testing.assert_array_equal(values, cov.loc[order, order].to_numpy())


def test_small_asymmetry_is_accepted_and_averaged() -> None:
    cov = good_cov()
    scale = float(cov.abs().to_numpy().max())
    cov.iloc[0, 1] += 0.5 * SYMMETRY_RTOL * scale
    out = validation.covariance(cov).to_numpy()
    assert np.array_equal(out, out.T)
    assert out[0, 1] == pytest.approx((cov.iloc[0, 1] + cov.iloc[1, 0]) / 2, rel=1e-15)


def test_tiny_negative_variance_is_a_zero_variance() -> None:
    cov = good_cov()
    cov.loc["CASH", :] = cov.loc[:, "CASH"] = 0.0
    cov.loc["CASH", "CASH"] = -1e-20
    assert validation.covariance(cov).loc["CASH", "CASH"] == 0.0


def test_semidefinite_and_zero_matrices_pass() -> None:
    v = np.array([0.1, 0.2, 0.3, 0.4])
    validation.covariance(frame(np.outer(v, v)))  # rank one: Cholesky fails, eigenvalues pass
    validation.covariance(frame(np.zeros((4, 4))))


def test_psd_false_skips_only_the_eigenvalue_test() -> None:
    bad = frame([[0.01, 0.05], [0.05, 0.01]], labels=["X", "Y"])
    validation.covariance(bad, psd=False)
    with pytest.raises(InputError, match="negative variances for assets: X"):
        validation.covariance(frame([[-0.01, 0], [0, 0.01]], labels=["X", "Y"]), psd=False)


def _nan_at(cov: pd.DataFrame, row: str, col: str) -> pd.DataFrame:
    out = cov.copy()
    out.loc[row, col] = np.nan
    return out


def _with(cov: pd.DataFrame, row: str, col: str, value) -> pd.DataFrame:
    out = cov.copy().astype(object) if isinstance(value, str) else cov.copy()
    out.loc[row, col] = value
    return out


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (
            lambda c: c.to_numpy(),
            {},
            r"^cov must be a pandas DataFrame labelled by asset on both axes or a "
            r"FactorCovariance, got ndarray$",
        ),
        (lambda c: c.iloc[:, :3], {}, r"^cov must be square, got shape \(4, 3\)$"),
        (lambda c: c.iloc[:0, :0], {}, r"^cov is empty \(no assets\)$"),
        (
            lambda c: c.set_axis(["A", "B", "A", "C"], axis=0).set_axis(list("ABAC"), axis=1),
            {},
            r"^cov rows has duplicate asset ids: A$",
        ),
        (
            lambda c: c.rename(columns={"CASH": "GOLD"}),
            {},
            r"^cov rows and columns name different assets: only in rows: CASH; only in columns: "
            r"GOLD$",
        ),
        (
            lambda c: c.rename(index={"CASH": "GOLD"}, columns={"CASH": "GOLD"}),
            {"assets": pd.Index(ASSETS), "against": "mu"},
            r"^cov rows and mu name different assets: missing from cov rows: CASH; in cov rows "
            r"but not in mu: GOLD$",
        ),
        (
            lambda c: c.rename(columns={"CASH": "GOLD"}),
            {"assets": pd.Index(ASSETS), "against": "mu"},
            r"^cov columns and mu name different assets: missing from cov columns: CASH",
        ),
        (
            lambda c: _with(c, "BONDS", "BONDS", "x"),
            {},
            r"^cov must be numeric; non-numeric columns: BONDS$",
        ),
        (
            lambda c: _nan_at(c, "INTL_EQ", "CASH"),
            {},
            r"^cov has NaN or inf values for assets: INTL_EQ \(first at \(INTL_EQ, CASH\)\)$",
        ),
        (
            lambda c: _with(c, "BONDS", "US_EQ", c.loc["BONDS", "US_EQ"] + 1e-3),
            {},
            r"^cov is not symmetric: entry \(US_EQ, BONDS\) = 0.0008 but \(BONDS, US_EQ\) = "
            r"0.0018 \(tolerance 1e-08 x the largest \|entry\| 0.0324\)$",
        ),
        (
            lambda c: _with(c, "CASH", "CASH", -0.01),
            {},
            r"^cov has negative variances for assets: CASH, so it is not positive semidefinite; "
            r"repair it with models.covariance.nearest_psd$",
        ),
        (
            lambda c: _with(_with(c, "US_EQ", "BONDS", 0.05), "BONDS", "US_EQ", 0.05),
            {},
            r"^cov is not positive semidefinite: smallest eigenvalue -0.0\d+ \(tolerance "
            r"-5e-10, that is 1e-08 x the largest \|entry\| 0.05\); repair it with "
            r"models.covariance.nearest_psd$",
        ),
    ],
)
def test_covariance_errors_name_the_culprit(make, kwargs, match: str) -> None:
    with pytest.raises(InputError, match=match):
        validation.covariance(make(good_cov()), **kwargs)


def test_the_worst_asymmetric_pair_is_named() -> None:
    cov = good_cov()
    cov.loc["BONDS", "US_EQ"] += 1e-3
    cov.loc["CASH", "US_EQ"] += 1e-6
    with pytest.raises(InputError, match=r"entry \(US_EQ, BONDS\)"):
        validation.covariance(cov)


def test_non_psd_names_the_eigenvalue() -> None:
    cov = near_psd(-2e-8)
    lam = np.linalg.eigvalsh(cov.to_numpy())[0]
    with pytest.raises(InputError) as info:
        validation.covariance(cov)
    assert f"smallest eigenvalue {lam:.3g}" in str(info.value)
    assert "nearest_psd" in str(info.value)


# --------------------------------------------------------------------------------------------
# factor models
# --------------------------------------------------------------------------------------------


def factor_model(order: list[str] | None = None) -> FactorCovariance:
    loadings = frame([[1.0, 0.2], [0.9, 0.3], [0.1, 1.0], [0.0, 0.1]], columns=["mkt", "rates"])
    fcov = pd.DataFrame([[0.03, 0.002], [0.002, 0.01]], index=["mkt", "rates"])
    fcov.columns = ["mkt", "rates"]
    specific = pd.Series([0.01, 0.012, 0.001, 0.0001], index=ASSETS)
    if order is not None:  # the factor covariance and the specific variances in another order
        fcov = fcov.loc[order[::-1], order]
        specific = specific[::-1]
    return FactorCovariance(loadings, fcov, specific)


def test_factor_model_parts_are_matched_by_name() -> None:
    plain, shuffled = factor_model(), factor_model(["rates", "mkt"])
    pd.testing.assert_frame_equal(plain.cov, shuffled.cov)
    assert list(shuffled.factor_cov.index) == ["mkt", "rates"]
    assert list(shuffled.specific.index) == ASSETS


def test_factor_model_errors_name_the_culprit() -> None:
    fm = factor_model()
    bad = fm.factor_cov.copy()
    bad.iloc[0, 1] = bad.iloc[1, 0] = 0.1
    with pytest.raises(InputError, match=r"^factor_cov is not positive semidefinite"):
        FactorCovariance(fm.loadings, bad, fm.specific)
    with pytest.raises(InputError, match=r"missing from factor_cov rows: rates"):
        FactorCovariance(fm.loadings, fm.factor_cov.iloc[:1, :1], fm.specific)
    loadings = fm.loadings.copy()
    loadings.loc["BONDS", "rates"] = np.inf
    with pytest.raises(InputError, match=r"^loadings has NaN or inf values for assets: BONDS"):
        FactorCovariance(loadings, fm.factor_cov, fm.specific)
    with pytest.raises(InputError, match=r"^specific and loadings rows .*missing from specific"):
        FactorCovariance(fm.loadings, fm.factor_cov, fm.specific.iloc[1:])


def test_factor_model_is_kept_or_made_dense() -> None:
    fm = factor_model()
    assert validation.covariance_or_factors(fm) is fm
    order = pd.Index(ASSETS[::-1])
    moved = validation.covariance_or_factors(fm, assets=order)
    assert isinstance(moved, FactorCovariance) and moved.assets.equals(order)
    pd.testing.assert_frame_equal(validation.covariance(fm, assets=order), fm.cov.loc[order, order])
    with pytest.raises(
        InputError, match=r"missing from cov assets: GOLD; in cov assets but not in mu: CASH"
    ):
        validation.covariance_or_factors(fm, assets=pd.Index([*ASSETS[:3], "GOLD"]), against="mu")
    dense = validation.covariance_or_factors(good_cov())
    assert isinstance(dense, pd.DataFrame)


# --------------------------------------------------------------------------------------------
# one verdict from every entry point
# --------------------------------------------------------------------------------------------

WEIGHTS = pd.Series([0.4, 0.3, 0.2, 0.1], index=ASSETS)
MU = pd.Series([0.07, 0.08, 0.03, 0.01], index=ASSETS)


def _montecarlo(cov: pd.DataFrame) -> np.ndarray:
    from scenarios.montecarlo import simulate

    return simulate(WEIGHTS, MU, cov, years=2, paths=8, seed=0).values


def _factor_cov(cov: pd.DataFrame) -> np.ndarray:
    # the matrix as the factor covariance of a model whose loadings are the identity
    eye = pd.DataFrame(np.eye(len(ASSETS)), index=ASSETS, columns=ASSETS)
    return FactorCovariance(eye, cov, pd.Series(0.0, index=ASSETS)).cov.to_numpy()


def _black_litterman(cov: pd.DataFrame) -> np.ndarray:
    post_mu, post_cov = black_litterman(MU, cov, views=[View.absolute("US_EQ", 0.05)], tau=0.05)
    return np.concatenate([post_mu.loc[ASSETS], post_cov.loc[ASSETS, ASSETS].to_numpy().ravel()])


#: Every function that takes a covariance, each giving numbers in the order of ASSETS.
ENTRY_POINTS = {
    "validation.covariance": lambda c: validation.covariance(c).loc[ASSETS, ASSETS].to_numpy(),
    "risk.portfolio_volatility": lambda c: risk.portfolio_volatility(WEIGHTS, c),
    "risk.risk_contributions": lambda c: risk.risk_contributions(WEIGHTS, c).loc[ASSETS],
    "risk.value_at_risk": lambda c: risk.value_at_risk(WEIGHTS, method="gaussian", mu=MU, cov=c),
    "black_litterman": _black_litterman,
    "expected_returns.equilibrium": lambda c: equilibrium(c, WEIGHTS, risk_aversion=2.5).loc[
        ASSETS
    ],
    "Estimates": lambda c: Estimates(MU, c).cov.loc[ASSETS, ASSETS].to_numpy(),
    "FactorCovariance.factor_cov": _factor_cov,
    "montecarlo.simulate": _montecarlo,
    "mean_variance.min_variance": lambda c: min_variance(c).weights.loc[ASSETS],
}


def verdict(entry: str, cov: pd.DataFrame) -> str:
    """``"ok"``, or the rule that refused ``cov``."""
    try:
        ENTRY_POINTS[entry](cov)
    except InputError as exc:
        for rule in ("not positive semidefinite", "not symmetric", "NaN or inf"):
            if rule in str(exc):
                return rule
        raise
    return "ok"


def asymmetric(relative: float) -> pd.DataFrame:
    cov = good_cov()
    cov.iloc[0, 2] += relative * float(cov.abs().to_numpy().max())
    return cov


CASES = {
    # the smallest eigenvalue -5e-9 of a unit-scale matrix: once refused by black_litterman
    "eigenvalue -5e-9": (near_psd(-5e-9), "ok"),
    "eigenvalue -2e-8": (near_psd(-2e-8), "not positive semidefinite"),
    "asymmetry 1e-10": (asymmetric(1e-10), "ok"),
    "asymmetry 1e-6": (asymmetric(1e-6), "not symmetric"),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_one_verdict_at_every_scale(entry: str, case: str, scale: float) -> None:
    cov, expected = CASES[case]
    assert verdict(entry, cov * scale) == expected


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_reordered_columns_give_the_same_numbers(entry: str) -> None:
    # once refused by min_variance and accepted by Estimates
    cov = good_cov()
    ordered = np.asarray(ENTRY_POINTS[entry](cov), dtype=float)
    for other in (cov.loc[:, ASSETS[::-1]], cov.loc[ASSETS[::-1], ASSETS[1:] + ASSETS[:1]]):
        got = np.asarray(ENTRY_POINTS[entry](other), dtype=float)
        np.testing.assert_allclose(got, ordered, rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------------
# properties: neither the order of the labels nor the scale changes a verdict
# --------------------------------------------------------------------------------------------


@st.composite
def matrices(draw) -> tuple[pd.DataFrame, str]:
    """A labelled matrix and its expected verdict, kept clear of every tolerance's edge."""
    n = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = rng.uniform(0.0, 1.0, n)
    lam[0] = 1.0
    kind = draw(st.sampled_from(["definite", "singular", "rounding", "indefinite"]))
    lam[-1] = {
        "definite": 0.01,
        "singular": 0.0,
        "rounding": -1e-11 * draw(st.floats(0.0, 1.0)),
        "indefinite": -draw(st.floats(1e-5, 0.5)),
    }[kind]
    c = (q * lam) @ q.T
    c = (c + c.T) / 2
    expected = "not positive semidefinite" if kind == "indefinite" else "ok"
    scale = float(np.abs(c).max())
    defect = draw(st.sampled_from(["none", "none", "tiny asymmetry", "asymmetry", "nan"]))
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
    if defect == "tiny asymmetry" and i != j:
        c[i, j] += 1e-11 * scale
    elif defect == "asymmetry" and i != j:
        c[i, j] += 1e-5 * scale
        expected = "not symmetric"
    elif defect == "nan":
        c[i, j] = np.nan
        expected = "NaN or inf"
    ids = [f"A{k}" for k in range(n)]
    return pd.DataFrame(c, index=ids, columns=ids), expected


def _verdict(cov: pd.DataFrame) -> tuple[str, pd.DataFrame | None]:
    try:
        return "ok", validation.covariance(cov)
    except InputError as exc:
        for rule in (
            "not positive semidefinite",
            "negative variances",
            "not symmetric",
            "NaN or inf",
        ):
            if rule in str(exc):
                return rule, None
        raise


@settings(max_examples=150, deadline=None)
@given(case=matrices(), data=st.data())
def test_permuting_labels_never_changes_a_verdict(case, data) -> None:
    cov, expected = case
    ids = list(cov.index)
    rows = data.draw(st.permutations(ids))
    cols = data.draw(st.permutations(ids))
    base, base_out = _verdict(cov)
    assert base == expected or (
        expected == "not positive semidefinite" and base in {"negative variances"}
    )
    for other in (cov.loc[rows, rows], cov.loc[:, cols], cov.loc[rows, cols]):
        got, out = _verdict(other)
        assert got == base
        if base == "ok":
            np.testing.assert_array_equal(out.loc[ids, ids].to_numpy(), base_out.to_numpy())


@settings(max_examples=150, deadline=None)
@given(case=matrices(), exponent=st.integers(-8, 8))
def test_scaling_never_changes_a_verdict(case, exponent: int) -> None:
    cov, _ = case
    base, base_out = _verdict(cov)
    got, out = _verdict(cov * 10.0**exponent)
    assert got == base
    if base == "ok":
        np.testing.assert_allclose(out.to_numpy(), base_out.to_numpy() * 10.0**exponent, rtol=1e-12)
