"""Stress shocks, the tactical overlay's rule language and tilt, and atomic output sets."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios import stress
from scenarios.export import OutputSet, json_text, to_jsonable
from scenarios.tactical import Overlay, Rule, overlay, parse_condition

UNI = Universe(
    ["US_EQ", "INTL_EQ", "BONDS", "REIT", "CASH"],
    {
        "US_EQ": ["equity", "liquid"],
        "INTL_EQ": ["equity", "liquid"],
        "BONDS": ["fixed_income", "liquid"],
        "REIT": ["real_estate", "equity_like"],
        "CASH": ["cash", "liquid"],
    },
)
W = pd.Series({"US_EQ": 0.35, "INTL_EQ": 0.15, "BONDS": 0.30, "REIT": 0.10, "CASH": 0.10})


# ============================================================================ stress


def test_tag_shocks_hit_every_member_and_silent_assets_get_zero() -> None:
    r = stress.shock_vector({"equity": -0.30, "fixed_income": 0.05}, UNI.assets, UNI)
    assert list(r.index) == list(UNI.assets)
    assert r.to_dict() == {
        "US_EQ": -0.30,
        "INTL_EQ": -0.30,
        "BONDS": 0.05,
        "REIT": 0.0,
        "CASH": 0.0,
    }


def test_an_assets_own_shock_wins_over_its_tag() -> None:
    for shocks in (
        {"equity": -0.30, "INTL_EQ": -0.45},
        {"INTL_EQ": -0.45, "equity": -0.30},  # order in the mapping does not matter
    ):
        r = stress.shock_vector(shocks, UNI.assets, UNI)
        assert r["US_EQ"] == -0.30
        assert r["INTL_EQ"] == -0.45


def test_unknown_shock_key() -> None:
    with pytest.raises(InputError, match="'equities', which is neither an asset nor a tag"):
        stress.shock_vector({"equities": -0.3}, UNI.assets, UNI)
    # without a universe a tag is unknown too
    with pytest.raises(InputError, match="neither an asset nor a tag"):
        stress.shock_vector({"equity": -0.3}, UNI.assets)


def test_two_tag_shocks_on_one_asset_are_ambiguous() -> None:
    with pytest.raises(InputError, match=r"asset US_EQ is hit by shocks on several tags") as info:
        stress.shock_vector({"equity": -0.3, "liquid": -0.1}, UNI.assets, UNI)
    assert "equity" in str(info.value) and "liquid" in str(info.value)
    assert "give it its own shock" in str(info.value)
    # asset-level shocks settle it
    r = stress.shock_vector(
        {"equity": -0.3, "liquid": -0.1, "US_EQ": -0.2, "INTL_EQ": -0.25}, UNI.assets, UNI
    )
    assert r.to_dict() == {
        "US_EQ": -0.2,
        "INTL_EQ": -0.25,
        "BONDS": -0.1,
        "REIT": 0.0,
        "CASH": -0.1,
    }


@pytest.mark.parametrize("bad", [-1.0, -1.5, math.nan, math.inf])
def test_shock_at_or_below_minus_one_or_not_finite(bad) -> None:
    with pytest.raises(InputError, match="must be finite and above -100%"):
        stress.shock_vector({"equity": bad}, UNI.assets, UNI)
    with pytest.raises(InputError, match="must be finite and above -100%"):
        stress.shock_vector({"US_EQ": bad}, UNI.assets, UNI)


def test_shock_must_be_a_number() -> None:
    with pytest.raises(InputError, match="shock for 'equity' must be a number"):
        stress.shock_vector({"equity": "-30%"}, UNI.assets, UNI)


def test_apply_by_hand() -> None:
    res = stress.apply(
        W,
        {"equity": -0.35, "fixed_income": 0.05, "REIT": -0.20},
        name="2008",
        universe=UNI,
        value=1_000_000,
        floor=0.80,
    )
    by_hand = 0.50 * -0.35 + 0.30 * 0.05 + 0.10 * -0.20
    assert res.name == "2008"
    assert res.portfolio_return == pytest.approx(by_hand)
    assert res.contributions.to_dict() == pytest.approx(
        {"US_EQ": -0.1225, "INTL_EQ": -0.0525, "BONDS": 0.015, "REIT": -0.02, "CASH": 0.0}
    )
    assert res.contributions.sum() == pytest.approx(res.portfolio_return)
    assert res.value_before == 1_000_000
    assert res.value_after == pytest.approx(1_000_000 * (1 + by_hand))
    assert res.survives is True  # 81.8% of today's value
    d = res.to_dict()
    assert d["survives"] is True and d["floor"] == 0.80
    assert json.loads(json.dumps(d)) == d


def test_survival_floor() -> None:
    equity = pd.Series({"US_EQ": 1.0, "INTL_EQ": 0.0, "BONDS": 0.0, "REIT": 0.0, "CASH": 0.0})
    at = stress.apply(equity, {"US_EQ": -0.20}, value=100.0, floor=0.80)
    assert at.value_after == pytest.approx(80.0)
    assert at.survives is True  # exactly at the floor survives
    below = stress.apply(equity, {"US_EQ": -0.2001}, value=100.0, floor=0.80)
    assert below.survives is False
    assert stress.apply(equity, {"US_EQ": -0.5}, value=100.0).survives is None  # no floor


def test_apply_needs_a_series() -> None:
    with pytest.raises(InputError, match="weights must be a pandas Series"):
        stress.apply(W.to_dict(), {"US_EQ": -0.1})


# ============================================================================ rule conditions

NAMES = ["pe", "pe_average", "vix", "recession_probability"]


@pytest.mark.parametrize(
    "text",
    [
        "pe / pe_average - 1 > 0.20",
        "vix >= 30 and not recession_probability < 0.3",
        "-pe + 2 * vix != 0 or pe == 18",
        "10 < vix <= 40",
    ],
)
def test_conditions_that_parse(text) -> None:
    parse_condition(text, NAMES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "uses Call"),
        ("abs(pe) > 1", "uses Call"),
        ("pe.real > 1", "uses Attribute"),
        ("pe[0] > 1", "uses Subscript"),
        ("(lambda: 1)() > 0", "not allowed"),
        ("pe ** 2 > 1", "uses Pow"),
        ("pe % 2 > 1", "uses Mod"),
        ("[pe] == [1]", "uses List"),
        ("pe > 'high'", "non-numeric constant"),
        ("cape > 30", "unknown indicator 'cape'"),
        ("pe >", "does not parse"),
    ],
)
def test_conditions_that_are_rejected(text, message) -> None:
    with pytest.raises(InputError, match="rule condition") as info:
        parse_condition(text, NAMES)
    assert message in str(info.value)


# ============================================================================ overlay

POLICY = pd.Series({"US_EQ": 0.35, "INTL_EQ": 0.15, "BONDS": 0.30, "REIT": 0.10, "CASH": 0.10})
READING = {"pe": 25.0, "pe_average": 18.0, "vix": 28.0, "recession_probability": 0.35}
RULES = [
    Rule("valuation rich", "pe / pe_average - 1 > 0.20", -0.05),
    Rule("volatility spike", "vix > 30", -0.03),  # quiet: VIX is 28
    Rule("recession risk", "recession_probability > 0.30", -0.05),
    Rule("cheap", "pe < 15", +0.04),  # quiet
]
OFFSET = {"fixed_income": 0.70, "cash": 0.30}


def test_overlay_fires_the_rules_that_hold_and_spreads_by_policy_weights() -> None:
    ov = overlay(POLICY, READING, RULES, universe=UNI, band=0.20, offset=OFFSET)
    assert isinstance(ov, Overlay)
    assert [(r["name"], r["fired"]) for r in ov.fired] == [
        ("valuation rich", True),
        ("volatility spike", False),
        ("recession risk", True),
        ("cheap", False),
    ]
    assert ov.fired[0]["condition"] == "pe / pe_average - 1 > 0.20"
    assert ov.uncapped_tilt == pytest.approx(-0.10)
    assert ov.equity_tilt == pytest.approx(-0.10)
    # -10 points from equity 35:15, +7 to bonds and +3 to cash
    assert ov.target.to_dict() == pytest.approx(
        {"US_EQ": 0.28, "INTL_EQ": 0.12, "BONDS": 0.37, "REIT": 0.10, "CASH": 0.13}
    )
    assert ov.target.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("band", "tilt"), [(0.10, -0.10), (0.08, -0.08), (0.25, -0.13)])
def test_overlay_caps_the_tilt_at_the_band(band, tilt) -> None:
    rules = [Rule("a", "pe > 20", -0.05), Rule("b", "vix > 20", -0.03), Rule("c", "vix > 0", -0.05)]
    ov = overlay(POLICY, READING, rules, universe=UNI, band=band, offset=OFFSET)
    assert ov.uncapped_tilt == pytest.approx(-0.13)
    assert ov.equity_tilt == pytest.approx(tilt)
    equity = ov.target[["US_EQ", "INTL_EQ"]]
    assert equity.sum() == pytest.approx(0.50 + tilt)
    assert equity["US_EQ"] / equity["INTL_EQ"] == pytest.approx(35 / 15)
    assert ov.target["BONDS"] == pytest.approx(0.30 - 0.7 * tilt)
    assert ov.target["CASH"] == pytest.approx(0.10 - 0.3 * tilt)


def test_overlay_caps_a_positive_tilt_too() -> None:
    rules = [Rule("cheap", "pe < 30", 0.15)]
    ov = overlay(POLICY, READING, rules, universe=UNI, band=0.10, offset=OFFSET)
    assert (ov.uncapped_tilt, ov.equity_tilt) == (pytest.approx(0.15), pytest.approx(0.10))
    assert ov.target[["US_EQ", "INTL_EQ"]].sum() == pytest.approx(0.60)
    assert ov.target["CASH"] == pytest.approx(0.07)


def test_overlay_without_a_firing_rule_is_the_policy() -> None:
    quiet = [Rule("never", "pe < 0", -0.05)]
    ov = overlay(POLICY, READING, quiet, universe=UNI, band=0.10, offset=OFFSET)
    assert ov.equity_tilt == 0.0 and ov.uncapped_tilt == 0.0
    pd.testing.assert_series_equal(ov.target, POLICY.astype(float))


def test_overlay_keeps_universe_order() -> None:
    shuffled = POLICY[["CASH", "REIT", "US_EQ", "BONDS", "INTL_EQ"]]
    ov = overlay(shuffled, READING, RULES, universe=UNI, band=0.10, offset=OFFSET)
    assert list(ov.target.index) == list(UNI.assets)
    expected = overlay(POLICY, READING, RULES, universe=UNI, band=0.10, offset=OFFSET)
    pd.testing.assert_series_equal(ov.target, expected.target)


def test_overlay_gives_an_unnamed_asset_its_offset() -> None:
    # the policy does not name CASH (weight 0): the cash offset must still land there
    policy = pd.Series({"US_EQ": 0.40, "INTL_EQ": 0.20, "BONDS": 0.30, "REIT": 0.10})
    ov = overlay(policy, READING, RULES, universe=UNI, band=0.10, offset=OFFSET)
    assert list(ov.target.index) == list(UNI.assets)
    assert ov.target["CASH"] == pytest.approx(0.03)
    assert ov.target.sum() == pytest.approx(1.0)


def test_overlay_rejects_a_policy_asset_outside_the_universe() -> None:
    policy = pd.concat([POLICY * 0.9, pd.Series({"GOLD": 0.1})])
    with pytest.raises(InputError, match="GOLD"):
        overlay(policy, READING, RULES, universe=UNI, band=0.10, offset=OFFSET)


@pytest.mark.parametrize("offset", [{"fixed_income": 0.7, "cash": 0.2}, {"cash": 1.1}, {}])
def test_offset_shares_must_sum_to_one(offset) -> None:
    with pytest.raises(InputError, match="tactical offset shares sum to .*, not 1"):
        overlay(POLICY, READING, RULES, universe=UNI, band=0.10, offset=offset)


def test_offset_to_an_unknown_tag() -> None:
    with pytest.raises(InputError, match="unknown tag 'bonds'"):
        overlay(POLICY, READING, RULES, universe=UNI, band=0.10, offset={"bonds": 1.0})


def test_a_tilt_that_makes_weights_negative() -> None:
    rules = [Rule("all in", "pe > 0", 0.20)]
    with pytest.raises(InputError, match="negative for CASH"):
        overlay(POLICY, READING, rules, universe=UNI, band=0.20, offset={"cash": 1.0})


def test_a_bad_rule_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown indicator 'cape'"):
        overlay(
            POLICY, READING, [Rule("x", "cape > 30", -0.05)], universe=UNI, band=0.1, offset=OFFSET
        )
    with pytest.raises(InputError, match="divides by zero"):
        overlay(
            POLICY,
            {"pe": 1.0, "z": 0.0},
            [Rule("x", "pe / z > 1", -0.05)],
            universe=UNI,
            band=0.1,
            offset=OFFSET,
        )


# ============================================================================ export


def test_files_appear_only_at_exit(tmp_path) -> None:
    folder = tmp_path / "out"
    with OutputSet(folder) as out:
        out.write_text("a.txt", "alpha")
        out.write_json("b.json", {"x": np.float64(1.5), "y": [np.int64(2)]})
        out.write_csv("c.csv", pd.DataFrame({"w": [0.6, 0.4]}, index=["A", "B"]))
        out.write_bytes("d.bin", b"\x00\x01")
        assert not folder.exists()
        assert len(list(tmp_path.glob(".out.trimtab-stage-*"))) == 1  # the staging folder
    names = ["a.txt", "b.json", "c.csv", "d.bin", "manifest.json"]  # a minimal manifest
    assert sorted(p.name for p in folder.iterdir()) == names
    assert (folder / "a.txt").read_text() == "alpha"
    assert json.loads((folder / "b.json").read_text()) == {"x": 1.5, "y": [2]}
    assert (folder / "c.csv").read_text() == ",w\nA,0.6\nB,0.4\n"
    assert (folder / "d.bin").read_bytes() == b"\x00\x01"
    assert out.files == names
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"] == names
    assert manifest["checksums"]["a.txt"] == {
        "bytes": 5,
        "sha256": hashlib.sha256(b"alpha").hexdigest(),
    }
    assert sorted(manifest["checksums"]) == names[:-1]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no stage, no lock left
    assert list(folder.glob(".*")) == []


def test_an_exception_inside_the_block_leaves_nothing(tmp_path) -> None:
    folder = tmp_path / "out"
    with pytest.raises(RuntimeError, match="half way"):
        with OutputSet(folder) as out:
            out.write_text("a.txt", "alpha")
            raise RuntimeError("half way")
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_exception_leaves_an_earlier_set_untouched(tmp_path) -> None:
    folder = tmp_path / "out"
    with OutputSet(folder) as out:
        out.write_text("a.txt", "first")
        out.write_text("b.txt", "first")
    with pytest.raises(ValueError):
        with OutputSet(folder) as out:
            out.write_text("a.txt", "second")
            raise ValueError("no")
    texts = {p.name: p.read_text() for p in folder.iterdir() if p.name != "manifest.json"}
    assert texts == {"a.txt": "first", "b.txt": "first"}
    with OutputSet(folder) as out:
        out.write_text("a.txt", "second")
    assert (folder / "a.txt").read_text() == "second"
    assert not (folder / "b.txt").exists()  # the folder is replaced whole
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_writing_outside_the_block(tmp_path) -> None:
    out = OutputSet(tmp_path / "out")
    with pytest.raises(RuntimeError, match="outside its with-block"):
        out.write_text("a.txt", "x")
    with out:
        pass
    with pytest.raises(RuntimeError, match="outside its with-block"):
        out.write_bytes("a.bin", b"x")


def test_to_jsonable_and_json_text() -> None:
    value = {
        1: pd.Series({"A": np.float64(0.5), "B": np.nan}),
        "frame": pd.DataFrame({"x": [1.0]}, index=["r"]),
        "when": pd.Timestamp("2024-03-31"),
        "many": (np.int64(3), np.inf, -np.inf, np.bool_(True)),
    }
    assert to_jsonable(value) == {
        "1": {"A": 0.5, "B": None},
        "frame": {"r": {"x": 1.0}},
        "when": "2024-03-31T00:00:00",
        "many": [3, None, None, True],
    }
    text = json_text(value)
    assert text.endswith("}\n")
    assert json.loads(text)["many"] == [3, None, None, True]
