"""Opening and migrating the database: concurrent first opens, a newer schema, a damaged file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from optout_desk.store.db import DatabaseError, connect
from optout_desk.store.schema import MIGRATIONS


def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    conn = connect(tmp_path / "desk.sqlite3")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_threads_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    versions: list[int] = []

    def open_it() -> None:
        start.wait()
        try:
            conn = connect(path)
            versions.append(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert versions == [len(MIGRATIONS)] * 6
    # And nothing is left locked: a writer gets in at once.
    conn = sqlite3.connect(path, timeout=0.1)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    conn.close()


def test_a_database_from_a_newer_desk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(DatabaseError, match="newer Opt-out Desk"):
        connect(path)


def test_a_damaged_file_says_move_it_aside(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError, match="Move it aside"):
        connect(path)


def test_the_inbox_keeps_only_the_indexes_its_queries_read(tmp_path: Path) -> None:
    """Every index of inbox_events is paid for by each webhook delivery at its COMMIT. A
    database made before migration 7 loses the identifier index no query read; its events
    stay."""
    path = tmp_path / "desk.sqlite3"
    raw = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:6], start=1):
        raw.executescript(script)
        raw.execute(f"PRAGMA user_version = {version}")
    raw.execute("INSERT INTO inbox_events (seq, source, system, event_id, event, kind, id_kind, "
                "identifier, occurred_at, received_at, last_delivery_at) VALUES (1, 'lox', "
                "'lox24', 'e1', 'phone.unsubscribe', 'optout', 'phone', '+4915112345678', 'a', "
                "'b', 'b')")
    raw.commit()
    raw.close()
    conn = connect(path)
    try:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(inbox_events)")}
        columns = {name: [c[2] for c in conn.execute(f"PRAGMA index_info('{name}')")]
                   for name in indexes}
        assert sorted(columns.values()) == [["seq"], ["source", "event_id"]]
        assert conn.execute("SELECT identifier FROM inbox_events").fetchall() == [
            ("+4915112345678",)]
    finally:
        conn.close()
