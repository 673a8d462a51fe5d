"""The run history: record_run fills time and OS user; list_runs returns newest first."""

from __future__ import annotations

import getpass
import sqlite3
from collections.abc import Iterator

import pytest

from optout_desk.store import history
from optout_desk.store.db import connect


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = connect()
    yield conn
    conn.close()


def test_record_and_list_runs_newest_first(db: sqlite3.Connection) -> None:
    first = history.record_run(
        db, kind="fetch", connection="acme", source_file=None, source_sha256=None,
        counts={"fetched": 10, "added": 3}, outcome="ok",
    )
    second = history.record_run(
        db, kind="submit", connection="acme", source_file="crm.xlsx", source_sha256="ab" * 32,
        counts={"submitted": 5}, outcome="failed", message="The key was refused.",
        receipt_path="/tmp/receipt.xlsx",
    )
    runs = history.list_runs(db)
    assert [run.id for run in runs] == [second, first]
    latest = runs[0]
    assert latest.kind == "submit"
    assert latest.os_user == getpass.getuser()
    assert latest.connection == "acme"
    assert latest.source_file == "crm.xlsx"
    assert latest.source_sha256 == "ab" * 32
    assert latest.counts == {"submitted": 5}
    assert latest.outcome == "failed"
    assert latest.message == "The key was refused."
    assert latest.receipt_path == "/tmp/receipt.xlsx"
    assert latest.finished_at.endswith("Z") and latest.at == latest.finished_at
    assert runs[1].receipt_path is None and runs[1].counts == {"added": 3, "fetched": 10}


def test_limit_kind_and_get(db: sqlite3.Connection) -> None:
    ids = [
        history.record_run(
            db, kind="reconcile" if n % 2 else "fetch", connection=None, source_file=None,
            source_sha256=None, counts={"n": n}, outcome="ok",
        )
        for n in range(5)
    ]
    assert [run.id for run in history.list_runs(db, limit=2)] == ids[:-3:-1]
    assert {run.kind for run in history.list_runs(db, kind="reconcile")} == {"reconcile"}
    history.set_receipt_path(db, ids[0], "/x.csv")
    got = history.get_run(db, ids[0])
    assert got is not None and got.receipt_path == "/x.csv"
    assert history.get_run(db, 9999) is None


def test_started_at_is_kept_when_given(db: sqlite3.Connection) -> None:
    run_id = history.record_run(
        db, kind="fetch", connection="a", source_file=None, source_sha256=None, counts={},
        outcome="cancelled", started_at="2024-01-01T00:00:00.000000Z",
    )
    run = history.get_run(db, run_id)
    assert run is not None
    assert run.started_at == "2024-01-01T00:00:00.000000Z" < run.finished_at


def test_bad_kind_or_outcome_is_refused(db: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="kind"):
        history.record_run(db, kind="delete", connection=None, source_file=None,
                           source_sha256=None, counts={}, outcome="ok")
    with pytest.raises(ValueError, match="outcome"):
        history.record_run(db, kind="fetch", connection=None, source_file=None,
                           source_sha256=None, counts={}, outcome="maybe")
    assert history.list_runs(db) == []
