"""Accounts and cash through scenario files, the engine and the CLI (issue 10, bullets 3 and 5).

Each case is the adviser's scenario (scenarios/examples/ria_q1_2024.toml) or the
endowment's with one section changed: an asset id equal to a tag, a pending
withdrawal or idle cash under ``[rebalance] threshold``, an all-cash or empty
account, a withdrawal of the whole portfolio, ``max_turnover = 0``, untradeable
assets off their target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from optimizer.errors import InputError
from optimizer.triggers import Threshold
from scenarios import engine, load_scenario, run_scenario
from scenarios.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "examples"
RIA = (EXAMPLES / "ria_q1_2024.toml").read_text(encoding="utf-8")
AT_TARGET = "values = { US_EQ = 435_600, INTL_EQ = 217_800, BONDS = 326_700, REITS = 108_900 }"


def scenario(folder: Path, name: str, *, holdings: str | None = None, rebalance: str = "") -> Path:
    """The adviser's scenario with its [holdings] and [rebalance] bodies replaced."""
    text = RIA
    if holdings is not None:
        text = re.sub(r"\[holdings\]\n.*?\n\n", f"[holdings]\n{holdings}\n\n", text, flags=re.S)
    text = re.sub(r"\[rebalance\]\n.*", f"[rebalance]\n{rebalance}\n", text, flags=re.S)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ============================================================================ one namespace


@pytest.fixture
def clash(tmp_path) -> Path:
    text = (EXAMPLES / "riverside_endowment.toml").read_text(encoding="utf-8")
    path = tmp_path / "clash.toml"
    path.write_text(text.replace("REAL_ASSETS", "equity"), encoding="utf-8")
    return path


def test_an_asset_id_equal_to_a_tag_is_refused_by_the_loader(clash) -> None:
    with pytest.raises(InputError) as info:
        load_scenario(clash)
    assert str(info.value) == (
        f"{clash}: assets: asset id 'equity' is also a tag (carried by US_EQ, INTL_EQ): ids "
        "and tags share one namespace; rename one"
    )


def test_the_clash_exits_2_before_any_stress_is_run(clash, capsys) -> None:
    code, out, err = cli(capsys, "run", str(clash))
    assert code == 2 and out == ""
    assert "asset id 'equity' is also a tag (carried by US_EQ, INTL_EQ)" in err
    assert str(clash) in err


# ============================================================================ the trigger counts cash


def test_a_withdrawal_at_target_trades_under_a_threshold(tmp_path) -> None:
    path = scenario(
        tmp_path, "w", holdings=AT_TARGET, rebalance="threshold = 0.03\ncash_flow = -500_000"
    )
    res = run_scenario(load_scenario(path))
    assert res.decision.trade
    assert res.decision.reasons[0] == "cash flow of -$500,000 to fund"
    assert res.plan is not None
    assert res.plan.trades["notional"].sum() == pytest.approx(500_000.0, abs=1e-4)
    assert set(res.plan.trades["side"]) == {"sell"}


def test_idle_cash_trades_under_a_threshold(tmp_path, capsys) -> None:
    path = scenario(
        tmp_path, "idle", holdings=AT_TARGET + "\ncash = 1_000_000", rebalance="threshold = 0.03"
    )
    res = run_scenario(load_scenario(path))
    assert res.decision.reasons[0] == (
        "idle cash 47.9% of the account above its 0% target (band 3.00%)"
    )
    assert res.plan.trades["notional"].sum() == pytest.approx(1_000_000.0, abs=1e-4)
    code, out, _ = cli(capsys, "rebalance", str(path))
    assert code == 0 and "rebalance trigger: trade (idle cash 47.9% of the account" in out


def test_the_decision_takes_the_scenario_cash_unless_given(tmp_path) -> None:
    path = scenario(
        tmp_path, "idle", holdings=AT_TARGET + "\ncash = 1_000_000", rebalance="threshold = 0.03"
    )
    scn = load_scenario(path)
    target = scn.policy
    trigger = Threshold(0.03)
    assert engine.rebalance_decision(scn.holdings.values, target, trigger, scn).trade
    assert not engine.rebalance_decision(scn.holdings.values, target, trigger, scn, cash=0.0)
    told = engine.rebalance_decision(
        scn.holdings.values, target, trigger, scn, cash=0.0, cash_flow=-10.0
    )
    assert told.reasons[0] == "cash flow of -$10 to fund"
    assert scn.rebalance.pending_flow == 0.0 and scn.rebalance.cash_flow == 1_000_000.0


# ============================================================================ all-cash and empty accounts


@pytest.mark.parametrize("rebalance", ["threshold = 0.03", ""], ids=["threshold", "no-trigger"])
def test_an_all_cash_account_is_bought_into_the_target(tmp_path, capsys, rebalance) -> None:
    path = scenario(
        tmp_path, "cash", holdings="values = { US_EQ = 0 }\ncash = 100_000", rebalance=rebalance
    )
    res = run_scenario(load_scenario(path))
    if rebalance:
        assert res.decision.reasons[0].startswith("idle cash 100.0% of the account")
    plan = res.plan
    assert plan.turnover == pytest.approx(1.0, abs=1e-9)
    for asset, weight in {"US_EQ": 0.4, "INTL_EQ": 0.2, "BONDS": 0.3, "REITS": 0.1}.items():
        assert plan.weights_after[asset] == pytest.approx(weight, abs=1e-8)
    code, out, _ = cli(capsys, "rebalance", str(path))
    assert code == 0 and "turnover 100.00%" in out and "nan" not in out


def test_an_empty_account_with_a_deposit_is_worth_the_deposit(tmp_path) -> None:
    path = scenario(
        tmp_path,
        "dep",
        holdings="values = { US_EQ = 0 }",
        rebalance="threshold = 0.03\ncash_flow = 250_000",
    )
    scn = load_scenario(path)
    assert scn.portfolio.value == 250_000.0
    res = run_scenario(scn)
    assert res.decision.reasons[0] == "cash flow of +$250,000 to invest"
    assert res.plan.trades["notional"].sum() == pytest.approx(250_000.0, abs=1e-4)


def test_an_empty_account_without_a_deposit_is_refused(tmp_path, capsys) -> None:
    path = scenario(
        tmp_path, "empty", holdings="values = { US_EQ = 0 }", rebalance="threshold = 0.03"
    )
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    assert f"{path}: holdings: the account is empty (positions plus cash 0.00)" in err
    assert "a positive rebalance.cash_flow to invest" in err


def test_an_empty_account_whose_value_is_not_the_deposit_names_both(tmp_path) -> None:
    path = scenario(
        tmp_path, "dep", holdings="values = { US_EQ = 0 }", rebalance="cash_flow = 250_000"
    )
    path.write_text(
        path.read_text().replace("as_of = 2024-03-31", "as_of = 2024-03-31\nvalue = 300_000")
    )
    with pytest.raises(
        InputError,
        match=r"portfolio.value: 300,000.00 but the account holds "
        r"nothing and rebalance.cash_flow deposits 250,000.00",
    ):
        load_scenario(path)


# ============================================================================ withdrawals


def test_withdrawing_the_whole_portfolio_is_a_liquidation_plan(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "all", rebalance="cash_flow = -1_089_000")
    res = run_scenario(load_scenario(path))
    plan = res.plan
    assert plan.status == "liquidation" and plan.value_after == 0.0
    assert plan.trades["notional"].sum() == pytest.approx(1_089_000.0)
    assert plan.notes[0].startswith("liquidation: the withdrawal of 1,089,000.00 is the whole")
    code, out, _ = cli(capsys, "rebalance", "--json", str(path))
    orders = json.loads(out)
    assert code == 0 and orders["value_after"] == 0.0
    assert {o["side"] for o in orders["orders"]} == {"sell"} and len(orders["orders"]) == 4


def test_withdrawing_the_whole_account_with_its_cash_sells_every_position(tmp_path) -> None:
    holdings = "values = { US_EQ = 460_000, INTL_EQ = 230_000, BONDS = 291_000, REITS = 108_000 }"
    path = scenario(
        tmp_path, "all", holdings=holdings + "\ncash = 11_000", rebalance="cash_flow = -1_100_000"
    )
    plan = run_scenario(load_scenario(path)).plan
    assert plan.status == "liquidation"
    assert plan.trades["notional"].sum() == pytest.approx(1_089_000.0)


def test_withdrawing_more_than_the_whole_portfolio_names_both_amounts(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "more", rebalance="cash_flow = -1_089_001")
    code, _, err = cli(capsys, "run", str(path))
    assert code == 2
    assert (
        f"{path}: rebalance.cash_flow: withdraws 1,089,001.00, more than the portfolio's "
        "1,089,000.00 (positions plus cash): at most 1,089,000.00 can be withdrawn" in err
    )


# ============================================================================ notes name the cause


def test_a_turnover_cap_of_zero_is_the_cause_the_note_names(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "t0", rebalance="threshold = 0.03\nmax_turnover = 0")
    plan = run_scenario(load_scenario(path)).plan
    assert plan.trades.empty
    assert plan.notes == (
        "the turnover cap (max_turnover = 0) allows no trade: the largest weight gap is 3.28 "
        "points (BONDS), tracking error 0.53%",
    )
    code, out, _ = cli(capsys, "rebalance", str(path))
    assert code == 0 and "note: the turnover cap (max_turnover = 0) allows no trade" in out
    assert "ticket" not in out


def test_untradeable_assets_off_target_are_named_in_a_note(tmp_path) -> None:
    path = scenario(tmp_path, "locked", rebalance='untradeable = ["US_EQ"]')
    plan = run_scenario(load_scenario(path)).plan
    assert any(
        n.startswith(
            "the target is out of reach: untradeable assets are held off it (US_EQ 42.24% "
            "against 40.00%); the largest weight gap is 2.24 points (US_EQ)"
        )
        for n in plan.notes
    ), plan.notes
