"""`optout-desk connection add` + `fetch` against the sandbox, as an operator runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from optout_desk.cli import main
from optout_desk.core.records import OptOutRecord, canonical_timestamp
from optout_desk.sandbox.checkmarket import ALL_ROLES
from optout_desk.sandbox.server import Sandbox
from optout_desk.store import cache, connections, history
from optout_desk.store.db import connect
from tests.fixtures.sandbox import SandboxFactory


@pytest.fixture
def demo_connection(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection named 'demo' on the sandbox, keys from the environment (no terminal)."""
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    assert main(["connection", "add", "demo", "--system", "checkmarket",
                 "--base-url", sandbox.base_url]) == 0
    return "demo"


def cached_count(name: str) -> int:
    db = connect()
    try:
        profile = connections.get(db, name)
        assert profile.id is not None
        return cache.sync_state(db, profile.id).count
    finally:
        db.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_first_fetch_writes_the_complete_list(
    sandbox: Sandbox, demo_connection: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "optouts.csv"
    assert main(["fetch", demo_connection, "--output", str(output)]) == 0
    expected = sandbox.state.optouts()
    rows = read_csv(output)
    assert len(rows) == len(expected) == cached_count("demo")
    required = {"Email", "Phone", "DateOptOut", "ContactId", "FirstName", "LastName", "LangCode"}
    assert required <= set(rows[0])
    assert sorted(r["ContactId"] for r in rows) == sorted(str(o["ContactId"]) for o in expected)
    assert sorted(r["Email"] for r in rows if r["Email"]) == sorted(
        o["Email"] for o in expected if o.get("Email")
    )
    printed = capsys.readouterr().out
    assert f"{len(expected):,} cached" in printed and "full fetch" in printed


def test_incremental_fetch_picks_up_exactly_the_new_opt_outs(
    sandbox: Sandbox, demo_connection: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", demo_connection]) == 0
    before = cached_count("demo")
    new = sandbox.state.add_optouts(7)
    capsys.readouterr()
    output = tmp_path / "after.jsonl"
    assert main(["fetch", demo_connection, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "incremental fetch" in printed and "7 new" in printed
    assert cached_count("demo") == before + 7
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == before + 7
    ids = {line["ContactId"] for line in lines}
    assert {o["ContactId"] for o in new} <= ids
    # A repeat with nothing new adds nothing (the overlap window is deduplicated).
    assert main(["fetch", demo_connection]) == 0
    assert "0 new" in capsys.readouterr().out
    assert cached_count("demo") == before + 7


def test_full_fetch_and_xlsx_output(
    sandbox: Sandbox, demo_connection: str, tmp_path: Path
) -> None:
    output = tmp_path / "all.xlsx"
    assert main(["fetch", demo_connection, "--full", "--output", str(output)]) == 0
    workbook = openpyxl.load_workbook(output, read_only=True)
    try:
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()
    assert len(rows) - 1 == len(sandbox.state.optouts())


def test_failed_fetch_leaves_the_cached_list_as_it_was(
    sandbox: Sandbox, demo_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", demo_connection]) == 0
    before = cached_count("demo")
    sandbox.state.add_optouts(5)
    sandbox.state.inject_faults("500", 1000)
    capsys.readouterr()
    assert main(["fetch", demo_connection, "--full"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("optout-desk: ") and "Traceback" not in error
    assert cached_count("demo") == before


def test_wrong_keys_give_a_clear_message_without_the_keys(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_BAD_MASTER_KEY", "wrong-master-key-123")
    monkeypatch.setenv("OPTOUT_DESK_SECRET_BAD_KEY", "wrong-key-456")
    assert main(["connection", "add", "bad", "--system", "checkmarket",
                 "--base-url", sandbox.base_url]) == 0
    capsys.readouterr()
    assert main(["fetch", "bad"]) == 1
    error = capsys.readouterr().err
    assert "key" in error.lower()
    assert "wrong-master-key-123" not in error and "wrong-key-456" not in error


@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "nobody"],
        ["fetch", "demo", "--since", "last tuesday"],
        ["fetch", "demo", "--output", "list.pdf"],
    ],
)
def test_bad_input_exits_2_with_one_sentence(
    demo_connection: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("optout-desk: ") and len(error.strip().splitlines()) == 1


# -- complete or a clear failure, the cache unchanged (issue 9) -----------------------------


@pytest.fixture
def big(sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A connection 'big' on a sandbox with 2,537 opt-outs (pages of 1000: three pages)."""
    box = sandbox_factory(records=2537, seed=5)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_BIG_MASTER_KEY", box.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_BIG_KEY", box.key)
    assert main(["connection", "add", "big", "--system", "checkmarket",
                 "--base-url", box.base_url]) == 0
    return box


def cached_rows(name: str) -> list[OptOutRecord]:
    db = connect()
    try:
        profile = connections.get(db, name)
        assert profile.id is not None
        return cache.load_records(db, profile.id)
    finally:
        db.close()


def test_a_silent_page_cap_still_caches_the_whole_list(
    big: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    big.state.set_page_cap(500, limit_echoes_top=True)
    assert main(["fetch", "big"]) == 0
    assert cached_count("big") == 2537  # the issue measured 1,537
    assert "2,537 opt-outs" in capsys.readouterr().out


def test_an_incomplete_full_fetch_fails_and_leaves_the_cache_as_it_was(
    big: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "big"]) == 0
    before = cached_rows("big")
    big.state.set_short_page(1000, 0)  # a page the platform never serves
    capsys.readouterr()
    assert main(["fetch", "big", "--full"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(
        "optout-desk: CheckMarket said it holds 2,537 opt-outs but the fetch got 1,537; the "
        "cached list was left unchanged (2,537 opt-outs). Fetch again later;")
    assert "Traceback" not in error
    assert cached_rows("big") == before
    db = connect()
    try:
        run = history.list_runs(db)[0]
    finally:
        db.close()
    assert (run.kind, run.outcome) == ("fetch", "failed")
    assert "said it holds 2,537 opt-outs but the fetch got 1,537" in run.message


def test_a_list_cached_under_the_old_keys_is_fetched_in_full(
    sandbox: Sandbox, demo_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", demo_connection]) == 0
    db = connect()
    try:
        db.execute("UPDATE sync_state SET record_keys = 1")  # as migration 6 leaves old lists
    finally:
        db.close()
    capsys.readouterr()
    assert main(["fetch", demo_connection]) == 0
    assert "full fetch" in capsys.readouterr().out
    assert main(["fetch", demo_connection]) == 0
    assert "incremental fetch" in capsys.readouterr().out


def test_a_connection_moved_to_another_address_drops_the_old_cache(
        isolated_home: Path, sandbox_factory: SandboxFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a connection edited to another address (another data centre is another
    account) kept the old list and the next fetch was incremental: the new server's recent
    opt-outs were merged into the old server's list, and reconcile compared against a mix."""
    from optout_desk.workflows import connections as workflow

    old, new = sandbox_factory(records=40, seed=3), sandbox_factory(records=25, seed=4)
    # One key pair on both servers: only the address differs.
    new.state.add_key(old.master_key, old.key, set(ALL_ROLES))
    monkeypatch.setenv("OPTOUT_DESK_SECRET_MOVED_MASTER_KEY", old.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_MOVED_KEY", old.key)
    assert main(["connection", "add", "moved", "--system", "checkmarket",
                 "--base-url", old.base_url]) == 0
    assert main(["fetch", "moved"]) == 0
    assert cached_count("moved") == 40
    assert workflow.edit_connection("moved", settings={"page_size": 50}).dropped is None
    assert cached_count("moved") == 40  # the same address: the cache stays
    written_otherwise = old.base_url.rstrip("/")  # without the trailing slash
    assert workflow.edit_connection("moved", base_url=written_otherwise).dropped is None
    assert cached_count("moved") == 40
    assert workflow.edit_connection("moved", base_url=new.base_url).dropped == 40
    assert cached_count("moved") == 0
    assert main(["fetch", "moved"]) == 0
    db = connect()
    try:
        profile = connections.get(db, "moved")
        assert profile.id is not None
        dates = sorted(r.date_opt_out for r in cache.load_records(db, profile.id))
    finally:
        db.close()
    assert len(dates) == 25  # the new server's list alone, not a mix
    assert dates == sorted(canonical_timestamp(o["DateOptOut"]) for o in new.state.optouts())
