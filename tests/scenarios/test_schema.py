"""The scenario schema package: soft constraints by priority, the typed rebalance spec, one
tactical-rule grammar shared by the loader and the overlay, and the package's own shape."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import scenarios.schema as schema
from optimizer import InputError
from optimizer.rebalance import rebalance
from scenarios.schema import RebalanceSpec, TacticalRule, check_expression, load_scenario
from scenarios.tactical import Condition, Rule, overlay, parse_condition

DATA = Path(__file__).resolve().parent / "data"
BASE = (DATA / "endowment.toml").read_text(encoding="utf-8")

#: Every constraint table of the endowment file (by header) and the constraint it makes.
TABLES = {
    "[[constraints.group]]": "equity cap",  # the first group
    "[[constraints.band]]": "band equity",
    "[[constraints.exposure]]": "esg floor",
    "[[constraints.tracking_error]]": "tracking error limit",
    "[[constraints.turnover]]": "annual turnover",
    "[[constraints.leverage]]": "leverage limit",
    "[[constraints.linear]]": "tips vs bonds",
}
BOUNDS = "bounds = { max = 0.40, PE = { max = 0.12 }, CASH = { min = 0.02 } }"


def write(folder: Path, text: str) -> Path:
    shutil.copy(DATA / "correlation.csv", folder / "correlation.csv")
    path = folder / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def error(folder: Path, text: str) -> str:
    path = write(folder, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def with_priority(header: str, value: str, text: str = BASE) -> str:
    """``text`` with ``priority = value`` in the first table under ``header``."""
    return edit(header + "\n", f"{header}\npriority = {value}\n", text)


# ============================================================================ priority


def test_priority_is_accepted_on_every_constraint_table(tmp_path: Path) -> None:
    text = edit(BOUNDS, BOUNDS.replace("max = 0.40,", "max = 0.40, priority = 8,"))
    for level, header in enumerate(TABLES, start=1):
        text = with_priority(header, str(level), text)
    scn = load_scenario(write(tmp_path, text))
    by_name = {c.name: c for c in scn.constraints}
    for level, name in enumerate(TABLES.values(), start=1):
        assert by_name[name].priority == level, name
    assert by_name["bounds"].priority == 8
    assert by_name["bounds"].upper["PE"] == 0.12  # priority is not taken for an asset
    # tables without the key stay hard, and so does long-only (a flag, not a table)
    assert by_name["liquidity floor"].priority is None
    assert by_name["long-only"].priority is None


def test_without_priority_every_constraint_is_hard() -> None:
    scn = load_scenario(DATA / "endowment.toml")
    assert [c.priority for c in scn.constraints] == [None] * len(scn.constraints)


def test_priority_is_passed_to_the_constructor(tmp_path: Path) -> None:
    text = with_priority("[[constraints.group]]", "3")
    soft = {c.name: c for c in load_scenario(write(tmp_path, text)).constraints}
    hard = {c.name: c for c in load_scenario(DATA / "endowment.toml").constraints}
    assert soft["equity cap"] == dataclasses.replace(hard["equity cap"], priority=3)
    assert soft["equity cap"] != hard["equity cap"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "must be >= 1, got 0"),
        ("-2", "must be >= 1, got -2"),
        ("1.5", "expected an integer >= 1, got float 1.5"),
        ("2.0", "expected an integer >= 1, got float 2.0"),
        ('"2"', "expected an integer >= 1, got string '2'"),
        ("true", "expected an integer >= 1, got boolean True"),
        ("[1]", "expected an integer >= 1, got array [1]"),
    ],
)
def test_bad_priority_is_an_input_error(tmp_path: Path, value: str, expected: str) -> None:
    msg = error(tmp_path, with_priority("[[constraints.group]]", value))
    assert f"constraints.group[0].priority: {expected}" in msg
    assert "1 is the most important" in msg and "leave priority out for a hard constraint" in msg


@pytest.mark.parametrize(("header", "index"), [(h, i) for i, h in enumerate(TABLES)])
def test_bad_priority_names_its_table(tmp_path: Path, header: str, index: int) -> None:
    path = header.strip("[]")
    msg = error(tmp_path, with_priority(header, "0"))
    assert f"{path}[0].priority: must be >= 1, got 0" in msg


def test_bad_priority_on_bounds(tmp_path: Path) -> None:
    text = edit(BOUNDS, BOUNDS.replace("max = 0.40,", "max = 0.40, priority = 0.5,"))
    assert "constraints.bounds.priority: expected an integer >= 1, got float 0.5" in error(
        tmp_path, text
    )


def test_misspelt_priority_names_the_key(tmp_path: Path) -> None:
    text = edit("[[constraints.leverage]]\n", "[[constraints.leverage]]\npriorty = 2\n")
    msg = error(tmp_path, text)
    assert "constraints.leverage[0].priorty: unknown key (did you mean 'priority'?)" in msg
    text = edit(BOUNDS, BOUNDS.replace("max = 0.40,", "max = 0.40, priorty = 2,"))
    assert "(did you mean 'priority'?)" in error(tmp_path, text)


def test_priority_is_documented() -> None:
    assert "priority" in schema.__doc__


# ============================================================================ rebalance spec


def test_rebalance_spec_is_typed_and_frozen() -> None:
    scn = load_scenario(DATA / "endowment.toml")
    spec = scn.rebalance
    assert isinstance(spec, RebalanceSpec)
    assert (spec.tracking_weight, spec.min_trade, spec.threshold) == (100.0, 10_000.0, 0.05)
    assert spec.cash_flow == 20_000_000 - 25_000_000
    assert (spec.portfolio_id, spec.currency) == ("riverside", "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.threshold = None
    # a numpydoc Attributes entry for every field
    doc = RebalanceSpec.__doc__
    for f in dataclasses.fields(RebalanceSpec):
        assert re.search(rf"^    {f.name} : ", doc, re.M), f.name


def test_rebalance_kwargs_are_rebalance_arguments() -> None:
    spec = load_scenario(DATA / "endowment.toml").rebalance
    accepted = set(inspect.signature(rebalance).parameters)
    assert set(spec.kwargs()) <= accepted
    assert "threshold" not in spec.kwargs()  # a trigger, checked before the rebalance
    lots = spec.kwargs()["lot_size"]
    assert type(lots) is dict and lots == {"US_EQ": 1.0, "INTL_EQ": 1.0}
    lots["US_EQ"] = 5.0  # a fresh dict each call: the spec does not change
    assert spec.lot_size["US_EQ"] == 1.0


def test_rebalance_defaults_without_the_section(tmp_path: Path) -> None:
    text = re.sub(r"\[rebalance\]\n(?:[a-z_]+ = .*\n)+", "", BASE)
    text = edit("prices = { US_EQ = 450.0", "# prices = { US_EQ = 450.0", text)
    scn = load_scenario(write(tmp_path, text))
    spec = scn.rebalance
    assert spec == spec  # identity equality (the spec holds a Series)
    assert (spec.threshold, spec.tracking_weight, spec.lot_size, spec.untradeable) == (
        None,
        None,
        None,
        (),
    )
    assert spec.kwargs() == {
        "cash_flow": 20_000_000.0,  # the holdings' cash is invested
        "as_of": scn.portfolio.as_of,
        "portfolio_id": "riverside",
        "currency": "USD",
    }


def test_per_asset_no_trade_bands(tmp_path: Path) -> None:
    text = edit("no_trade_band = 0.01", "no_trade_band = { US_EQ = 0.02, TIPS = 0.01 }")
    spec = load_scenario(write(tmp_path, text)).rebalance
    assert dict(spec.no_trade_bands) == {"US_EQ": 0.02, "TIPS": 0.01}
    with pytest.raises(TypeError):
        spec.no_trade_bands["US_EQ"] = 0.5
    assert spec.kwargs()["no_trade_bands"] == {"US_EQ": 0.02, "TIPS": 0.01}


# ============================================================================ one grammar


def test_the_loader_and_the_overlay_share_the_grammar() -> None:
    assert check_expression is parse_condition
    assert TacticalRule is Rule


def test_not_is_part_of_the_grammar_everywhere(tmp_path: Path) -> None:
    when = "not vix < 25 and pe / pe_average - 1 > 0.20"
    scn = load_scenario(write(tmp_path, edit('"pe / pe_average - 1 > 0.20"', f'"{when}"')))
    rule = scn.tactical.rules[0]
    assert rule.when == when
    cond = parse_condition(rule.when, list(scn.tactical.indicators))
    assert cond(scn.tactical.indicators) is True  # pe 25 vs 19: rich; vix 28
    assert cond({**scn.tactical.indicators, "vix": 20.0}) is False


@pytest.mark.parametrize(
    "when", ["pe - 20", "abs(pe) > 1", "pe ** 2 > 1", "pe > 'x'", "pe in [1, 2]", "cape > 1"]
)
def test_the_loader_says_what_the_overlay_says(tmp_path: Path, when: str) -> None:
    scn = load_scenario(DATA / "endowment.toml")
    names = list(scn.tactical.indicators)
    with pytest.raises(InputError) as direct:
        parse_condition(when, names)
    msg = error(tmp_path, edit('when = "pe / pe_average - 1 > 0.20"', f"when = '''{when}'''"))
    assert msg.endswith(f"tactical.rules[0].when: {direct.value}")
    universe = scn.universe
    policy = pd.Series(1 / len(universe.assets), index=universe.index)
    with pytest.raises(InputError) as applied:
        overlay(
            policy,
            dict.fromkeys(names, 1.0),
            [Rule("r", when, -0.05)],
            universe=universe,
            band=0.1,
            offset={"fixed_income": 1.0},
        )
    assert str(applied.value) == str(direct.value)


@pytest.mark.parametrize(
    ("text", "values", "holds"),
    [
        ("10 < vix <= 40", {"vix": 40.0}, True),
        ("10 < vix <= 40", {"vix": 41.0}, False),
        ("-vix < -25 or vix == 0", {"vix": 0.0}, True),
        ("not (vix > 1 and vix < 3)", {"vix": 2.0}, False),
        ("vix / 2 * 4 - 1 >= +7", {"vix": 4.0}, True),
    ],
)
def test_conditions_evaluate(text: str, values: dict, holds: bool) -> None:
    cond = parse_condition(text, ["vix"])
    assert isinstance(cond, Condition)
    assert cond(values) is holds
    again = pickle.loads(pickle.dumps(cond))
    assert again == cond and again(values) is holds


# ============================================================================ the package


def test_public_names_import_from_the_package() -> None:
    for name in schema.__all__:
        assert getattr(schema, name) is not None, name
    from scenarios import Scenario
    from scenarios import load_scenario as top_level

    assert Scenario is schema.Scenario and top_level is schema.load_scenario


def test_modules_are_readable_in_one_sitting() -> None:
    folder = Path(schema.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert len(sizes) >= 8
    assert max(sizes.values()) < 600, sizes
