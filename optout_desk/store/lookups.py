"""The answers of connections that say per identifier whether it is opted out (myKaarma).

Such a platform has no list to fetch, so what it answered is kept with the time it answered:
reconcile and the already-on-destination check reuse answers younger than a connection's limit
instead of asking again for every identifier of every spreadsheet. Values are stored as the
platform takes them (the destination's own formatting), one row per (kind, value).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple


class StoredAnswer(NamedTuple):
    opted_out: bool
    state: str
    changed_at: str | None
    checked_at: str


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def save_answers(conn: sqlite3.Connection, connection_id: int,
                 answers: Mapping[tuple[str, str], tuple[bool, str, str | None]],
                 checked_at: str | None = None) -> None:
    """Keep `answers` ((kind, value) -> (opted out, platform state, changed at)) in one
    transaction."""
    when = checked_at or utc_now()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT INTO lookup_answers (connection_id, kind, value, opted_out, state, "
            "changed_at, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (connection_id, kind, value) DO UPDATE SET "
            "opted_out = excluded.opted_out, state = excluded.state, "
            "changed_at = excluded.changed_at, checked_at = excluded.checked_at",
            ((connection_id, kind, value, int(opted), state, changed, when)
             for (kind, value), (opted, state, changed) in answers.items()),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def fresh_answers(conn: sqlite3.Connection, connection_id: int,
                  wanted: Iterable[tuple[str, str]], max_age: timedelta
                  ) -> dict[tuple[str, str], StoredAnswer]:
    """The stored answers for `wanted` checked within `max_age`."""
    since = (datetime.now(UTC) - max_age).strftime("%Y-%m-%dT%H:%M:%SZ")
    result: dict[tuple[str, str], StoredAnswer] = {}
    pending = list(dict.fromkeys(wanted))
    for start in range(0, len(pending), 400):
        chunk = pending[start:start + 400]
        marks = ",".join("(?, ?)" for _ in chunk)
        flat = [part for pair in chunk for part in pair]
        for kind, value, opted, state, changed, checked in conn.execute(
            "SELECT kind, value, opted_out, state, changed_at, checked_at FROM lookup_answers "
            f"WHERE connection_id = ? AND (kind, value) IN (VALUES {marks}) "
            "AND checked_at >= ?", (connection_id, *flat, since),
        ):
            result[(kind, value)] = StoredAnswer(bool(opted), state, changed, checked)
    return result


def opted_out_values(conn: sqlite3.Connection, connection_id: int) -> list[tuple[str, str]]:
    """Every (kind, value) the connection last answered as opted out, whatever its age."""
    return [(kind, value) for kind, value in conn.execute(
        "SELECT kind, value FROM lookup_answers WHERE connection_id = ? AND opted_out = 1",
        (connection_id,))]


def answer_count(conn: sqlite3.Connection, connection_id: int) -> tuple[int, str | None]:
    """How many answers are kept, and when the latest was given."""
    row = conn.execute(
        "SELECT COUNT(*), MAX(checked_at) FROM lookup_answers WHERE connection_id = ?",
        (connection_id,)).fetchone()
    return int(row[0]), row[1]
