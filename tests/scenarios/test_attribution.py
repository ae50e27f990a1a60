"""Brinson-Fachler attribution, one period and linked (Carino, Menchero)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import InputError
from scenarios.attribution import Attribution, brinson, brinson_multi

SEGS = ["Equity", "Bonds", "Cash"]
WP = pd.Series([0.6, 0.3, 0.1], index=SEGS)
WB = pd.Series([0.5, 0.4, 0.1], index=SEGS)
RP = pd.Series([0.10, 0.03, 0.01], index=SEGS)
RB = pd.Series([0.08, 0.04, 0.01], index=SEGS)


def test_one_period_hand_example():
    # Rb = 0.5*0.08 + 0.4*0.04 + 0.1*0.01 = 0.040 + 0.016 + 0.001 = 0.057
    # Rp = 0.6*0.10 + 0.3*0.03 + 0.1*0.01 = 0.060 + 0.009 + 0.001 = 0.070; excess 0.013
    # allocation  (wp-wb)(rb-Rb): Equity 0.1*(0.08-0.057) = 0.0023
    #                             Bonds -0.1*(0.04-0.057) = 0.0017, Cash 0    -> 0.0040
    # selection   wb(rp-rb):      Equity 0.5*0.02 = 0.010, Bonds 0.4*(-0.01) = -0.004,
    #                             Cash 0                                        -> 0.0060
    # interaction (wp-wb)(rp-rb): Equity 0.1*0.02 = 0.002, Bonds -0.1*-0.01 = 0.001,
    #                             Cash 0                                        -> 0.0030
    t = brinson(WP, WB, RP, RB)
    assert list(t.index) == [*SEGS, "total"]
    assert list(t.columns) == ["allocation", "selection", "interaction", "total"]
    expected = pd.DataFrame(
        {
            "allocation": [0.0023, 0.0017, 0.0, 0.0040],
            "selection": [0.010, -0.004, 0.0, 0.006],
            "interaction": [0.002, 0.001, 0.0, 0.003],
            "total": [0.0143, -0.0013, 0.0, 0.013],
        },
        index=[*SEGS, "total"],
    )
    pd.testing.assert_frame_equal(t, expected, atol=1e-15, rtol=0)


def test_one_period_total_is_excess_exactly():
    t = brinson(WP, WB, RP, RB)
    excess = float(WP @ RP) - float(WB @ RB)
    assert abs(t.loc["total", "total"] - excess) <= 1e-15
    assert abs(t["total"].iloc[:-1].sum() - excess) <= 1e-15


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 6),
    data=st.data(),
)
def test_one_period_additivity_random(n, data):
    f = st.floats(0.01, 1.0)
    r = st.floats(-0.5, 0.5)
    wp = np.array(data.draw(st.lists(f, min_size=n, max_size=n)))
    wb = np.array(data.draw(st.lists(f, min_size=n, max_size=n)))
    segs = [f"s{i}" for i in range(n)]
    wp, wb = pd.Series(wp / wp.sum(), segs), pd.Series(wb / wb.sum(), segs)
    rp = pd.Series(data.draw(st.lists(r, min_size=n, max_size=n)), segs)
    rb = pd.Series(data.draw(st.lists(r, min_size=n, max_size=n)), segs)
    t = brinson(wp, wb, rp, rb)
    excess = float(wp @ rp) - float(wb @ rb)
    assert abs(t.loc["total", "total"] - excess) <= 1e-15


def test_segment_missing_from_benchmark_uses_portfolio_return():
    wp = pd.Series({"Equity": 0.5, "Gold": 0.5})
    wb = pd.Series({"Equity": 1.0})
    rp = pd.Series({"Equity": 0.10, "Gold": 0.20})
    rb = pd.Series({"Equity": 0.05})  # no benchmark return for Gold
    t = brinson(wp, wb, rp, rb)
    # Rb = 0.05; Gold: allocation 0.5*(0.20-0.05) = 0.075, selection = interaction = 0
    assert t.loc["Gold", "allocation"] == pytest.approx(0.075, abs=1e-15)
    assert t.loc["Gold", "selection"] == 0.0
    assert t.loc["Gold", "interaction"] == 0.0
    # Equity: allocation -0.5*0 = 0, selection 1.0*0.05 = 0.05, interaction -0.5*0.05
    assert t.loc["Equity"].tolist() == pytest.approx([0.0, 0.05, -0.025, 0.025], abs=1e-15)
    assert abs(t.loc["total", "total"] - (0.15 - 0.05)) <= 1e-15


def test_segment_only_benchmark_holds_and_unequal_sums():
    # portfolio does not list Bonds at all: weight 0, rp := rb for it
    wp = pd.Series({"Equity": 1.0})
    wb = pd.Series({"Equity": 0.6, "Bonds": 0.4})
    rp = pd.Series({"Equity": 0.10})
    rb = pd.Series({"Equity": 0.08, "Bonds": 0.02})
    t = brinson(wp, wb, rp, rb)
    assert t.loc["Bonds", ["selection", "interaction"]].tolist() == [0.0, 0.0]
    assert abs(t.loc["total", "total"] - (0.10 - 0.056)) <= 1e-15
    # documented: with unequal weight sums the shortfall is (sum wp - sum wb) * Rb
    wp2 = pd.Series({"Equity": 0.9})  # 10% unlisted
    t2 = brinson(wp2, wb, rp, rb)
    excess = 0.9 * 0.10 - 0.056
    assert abs(t2.loc["total", "total"] - (excess - (0.9 - 1.0) * 0.056)) <= 1e-15


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((WP.to_dict(), WB, RP, RB), "port_weights must be a pandas Series"),
        ((WP, WB, RP, RB.to_numpy()), "bench_returns must be a pandas Series"),
        ((WP, WB, RP.replace(0.03, np.nan), RB), r"port_returns is NaN .*'Bonds'"),
        ((WP.replace(0.6, np.inf), WB, RP, RB), r"port_weights is NaN .*'Equity'"),
        (
            (WP, WB, RP.drop("Bonds"), RB),
            r"portfolio holds segment\(s\) \['Bonds'\].*no portfolio return",
        ),
        (
            (WP, WB, RP, RB.drop("Cash")),
            r"benchmark holds segment\(s\) \['Cash'\].*no benchmark return",
        ),
        ((WP.rename({"Cash": "total"}), WB, RP, RB), "reserved for the total row"),
        ((pd.concat([WP, WP]), WB, RP, RB), "more than once"),
        ((WP, WB.astype(str).replace("0.5", "x"), RP, RB), "bench_weights must hold numbers"),
    ],
)
def test_one_period_errors(args, match):
    with pytest.raises(InputError, match=match):
        brinson(*args)


# ---------------------------------------------------------------- multi-period

DATES = pd.to_datetime(["2024-01-31", "2024-02-29"])
AB = ["A", "B"]
# period 1: wp (0.6, 0.4), wb (0.5, 0.5), rp = rb = (0.10, 0.00)
#   Rp1 = 0.06, Rb1 = 0.05; allocation A 0.1*(0.10-0.05) = 0.005, B -0.1*(0-0.05) = 0.005
# period 2: wp = wb = (0.5, 0.5), rp (0.04, 0.02), rb (0.02, 0.02)
#   Rp2 = 0.03, Rb2 = 0.02; selection A 0.5*0.02 = 0.01
# compounded: Rp = 1.06*1.03 - 1 = 0.0918, Rb = 1.05*1.02 - 1 = 0.071, excess 0.0208
MWP = pd.DataFrame([[0.6, 0.4], [0.5, 0.5]], index=DATES, columns=AB)
MWB = pd.DataFrame([[0.5, 0.5], [0.5, 0.5]], index=DATES, columns=AB)
MRP = pd.DataFrame([[0.10, 0.00], [0.04, 0.02]], index=DATES, columns=AB)
MRB = pd.DataFrame([[0.10, 0.00], [0.02, 0.02]], index=DATES, columns=AB)


def test_two_period_carino_hand_example():
    # k1 = ln(1.06/1.05)/0.01 = 0.947874, k2 = ln(1.03/1.02)/0.01 = 0.975617,
    # K = ln(1.0918/1.071)/0.0208 = 0.924756
    # allocation = 0.01*k1/K = 0.0102500 (0.0051250 in each of A, B)
    # selection  = 0.01*k2/K = 0.0105500 (all in A); sum = 0.0208
    res = brinson_multi(MWP, MWB, MRP, MRB, method="carino")
    assert isinstance(res, Attribution) and res.method == "carino"
    assert res.port_return == pytest.approx(0.0918, abs=1e-15)
    assert res.bench_return == pytest.approx(0.071, abs=1e-15)
    k1, k2 = math.log(1.06 / 1.05) / 0.01, math.log(1.03 / 1.02) / 0.01
    big_k = math.log(1.0918 / 1.071) / 0.0208
    assert res.periods["coefficient"].tolist() == pytest.approx([k1 / big_k, k2 / big_k], rel=1e-12)
    t = res.by_segment
    assert t.loc["total", "allocation"] == pytest.approx(0.0102500, abs=1e-7)
    assert t.loc["total", "selection"] == pytest.approx(0.0105500, abs=1e-7)
    assert t.loc["A", "allocation"] == pytest.approx(0.005 * k1 / big_k, abs=1e-15)
    assert t.loc["B", "selection"] == 0.0
    assert t.loc["total", "interaction"] == 0.0
    assert abs(t.loc["total", "total"] - 0.0208) <= 1e-12
    # one-period effects kept unlinked
    assert res.by_period.loc[(DATES[0], "A"), "allocation"] == pytest.approx(0.005, abs=1e-15)
    assert res.by_period.loc[(DATES[1], "A"), "selection"] == pytest.approx(0.01, abs=1e-15)


def test_two_period_menchero_hand_example():
    # e1 = e2 = 0.01, so sum e = 0.02, sum e^2 = 0.0002 and
    # alpha_t = M + (0.0208 - 0.02 M) * 0.01 / 0.0002 = M + 1.04 - M = 1.04 for both periods
    # -> allocation 0.01 * 1.04 = 0.0104, selection 0.0104, total 0.0208
    res = brinson_multi(MWP, MWB, MRP, MRB, method="menchero")
    assert res.periods["coefficient"].tolist() == pytest.approx([1.04, 1.04], abs=1e-12)
    t = res.by_segment
    assert t.loc["total", "allocation"] == pytest.approx(0.0104, abs=1e-12)
    assert t.loc["total", "selection"] == pytest.approx(0.0104, abs=1e-12)
    assert t.loc["A", "allocation"] == pytest.approx(0.0052, abs=1e-12)
    assert abs(t.loc["total", "total"] - 0.0208) <= 1e-12


@st.composite
def panels(draw):
    t = draw(st.integers(1, 8))
    n = draw(st.integers(1, 5))
    w = st.floats(0.01, 1.0)
    r = st.floats(-0.4, 0.4)

    def block(elements, normalise):
        a = np.array(
            draw(st.lists(st.lists(elements, min_size=n, max_size=n), min_size=t, max_size=t))
        )
        return a / a.sum(axis=1, keepdims=True) if normalise else a

    dates = pd.date_range("2020-01-31", periods=t, freq="ME")
    cols = [f"s{i}" for i in range(n)]
    return [
        pd.DataFrame(block(e, nz), index=dates, columns=cols)
        for e, nz in ((w, 1), (w, 1), (r, 0), (r, 0))
    ]


@settings(max_examples=30, deadline=None)
@given(frames=panels(), method=st.sampled_from(["carino", "menchero"]))
def test_linked_total_is_compounded_excess(frames, method):
    wp, wb, rp, rb = frames
    res = brinson_multi(wp, wb, rp, rb, method=method)
    rp_t = (wp * rp).sum(axis=1)
    rb_t = (wb * rb).sum(axis=1)
    compounded = float(np.prod(1 + rp_t) - np.prod(1 + rb_t))
    t = res.by_segment
    assert abs(t.loc["total", "total"] - compounded) <= 1e-12
    assert abs(res.excess - compounded) <= 1e-12
    # the per-segment total column is the sum of the three effects
    np.testing.assert_allclose(
        t["total"], t[["allocation", "selection", "interaction"]].sum(axis=1), atol=1e-15
    )
    # each period's unlinked effects are brinson() on that period
    d = wp.index[0]
    one = brinson(wp.loc[d], wb.loc[d], rp.loc[d], rb.loc[d]).iloc[:-1]
    pd.testing.assert_frame_equal(res.by_period.loc[d], one, check_names=False, atol=1e-15, rtol=0)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("method", ["carino", "menchero"])
def test_equal_return_limits(method):
    one = pd.DataFrame({"X": [1.0, 1.0, 1.0]}, index=pd.RangeIndex(3))
    # identical returns in every period: Rp_t == Rb_t and Rp == Rb
    same = pd.DataFrame({"X": [0.05, -0.02, 0.03]}, index=one.index)
    res = brinson_multi(one, one, same, same, method=method)
    assert np.isfinite(res.periods["coefficient"]).all()
    assert (res.by_segment.to_numpy() == 0).all()
    # equal in one period only, and Rp == Rb overall: 1.1 * 1.0 * 1.0 == 1.0 * 1.1 * 1.0
    rp = pd.DataFrame({"X": [0.1, 0.0, 0.02]}, index=one.index)
    rb = pd.DataFrame({"X": [0.0, 0.1, 0.02]}, index=one.index)
    res = brinson_multi(one, one, rp, rb, method=method)
    assert np.isfinite(res.periods["coefficient"]).all()
    assert res.excess == 0.0
    assert abs(res.by_segment.loc["total", "total"]) <= 1e-12
    if method == "carino":
        # k_t limit 1/(1+Rp_t) in the equal period, K limit 1/(1+R) overall
        assert res.periods["coefficient"].iloc[2] == pytest.approx(1.122 / 1.02, rel=1e-12)
    else:
        # M limit (1+R)^(1-1/T) = 1.122^(2/3)
        m = 1.122 ** (2 / 3)
        assert res.periods["coefficient"].iloc[2] == pytest.approx(m, rel=1e-12)


def test_multi_nan_return_allowed_where_not_held():
    rp = MRP.copy()
    wp = MWP.copy()
    wp.loc[DATES[1]] = [1.0, 0.0]
    rp.loc[DATES[1], "B"] = np.nan  # portfolio does not hold B in period 2
    res = brinson_multi(wp, MWB, rp, MRB)
    compounded = 1.06 * 1.04 - 1.05 * 1.02
    assert abs(res.by_segment.loc["total", "total"] - compounded) <= 1e-12


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: {**a, "method": "geometric"}, "method must be one of"),
        (lambda a: {**a, "port_weights": MWP.iloc[0]}, "port_weights must be a pandas DataFrame"),
        (
            lambda a: {**a, "bench_returns": MRB.iloc[:1]},
            r"bench_returns does not cover the same dates",
        ),
        (
            lambda a: {**a, "port_weights": MWP.replace(0.4, np.nan)},
            r"port_weights on 2024-01-31.* is NaN .*'B'",
        ),
        (
            lambda a: {**a, "port_returns": MRP.replace(0.04, np.nan)},
            r"portfolio holds segment\(s\) \['A'\] on 2024-02-29.* but has no portfolio return",
        ),
        (
            lambda a: {**a, "port_returns": MRP.replace(0.10, -2.0)},
            r"period 2024-01-31.*-100% or worse",
        ),
        (lambda a: {**a, "port_weights": MWP.iloc[:0]}, "has no periods"),
    ],
)
def test_multi_errors(change, match):
    args = {"port_weights": MWP, "bench_weights": MWB, "port_returns": MRP, "bench_returns": MRB}
    kwargs = change({**args, "method": "carino"})
    with pytest.raises(InputError, match=match):
        brinson_multi(**kwargs)
