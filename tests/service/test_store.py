"""The store (keys, idempotency claims), the keys command and the JSON -> TOML documents."""

from __future__ import annotations

import json
import threading
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import InputError
from scenarios.cli import main
from scenarios.service.documents import check_no_files, located, to_toml
from scenarios.service.store import Store


def test_keys_create_list_revoke_command(tmp_path, capsys):
    db = str(tmp_path / "k.db")
    assert main(["keys", "create", "--name", "desk1", "--db", db]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("tt_")
    assert Store(db).tenant_of(key) == "desk1"
    assert main(["keys", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["tenant"] for k in listed] == ["desk1"] and key.split("_", 2)[2] not in str(listed)
    assert main(["keys", "revoke", "--id", listed[0]["key_id"], "--db", db]) == 0
    assert Store(db).tenant_of(key) is None
    assert Store(db).list_keys()[0].revoked


def test_keys_errors_name_the_culprit(tmp_path, capsys):
    db = str(tmp_path / "k.db")
    assert main(["keys", "create", "--name", "bad name!", "--db", db]) == 2
    assert "--name 'bad name!'" in capsys.readouterr().err
    assert main(["keys", "revoke", "--id", "feedbeef", "--db", db]) == 2
    assert "key id 'feedbeef': no such key" in capsys.readouterr().err
    with pytest.raises(InputError, match="is a folder"):
        Store(tmp_path)


def test_serve_refuses_bad_limits(capsys):
    assert main(["serve", "--solve-timeout", "0"]) == 2
    assert "--solve-timeout 0.0: must be > 0" in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers 0: must be >= 1" in capsys.readouterr().err


def test_concurrent_claims_of_one_key_give_one_owner(tmp_path):
    store = Store(tmp_path / "s.db")
    owners, barrier = [], threading.Barrier(8)

    def claim():
        other = Store(tmp_path / "s.db")  # its own connections, as another process would
        barrier.wait()
        owners.append(other.claim("t", "k1", "sha") is None)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(owners) == [False] * 7 + [True]
    assert store.read("SELECT count(*) AS n FROM idempotency")[0]["n"] == 1


def test_a_dead_processes_claim_is_taken_over(tmp_path):
    store = Store(tmp_path / "s.db")
    with store.tx() as con:
        con.execute(
            "INSERT INTO idempotency (tenant, key, body_sha256, state, pid, created) "
            "VALUES ('t', 'k', 'sha', 'pending', 999999999, 'x')"
        )
    assert store.claim("t", "k", "sha") is None


def test_files_are_refused_by_name():
    with pytest.raises(InputError, match=r"estimates.correlation: 'c.csv' names a file"):
        check_no_files({"estimates": {"correlation": "c.csv"}})


def test_null_is_refused_with_its_path():
    with pytest.raises(InputError, match=r"constraints.group\[1\].max: null"):
        to_toml({"constraints": {"group": [{"max": 1}, {"max": None}]}})


def test_lone_surrogates_are_refused_with_their_path():
    with pytest.raises(InputError, match=r"portfolio.name: text with a lone surrogate"):
        to_toml({"portfolio": {"name": "a\ud800"}})


def test_located_takes_the_key_path():
    assert located("request.toml: a.b[2].c: bad") == ("a.b[2].c: bad", "a.b[2].c")
    assert located("US_EQ: something") == ("US_EQ: something", None)


_keys = st.text(min_size=1, max_size=8)
_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, st.dictionaries(_keys, _values, max_size=4), max_size=4))
def test_json_documents_read_back_from_toml(doc):
    """to_toml writes what tomllib reads back as the same document (no date keys here)."""
    doc = {
        k: {kk: v for kk, v in t.items() if kk not in ("as_of", "start", "end")}
        for k, t in doc.items()
    }
    assert tomllib.loads(to_toml(doc)) == doc


def test_an_unexpected_error_is_internal_without_details():
    from scenarios.service.errors import body, from_exception

    err = from_exception(KeyError("secret internals"))
    assert err.kind == "internal" and err.status == 500
    assert "secret internals" not in err.message and "KeyError" in err.message
    assert body(err, "rid")["error"]["request_id"] == "rid"
