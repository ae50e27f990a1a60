"""The batch's inputs and outputs without a cluster: bad files, the schema, publishing whole."""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import pytest

from optimizer.errors import InputError
from scenarios.batch import IN_PROCESS, run_batch
from scenarios.batch.example import scenario_text, write_example
from scenarios.batch.outputs import FILES
from scenarios.cli import main
from scenarios.schema import load_scenario


def _run(book, path, **kw):
    return run_batch(book["scenario"], path, scheduler=IN_PROCESS, **kw)


def _write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture
def small(book):
    ids = list(dict.fromkeys(book["frame"]["account"]))[:6]
    return book["frame"][book["frame"]["account"].isin(ids)].reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_column_names_file_and_column(book, small, tmp_path, suffix):
    path = _write(small.drop(columns="model"), tmp_path / f"a{suffix}")
    with pytest.raises(InputError, match=r"a\.(csv|parquet): missing column 'model'"):
        _run(book, path)


def test_unknown_column_names_the_closest(book, small, tmp_path):
    path = _write(small.rename(columns={"cash_flow": "cashflow"}), tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"a\.csv: unknown column 'cashflow'.*cash_flow"):
        _run(book, path)


def test_quantity_and_value_both_refused(book, small, tmp_path):
    path = _write(small.assign(value=1.0), tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"a\.csv: give exactly one of the columns 'quantity'"):
        _run(book, path)


def test_unknown_model_names_file_row_account_and_models(book, small, tmp_path):
    f = small.copy()
    acct = f["account"].iloc[-1]
    f.loc[f["account"] == acct, "model"] = "grwoth"
    path = _write(f, tmp_path / "a.parquet")
    with pytest.raises(InputError) as err:
        _run(book, path)
    text = str(err.value)
    assert "a.parquet" in text and repr(acct) in text and "unknown model 'grwoth'" in text
    assert "'growth'" in text  # the closest


def test_duplicate_rows_name_account_and_asset(book, small, tmp_path):
    f = pd.concat([small, small.iloc[[3]]]).sort_values("account", kind="stable")
    path = _write(f, tmp_path / "a.csv")
    acct, asset = small.iloc[3]["account"], small.iloc[3]["asset"]
    with pytest.raises(InputError, match=rf"account '{acct}' lists asset '{asset}' twice"):
        _run(book, path)


def test_rows_of_an_account_apart_refused(book, small, tmp_path):
    f = pd.concat([small, small.iloc[[0]].assign(asset="CM01")])  # account 1 again at the end
    path = _write(f, tmp_path / "a.csv")
    acct = small.iloc[0]["account"]
    with pytest.raises(InputError, match=rf"account '{acct}' appears again after other"):
        _run(book, path, partition_size=2)


def test_settings_differing_between_rows_refused(book, small, tmp_path):
    f = small.copy()
    f.loc[1, "cash_flow"] = 123.0
    path = _write(f, tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"column 'cash_flow' differs between its rows"):
        _run(book, path)


def test_bad_cell_names_row_and_column(book, small, tmp_path):
    f = small.astype({"quantity": object})
    f.loc[4, "quantity"] = "12,5"
    path = _write(f, tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"a\.csv: row 5: column 'quantity': expected a finite"):
        _run(book, path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("junk.parquet", b"not parquet at all", r"junk\.parquet: not a readable parquet"),
        ("missing.csv", None, r"missing\.csv: no such accounts file"),
        ("accounts.xlsx", b"x", r"accounts\.xlsx: unknown accounts file type"),
        ("empty.csv", b"account,asset,quantity,model\n", r"empty\.csv: the accounts file has no"),
    ],
)
def test_bad_files(book, tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        _run(book, path)


def test_quantities_without_prices_refused(tmp_path, small):
    text = scenario_text(7)
    text = text[: text.index("prices = ")] + text[text.index("\n", text.index("prices = ")) + 1 :]
    scenario = tmp_path / "s.toml"
    scenario.write_text(text, encoding="utf-8")
    path = _write(small, tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"s\.toml: batch\.prices: missing: the accounts give"):
        run_batch(scenario, path, scheduler=IN_PROCESS)


def test_scenario_without_batch_section_refused(tmp_path, small):
    text = scenario_text(7)
    scenario = tmp_path / "s.toml"
    text = text[: text.index("[batch]")].replace("[portfolio]", "[portfolio]\nvalue = 1e6")
    scenario.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=r"s\.toml: no \[batch\] section"):
        run_batch(scenario, _write(small, tmp_path / "a.csv"), scheduler=IN_PROCESS)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace('id = "growth"', 'id = "balanced"'), r"duplicate model id"),
        (lambda t: t.replace("EQ01 = 0.", "EQ99 = 0.", 1), r"unknown asset 'EQ99'"),
        (lambda t: t + "\n[rebalance]\ncash_flow = 5.0\n", r"rebalance\.cash_flow: not used in a"),
        (lambda t: t.replace("[[batch.models]]", "[[batch.model]]"), r"batch\.model: unknown key"),
    ],
)
def test_batch_schema_errors_name_the_key(tmp_path, edit, match):
    scenario = tmp_path / "s.toml"
    scenario.write_text(edit(scenario_text(7)), encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_scenario(scenario)


def test_model_weights_must_sum_to_one(tmp_path):
    text = scenario_text(7)
    start = text.index('id = "growth"')
    head, tail = text[:start], text[start:]
    first = tail[tail.index("EQ01 = ") : tail.index(",", tail.index("EQ01 = "))]
    tail = tail.replace(first, "EQ01 = 0.5")
    scenario = tmp_path / "s.toml"
    scenario.write_text(head + tail, encoding="utf-8")
    with pytest.raises(InputError, match=r"batch\.models\[2\]\.weights: model 'growth' weights"):
        load_scenario(scenario)


def test_cli_bad_input_exits_2_naming_the_file(book, small, tmp_path, capsys):
    path = _write(small.drop(columns="asset"), tmp_path / "a.csv")
    code = main(["batch", str(book["scenario"]), "--accounts", path, "--out", str(tmp_path / "o")])
    assert code == 2
    assert "a.csv: missing column 'asset'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_runs_and_counts_failed_accounts(book, small, tmp_path, capsys, check):
    frame, bad = check.poisoned(book["frame"])
    path = _write(frame, tmp_path / "p.parquet")
    out = tmp_path / "o"
    code = main(
        [
            "batch",
            str(book["scenario"]),
            "--accounts",
            path,
            "--out",
            str(out),
            "--scheduler",
            IN_PROCESS,
            "--partition-size",
            "50",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert f"{len(bad)} of {frame['account'].nunique()} accounts were not planned" in captured.err
    assert "status.csv" in captured.err
    status = pd.read_csv(out / "status.csv")
    assert sorted(status.loc[status["status"] != "ok", "account"]) == sorted(bad)


def test_outputs_published_whole_and_a_failed_batch_leaves_them(book, small, tmp_path):
    out = tmp_path / "o"
    good = _write(small, tmp_path / "a.parquet")
    _run(book, good, out=out)
    assert sorted(os.listdir(out)) == sorted(FILES)
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["checksums"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert manifest["command"] == "batch"
    assert (
        manifest["accounts_sha256"]
        == hashlib.sha256((tmp_path / "a.parquet").read_bytes()).hexdigest()
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accounts"] == {"total": 6, "ok": 6, "infeasible": 0, "failed": 0}
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    # a batch that fails part way (an unknown model in the last account) publishes nothing
    f = small.copy()
    f.loc[f["account"] == f["account"].iloc[-1], "model"] = "nope"
    with pytest.raises(InputError, match="unknown model 'nope'"):
        _run(book, _write(f, tmp_path / "b.parquet"), out=out, partition_size=1)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".o.")] == []  # no stage left
    # a second good run replaces the folder whole: the same files, no stale parts
    _run(book, good, out=out, partition_size=2)
    assert sorted(os.listdir(out)) == sorted(FILES)
    assert (out / "orders.csv").read_bytes() == before["orders.csv"]


def test_same_orders_whatever_the_partition_size(book, small):
    one = _run(book, _write(small, book["folder"] / "s.parquet"), partition_size=1)
    all_ = _run(book, book["folder"] / "s.parquet", partition_size=100)
    pd.testing.assert_frame_equal(one.orders, all_.orders)
    pd.testing.assert_frame_equal(one.status, all_.status)


def test_example_is_the_same_for_the_same_seed(tmp_path, capsys):
    assert write_example(tmp_path, n_accounts=50) == write_example(tmp_path, n_accounts=50)
    assert main(["example", "adviser_book", "--dir", str(tmp_path)]) == 0
    assert "adviser_book_accounts.parquet" in capsys.readouterr().out
    frame = pd.read_parquet(tmp_path / "adviser_book_accounts.parquet")
    assert frame["account"].nunique() == 3000
    blobs = write_example(tmp_path)
    for name, blob in blobs.items():
        assert (tmp_path / name).read_bytes() == blob
    scn = load_scenario(tmp_path / "adviser_book.toml")
    assert sorted(scn.batch.models) == ["balanced", "conservative", "growth"]


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('kind = "both"\ncap_adv = 0.1', r"batch\.pooled\.kind: unknown value 'both'"),
        ("cap_adv = -0.1", r"batch\.pooled\.cap_adv: must be > 0"),
        ('kind = "net"', r"batch\.pooled: give cap_adv, cap or impact"),
        ("cap = { EQ01 = 1e6 }\ncap_adv = 0.1", r"batch\.pooled\.cap_adv: not used with"),
        ("cap = { ZZ01 = 1e6 }", r"batch\.pooled\.cap\.ZZ01: unknown asset 'ZZ01'"),
        ("caps = 1", r"batch\.pooled\.caps: unknown key"),
    ],
)
def test_pooled_schema_errors_name_the_key(tmp_path, table, match):
    scenario = tmp_path / "s.toml"
    scenario.write_text(scenario_text(7) + f"\n[batch.pooled]\n{table}\n", encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_scenario(scenario)


def test_pooled_cap_adv_needs_costs_adv(tmp_path, small):
    scenario = tmp_path / "s.toml"
    scenario.write_text(scenario_text(7) + "\n[batch.pooled]\ncap_adv = 0.1\n", encoding="utf-8")
    path = _write(small, tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"s\.toml: batch\.pooled\.cap_adv: needs \[costs\] adv"):
        run_batch(scenario, path, scheduler=IN_PROCESS)


def test_rebalance_options_apply_to_every_account(tmp_path, small):
    scenario = tmp_path / "s.toml"
    text = scenario_text(7) + '\n[rebalance]\nlot_size = 1\nuntradeable = ["CM01"]\n'
    scenario.write_text(text, encoding="utf-8")
    assert load_scenario(scenario).rebalance.lot_size == 1
    res = run_batch(scenario, _write(small, tmp_path / "a.csv"), scheduler=IN_PROCESS)
    assert (res.status["status"] == "ok").all()
    traded = res.orders[res.orders["side"] != "hold"]
    q = traded["quantity"].to_numpy(float)
    assert abs(q - q.round()).max() < 1e-6  # whole shares
    assert (res.orders.loc[res.orders["asset"] == "CM01", "side"] == "hold").all()
