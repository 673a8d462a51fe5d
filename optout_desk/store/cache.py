"""The local copy of each connection's opt-out list, per scope, with its sync watermark.

A scope is "" for the account-wide list, else str(survey_id). A fetch is applied in ONE
transaction at the end (`apply_fetch`), so a failed or cancelled fetch never leaves a half-written
list behind. Rows are kept one per person (`record_key` = `OptOutRecord.dedupe_key`, see
core.records.person_keys), with the EARLIEST DateOptOut of that person, as the connector keeps
them; the watermark is the newest DateOptOut seen, in `canonical_timestamp` form so that text
order is time order.

Record keys have had two schemes (`sync_state.record_keys`, schema migration 6): 1 = ContactId +
DateOptOut, which merged different people whose platform gave them ContactId 0 and one batch
timestamp; 2 = person keys. A scope still on scheme 1 is re-keyed in the next `apply_fetch`
(so an incremental fetch cannot count a cached person twice) and reports `needs_full_fetch`
until a full fetch has replaced it, because people merged under scheme 1 are missing from it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from optout_desk.core.records import (
    RECORD_COLUMNS,
    OptOutRecord,
    canonical_timestamp,
    earliest_per_person,
    person_keys,
)

# The record_key scheme apply_fetch writes (see the module docstring).
RECORD_KEYS = 2

# An incremental fetch asks for opt-outs dated at or after (watermark - overlap). The platform's
# filter only takes whole seconds, several opt-outs can share the last timestamp, and an opt-out
# can become visible a little after the time it is dated (the platform commits it later). Ten
# minutes of overlap covers all three; the rows fetched twice are dropped by the dedupe key.
INCREMENTAL_OVERLAP = timedelta(minutes=10)

_CANONICAL_LENGTH = len("2024-01-01T00:00:00.0000000Z")

_DATA_COLUMNS = (
    "date_opt_out, email, phone, first_name, last_name, lang_code, contact_id, survey_id, source"
)


_COLUMNS_AS_JSON = (
    "SELECT "
    + ", ".join(f"json_group_array({column})" for column in _DATA_COLUMNS.split(", "))
    + " FROM optouts WHERE connection_id = ? AND scope = ?"
)


@dataclass(frozen=True)
class SyncState:
    """Where a scope's cached list stands. `count` is the number of cached opt-outs;
    `needs_full_fetch`: the list was cached under an older record-key scheme that could merge
    different people, so only a full fetch makes it whole again."""

    watermark: str | None
    last_synced_at: str | None
    count: int
    needs_full_fetch: bool = False


@dataclass(frozen=True)
class ApplyResult:
    """`added`: opt-outs the cache did not have before; `total`: the scope's count after."""

    added: int
    total: int


def sync_state(conn: sqlite3.Connection, connection_id: int, scope: str = "") -> SyncState:
    row = conn.execute(
        "SELECT watermark, last_synced_at, record_count, record_keys FROM sync_state "
        "WHERE connection_id = ? AND scope = ?",
        (connection_id, scope),
    ).fetchone()
    if row is None:
        return SyncState(watermark=None, last_synced_at=None, count=0)
    return SyncState(watermark=row[0], last_synced_at=row[1], count=int(row[2]),
                     needs_full_fetch=int(row[3]) < RECORD_KEYS)


def scopes(conn: sqlite3.Connection, connection_id: int) -> list[str]:
    """The scopes that have been synced at least once, account-wide ("") first."""
    rows = conn.execute(
        "SELECT scope FROM sync_state WHERE connection_id = ? ORDER BY scope = '' DESC, "
        "length(scope), scope",
        (connection_id,),
    )
    return [row[0] for row in rows]


def load_records(
    conn: sqlite3.Connection, connection_id: int, scope: str = ""
) -> list[OptOutRecord]:
    """The cached opt-outs of a scope, newest first."""
    rows = conn.execute(
        f"SELECT {_DATA_COLUMNS} FROM optouts WHERE connection_id = ? AND scope = ? "
        "ORDER BY date_opt_out DESC",
        (connection_id, scope),
    )
    return [OptOutRecord(*row) for row in rows]


def load_columns(
    conn: sqlite3.Connection, connection_id: int, scope: str = ""
) -> dict[str, list[Any]]:
    """The cached opt-outs of a scope as columns keyed by RECORD_COLUMNS, for tables and
    reconciliation. Rows come in storage order (by dedupe key); callers sort the data.

    One SELECT that lets SQLite build each column as a JSON array, decoded by the C json parser:
    about twice as fast for 1M rows as fetching row tuples and transposing them, and without
    the million intermediate tuples (bench/bench_cache.py measures both).
    """
    try:
        arrays = conn.execute(_COLUMNS_AS_JSON, (connection_id, scope)).fetchone()
    except sqlite3.DataError:
        # A column larger than SQLite's string limit (1 GB): fall back to row tuples.
        return load_columns_by_rows(conn, connection_id, scope)
    return {name: json.loads(array) for name, array in zip(RECORD_COLUMNS, arrays, strict=True)}


def load_columns_by_rows(
    conn: sqlite3.Connection, connection_id: int, scope: str = ""
) -> dict[str, list[Any]]:
    """`load_columns` the plain way: row tuples transposed with zip (the fallback)."""
    rows = conn.execute(
        f"SELECT {_DATA_COLUMNS} FROM optouts WHERE connection_id = ? AND scope = ?",
        (connection_id, scope),
    ).fetchall()
    if not rows:
        return {name: [] for name in RECORD_COLUMNS}
    columns = zip(*rows, strict=True)
    return {name: list(values) for name, values in zip(RECORD_COLUMNS, columns, strict=True)}


def apply_fetch(
    conn: sqlite3.Connection,
    connection_id: int,
    scope: str,
    records: Iterable[OptOutRecord],
    *,
    replace: bool,
    synced_at: str,
) -> ApplyResult:
    """Store a completed fetch in one transaction.

    replace=True (a full sync): the scope's list becomes exactly `records`.
    replace=False (incremental): `records` are added to what is cached.
    Either way each person (same dedupe key) is kept once, with their earliest DateOptOut, and
    the watermark becomes the newest DateOptOut cached. Any exception (including the caller's
    iterable raising Cancelled) rolls the whole thing back and leaves the previous list intact.
    """
    rows = _Rows(records)
    conn.execute("BEGIN IMMEDIATE")
    try:
        previous = sync_state(conn, connection_id, scope)
        if previous.needs_full_fetch:
            _rekey(conn, connection_id, scope)
        generation = _generation(conn, connection_id, scope) + (1 if replace else 0)
        if replace:
            added, total = _replace_scope(conn, connection_id, scope, rows, generation)
            watermark = rows.newest
        else:
            before = _count(conn, connection_id, scope)
            _merge_scope(conn, connection_id, scope, rows, generation)
            total = _count(conn, connection_id, scope)
            added = total - before
            watermark = _newest(previous.watermark, rows.newest)
        # Only a full fetch restores people an old key scheme merged away.
        keys = RECORD_KEYS if replace or not previous.needs_full_fetch else 1
        conn.execute(
            "INSERT INTO sync_state (connection_id, scope, watermark, last_synced_at, "
            "record_count, generation, record_keys) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (connection_id, scope) DO UPDATE SET "
            "watermark = excluded.watermark, last_synced_at = excluded.last_synced_at, "
            "record_count = excluded.record_count, generation = excluded.generation, "
            "record_keys = excluded.record_keys",
            (connection_id, scope, watermark, synced_at, total, generation, keys),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return ApplyResult(added=added, total=total)


def incremental_since(state: SyncState) -> str | None:
    """Where the next incremental fetch starts: the watermark minus INCREMENTAL_OVERLAP, or None
    when the scope has never been synced (a full fetch is needed)."""
    if state.watermark is None:
        return None
    canonical = canonical_timestamp(state.watermark)
    moment = datetime.strptime(canonical[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    start = moment - INCREMENTAL_OVERLAP
    return start.strftime("%Y-%m-%dT%H:%M:%S") + canonical[19:]


def clear(conn: sqlite3.Connection, connection_id: int) -> None:
    """Forget every cached list of a connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM optouts WHERE connection_id = ?", (connection_id,))
        conn.execute("DELETE FROM sync_state WHERE connection_id = ?", (connection_id,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_INSERT_COLUMNS = "connection_id, scope, generation, record_key, " + _DATA_COLUMNS
_VALUES = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Incremental: a person already cached stays, unless this opt-out of theirs is earlier.
_INSERT_NEW = f"INSERT OR IGNORE INTO optouts ({_INSERT_COLUMNS}) {_VALUES}"
_EARLIER = (
    "UPDATE optouts SET " + ", ".join(f"{c} = ?" for c in _DATA_COLUMNS.split(", "))
    + " WHERE connection_id = ? AND scope = ? AND record_key = ? AND date_opt_out > ?"
)
# Full sync: a person already cached is refreshed and stamped with the new generation (within
# one fetch, the earliest opt-out of a person wins); the rows left with an older generation
# are the ones the platform no longer lists.
_UPSERT = (
    f"INSERT INTO optouts ({_INSERT_COLUMNS}) {_VALUES} "
    "ON CONFLICT (connection_id, scope, record_key) DO UPDATE SET generation = "
    "excluded.generation, "
    + ", ".join(
        f"{column} = CASE WHEN optouts.generation <> excluded.generation OR "
        f"excluded.date_opt_out < optouts.date_opt_out THEN excluded.{column} ELSE {column} END"
        for column in _DATA_COLUMNS.split(", ")
    )
)
# Records keyed a thousand at a time: person_keys normalises a column faster than one by one.
_KEY_CHUNK = 4096


class _Rows:
    """The fetched records as insert tuples, in canonical date form, noting the newest date on
    the way (so the watermark costs no extra pass or query)."""

    def __init__(self, records: Iterable[OptOutRecord]) -> None:
        self._records = records
        self.newest: str | None = None

    def tuples(
        self, connection_id: int, scope: str, generation: int
    ) -> Iterator[tuple[Any, ...]]:
        newest = ""
        for chunk in _chunks(self._records):
            for record, key in zip(chunk, person_keys(chunk), strict=True):
                date = record.date_opt_out
                if date > newest:
                    newest = date
                yield (connection_id, scope, generation, key, *record)
        self.newest = newest or None


def _chunks(records: Iterable[OptOutRecord]) -> Iterator[list[OptOutRecord]]:
    """The records in lists of _KEY_CHUNK, dates in canonical form."""
    chunk: list[OptOutRecord] = []
    for record in records:
        date = record.date_opt_out
        if len(date) != _CANONICAL_LENGTH or date[-1] != "Z" or date[10] != "T":
            record = record._replace(date_opt_out=canonical_timestamp(date))
        chunk.append(record)
        if len(chunk) == _KEY_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _merge_scope(
    conn: sqlite3.Connection, connection_id: int, scope: str, rows: _Rows, generation: int
) -> None:
    """Incremental: new people are added; a cached person keeps their earliest opt-out."""
    fetched = list(rows.tuples(connection_id, scope, generation))
    conn.executemany(_INSERT_NEW, fetched)
    conn.executemany(_EARLIER, ((*row[4:], row[0], row[1], row[3], row[4]) for row in fetched))


def _rekey(conn: sqlite3.Connection, connection_id: int, scope: str) -> None:
    """Give a scope cached under an older key scheme today's person keys (earliest kept)."""
    stored = conn.execute(
        f"SELECT record_key, generation, {_DATA_COLUMNS} FROM optouts "
        "WHERE connection_id = ? AND scope = ?",
        (connection_id, scope),
    ).fetchall()
    records = [OptOutRecord(*row[2:]) for row in stored]
    generations = {record: row[1] for record, row in zip(records, stored, strict=True)}
    if [row[0] for row in stored] == person_keys(records):
        return
    kept = earliest_per_person(records)
    conn.execute("DELETE FROM optouts WHERE connection_id = ? AND scope = ?",
                 (connection_id, scope))
    conn.executemany(
        f"INSERT INTO optouts ({_INSERT_COLUMNS}) {_VALUES}",
        ((connection_id, scope, generations[record], key, *record)
         for record, key in zip(kept, person_keys(kept), strict=True)),
    )


def _replace_scope(
    conn: sqlite3.Connection, connection_id: int, scope: str, rows: _Rows, generation: int
) -> tuple[int, int]:
    """Make the scope's rows exactly the fetched ones; returns (new, total).

    One upsert pass stamps every fetched row with `generation`, then the rows still carrying an
    older generation (gone from the platform's list) are deleted. No second copy of the data.
    """
    before = _count(conn, connection_id, scope)
    conn.executemany(_UPSERT, rows.tuples(connection_id, scope, generation))
    seen_or_kept = _count(conn, connection_id, scope)
    stale = conn.execute(
        "DELETE FROM optouts WHERE connection_id = ? AND scope = ? AND generation <> ?",
        (connection_id, scope, generation),
    ).rowcount
    return seen_or_kept - before, seen_or_kept - stale


def _generation(conn: sqlite3.Connection, connection_id: int, scope: str) -> int:
    row = conn.execute(
        "SELECT generation FROM sync_state WHERE connection_id = ? AND scope = ?",
        (connection_id, scope),
    ).fetchone()
    return 0 if row is None else int(row[0])


def _count(conn: sqlite3.Connection, connection_id: int, scope: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM optouts WHERE connection_id = ? AND scope = ?",
        (connection_id, scope),
    ).fetchone()
    return int(row[0])


def _newest(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(canonical_timestamp(a), b)
