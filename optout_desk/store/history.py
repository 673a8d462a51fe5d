"""The run history: every fetch, reconcile and submit run, as evidence for compliance.

Each run keeps when it happened, who ran it (the OS user), against which connection, from which
source file (name and SHA-256, so the exact file can be proven later), its counts, its outcome
and where its receipt was written. Personal data (emails, phones) never goes in here: only counts.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

RUN_KINDS = ("fetch", "reconcile", "submit")
OUTCOMES = ("ok", "failed", "cancelled")


@dataclass(frozen=True)
class RunRecord:
    """One row of the history, as stored."""

    id: int
    kind: str
    started_at: str
    finished_at: str
    os_user: str
    connection: str | None
    source_file: str | None
    source_sha256: str | None
    counts: dict[str, int] = field(default_factory=dict)
    outcome: str = "ok"
    message: str = ""
    receipt_path: str | None = None

    @property
    def at(self) -> str:
        """When the run finished (what the history shows as its time)."""
        return self.finished_at


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def os_user() -> str:
    """The OS account running the desk; 'unknown' where the platform cannot say."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError/KeyError on odd systems (no USER, no pwd entry)
        return "unknown"


def record_run(
    conn: sqlite3.Connection,
    *,
    kind: str,
    connection: str | None,
    source_file: str | None,
    source_sha256: str | None,
    counts: Mapping[str, int],
    outcome: str,
    message: str = "",
    receipt_path: str | None = None,
    started_at: str | None = None,
) -> int:
    """Add a finished run to the history and return its id. Time and OS user are filled in."""
    if kind not in RUN_KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown run outcome {outcome!r}")
    finished = utc_now()
    cursor = conn.execute(
        "INSERT INTO runs (kind, started_at, finished_at, os_user, connection, source_file, "
        "source_sha256, counts_json, outcome, message, receipt_path) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind,
            started_at or finished,
            finished,
            os_user(),
            connection,
            source_file,
            source_sha256,
            json.dumps({str(k): int(v) for k, v in counts.items()}, sort_keys=True),
            outcome,
            message,
            receipt_path,
        ),
    )
    run_id = cursor.lastrowid
    assert run_id is not None
    return run_id


def set_receipt_path(conn: sqlite3.Connection, run_id: int, receipt_path: str) -> None:
    """Remember where a run's receipt was written (after the run was recorded)."""
    conn.execute("UPDATE runs SET receipt_path = ? WHERE id = ?", (receipt_path, run_id))


def list_runs(
    conn: sqlite3.Connection, limit: int = 200, *, kind: str | None = None
) -> list[RunRecord]:
    """The newest runs first."""
    sql = (
        "SELECT id, kind, started_at, finished_at, os_user, connection, source_file, "
        "source_sha256, counts_json, outcome, message, receipt_path FROM runs"
    )
    params: tuple[object, ...] = ()
    if kind is not None:
        sql += " WHERE kind = ?"
        params = (kind,)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return [_record(row) for row in rows]


def get_run(conn: sqlite3.Connection, run_id: int) -> RunRecord | None:
    row = conn.execute(
        "SELECT id, kind, started_at, finished_at, os_user, connection, source_file, "
        "source_sha256, counts_json, outcome, message, receipt_path FROM runs WHERE id = ?",
        (run_id,),
    ).fetchone()
    return _record(row) if row else None


def _record(row: tuple[object, ...]) -> RunRecord:
    counts = json.loads(str(row[8]) or "{}")
    return RunRecord(
        id=int(str(row[0])),
        kind=str(row[1]),
        started_at=str(row[2]),
        finished_at=str(row[3]),
        os_user=str(row[4]),
        connection=None if row[5] is None else str(row[5]),
        source_file=None if row[6] is None else str(row[6]),
        source_sha256=None if row[7] is None else str(row[7]),
        counts={str(k): int(v) for k, v in counts.items()},
        outcome=str(row[9]),
        message=str(row[10] or ""),
        receipt_path=None if row[11] is None else str(row[11]),
    )
