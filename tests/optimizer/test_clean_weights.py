"""Clean answers (issue 11, item 3): dust is an exact zero, long-only never prints a negative.

Every answer the core makes goes through ``Compiled.answer``: weights below the
verification tolerance become exact zeros, the budget is restored and the
result re-verified. ``clean_weights`` is the public convenience for weights
from elsewhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import mean_variance as mv
from optimizer.allocation import DUST_TOL, Allocation, clean_weights, zero_dust
from optimizer.constraints import Bounds, GroupLimit, resolve
from optimizer.errors import InputError, SolverError
from optimizer.pieces import Point
from optimizer.universe import Universe
from optimizer.verify import Checker


def problem(n: int, seed: int, rank: int | None = None) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"A{i}" for i in range(n)]
    a = rng.normal(size=(n, rank or 2 * n))
    c = a @ a.T / a.shape[1] * 0.04 + np.eye(n) * 1e-4
    return pd.Series(rng.uniform(0.0, 0.15, n), ids), pd.DataFrame(c, ids, ids)


def assert_clean_long_only(w: np.ndarray, what: str) -> None:
    assert w.min() >= 0.0, what
    assert not np.signbit(w).any(), what  # no -0.0 either
    nz = w[w != 0]
    assert (nz > DUST_TOL).all(), f"{what}: dust {nz.min()}"
    assert abs(w.sum() - 1.0) <= 1e-9, what


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 25),
    cap=st.sampled_from([None, 0.3, 0.5]),
)
@settings(max_examples=12, deadline=None)
def test_property_long_only_answers_are_clean(seed: int, n: int, cap: float | None) -> None:
    mu, cov = problem(n, seed, rank=max(2, n // 2))
    cons = [] if cap is None or cap * n < 1 else [Bounds(upper=cap)]
    answers = {
        "min_variance": mv.min_variance(cov, mu=mu, constraints=cons),
        "max_utility": mv.max_utility(mu, cov, risk_aversion=3.0, constraints=cons),
        "max_sharpe": mv.max_sharpe(mu, cov, constraints=cons),
    }
    for what, alloc in answers.items():
        assert_clean_long_only(alloc.weights.to_numpy(), what)
    front = mv.efficient_frontier(mu, cov, points=8, constraints=cons)
    for i, row in front.weights.iterrows():
        assert_clean_long_only(row.to_numpy(), f"frontier point {i}")
    for alloc in front.allocations:
        assert all(c["ok"] for c in alloc.checks.values())


def test_frontier_fast_sweep_points_are_clean(monkeypatch) -> None:
    """The warm-started ProxQP sweep (the critical line's fallback) makes its answers there too."""

    def no_corners(*args, **kwargs):
        raise SolverError("forced: the sweep is under test", [])

    monkeypatch.setattr(mv, "corners", no_corners)
    mu, cov = problem(30, 4, rank=10)
    front = mv.efficient_frontier(mu, cov, points=30)
    solvers = {a.solver for a in front.allocations}
    assert "PROXQP" in solvers
    for i, row in front.weights.iterrows():
        assert_clean_long_only(row.to_numpy(), f"point {i}")


# ----------------------------------------------------------------------------- zero_dust


def test_zero_dust_restores_the_total_in_proportion() -> None:
    w = np.array([0.6, 0.4 - 3e-8, 2e-8, 1e-8, -1.6e-12])
    out = zero_dust(w, 1e-7, 1.0)
    assert out[2:].tolist() == [0.0, 0.0, 0.0] and not np.signbit(out).any()
    assert out.sum() == pytest.approx(1.0, abs=1e-15)
    assert out[0] / out[1] == pytest.approx(w[0] / w[1], rel=1e-14)


def test_zero_dust_dollar_neutral_keeps_signs() -> None:
    w = np.array([0.5, -0.5 + 4e-8, -4e-8])
    out = zero_dust(w, 1e-7, 0.0)
    assert out[2] == 0.0 and out.sum() == pytest.approx(0.0, abs=1e-15)
    assert out[0] > 0 > out[1] and abs(out - w).max() < 1e-7


def test_zero_dust_restores_within_bounds() -> None:
    w = np.array([0.3, 0.3, 0.4 - 6e-8, 3e-8, 3e-8])
    upper = np.array([0.3, 0.3, 1.0, 1.0, 1.0])
    out = zero_dust(w, 1e-7, 1.0, upper=upper)
    assert out[:2].tolist() == [0.3, 0.3] and out[3:].tolist() == [0.0, 0.0]
    assert out.sum() == pytest.approx(1.0, abs=1e-15)


def test_zero_dust_untouched_and_relative_cases() -> None:
    w = np.array([0.7, 0.3])
    assert zero_dust(w, 1e-7) is w
    tiny = np.array([3e-8, 1e-8, 2e-8])  # an unbudgeted portfolio of tiny scale: not dust
    assert zero_dust(tiny, 1e-7) is tiny
    negzero = np.array([1.0, -0.0])
    out = zero_dust(negzero, 1e-7)
    assert out is not negzero and not np.signbit(out).any()


def test_checker_keeps_the_weights_when_cleaning_breaks_a_constraint() -> None:
    ids = pd.Index([f"A{i}" for i in range(12)])
    uni = Universe(list(ids), tags={a: ["small"] for a in ids[2:]})
    cset = resolve([GroupLimit(tag="small", min=5e-7, name="small floor")], ids, uni)
    checker = Checker(cset.pieces)
    w = np.array([0.5, 0.5 - 9e-7, *([9e-8] * 10)])
    assert checker.ok(Point(w))
    assert checker.cleaned(Point(w), total=1.0) is w  # zeroing would break "small floor"
    ok = np.array([0.5, 0.5 - 5e-8, 5e-8, *([0.0] * 9)])
    free = Checker(resolve([], ids, uni).pieces)
    out = free.cleaned(Point(ok), total=1.0)
    assert out[2] == 0.0 and out.sum() == pytest.approx(1.0, abs=1e-15)


# ----------------------------------------------------------------------------- clean_weights


def test_clean_weights_like_pypfopt_cutoff_but_total_kept() -> None:
    w = pd.Series([0.55, 0.44995, 5e-5, 0.0], index=list("ABCD"), name="weight")
    out = clean_weights(w, tol=1e-4)
    assert out["C"] == 0.0 and out["D"] == 0.0
    assert out.sum() == pytest.approx(1.0, abs=1e-15)
    assert out.index.equals(w.index) and out.name == "weight"
    assert (clean_weights(w) == w).all()  # nothing below the default 1e-7


def test_clean_weights_accepts_an_allocation() -> None:
    mu, cov = problem(5, 1)
    alloc = mv.max_sharpe(mu, cov)
    assert isinstance(alloc, Allocation)
    pd.testing.assert_series_equal(clean_weights(alloc), alloc.weights)


@pytest.mark.parametrize(
    ("weights", "kwargs", "match"),
    [
        ([0.5, 0.5], {}, r"pandas Series of weights by asset.*got list.*pd\.Series"),
        (pd.Series([0.5, np.nan], index=["EQ", "BD"]), {}, r"weight of 'BD' is nan.*fix or drop"),
        (pd.Series([0.5, np.inf], index=["EQ", "BD"]), {}, r"weight of 'BD' is inf"),
        (pd.Series(["x", 0.5], index=["EQ", "BD"]), {}, r"must be numbers"),
        (
            pd.Series([1.0], index=["EQ"]),
            {"tol": -1e-7},
            r"tol must be finite and >= 0, got -1e-07",
        ),
        (pd.Series([1.0], index=["EQ"]), {"tol": "1e-4"}, r"tol must be a number, got '1e-4'"),
    ],
)
def test_clean_weights_errors_name_the_culprit(weights, kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        clean_weights(weights, **kwargs)


def test_a_weight_whose_bounds_exclude_zero_is_no_dust() -> None:
    """Regression (hypothesis, min_cvar): a lower bound of 6e-8 on both assets gave [1, 0]: the
    second weight, at its bound, was below the dust size and became an exact zero."""
    w = np.array([1.0 - 6e-8, 6e-8])
    floor = np.full(2, 6e-8)
    np.testing.assert_array_equal(zero_dust(w, 1e-7, 1.0, lower=floor), w)
    # without the bound the same weight is dust
    assert zero_dust(w, 1e-7, 1.0)[1] == 0.0
