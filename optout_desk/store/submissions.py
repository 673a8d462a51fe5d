"""Submissions: one input list fanned out to one plan per destination (store/journal.py holds
the plans). A submission row keeps who made it, when, from what (the source file's name and
SHA-256, or the origin: a reconciliation, the inbox, pasted lines) and how many identifiers
were given; its plans point back at it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from optout_desk.store import history, journal


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    created_at: str
    os_user: str
    origin: str
    source_file: str | None
    source_sha256: str | None
    input_count: int


def create(conn: sqlite3.Connection, *, origin: str, source_file: str | None,
           source_sha256: str | None, input_count: int) -> int:
    cursor = conn.execute(
        "INSERT INTO submissions (created_at, os_user, origin, source_file, source_sha256, "
        "input_count) VALUES (?, ?, ?, ?, ?, ?)",
        (history.utc_now(), history.os_user(), origin, source_file, source_sha256,
         input_count),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def get(conn: sqlite3.Connection, submission_id: int) -> SubmissionRow | None:
    row = conn.execute(
        "SELECT id, created_at, os_user, origin, source_file, source_sha256, input_count "
        "FROM submissions WHERE id = ?", (submission_id,)).fetchone()
    return None if row is None else SubmissionRow(*row)


def plans_of(conn: sqlite3.Connection, submission_id: int) -> list[journal.PlanSummary]:
    """The submission's plans, one per destination, in the order they were made."""
    ids = [row[0] for row in conn.execute(
        "SELECT id FROM plans WHERE submission_id = ? ORDER BY id", (submission_id,))]
    return [journal.summary(conn, plan_id) for plan_id in ids]


def latest(conn: sqlite3.Connection, limit: int = 50) -> list[SubmissionRow]:
    rows = conn.execute(
        "SELECT id, created_at, os_user, origin, source_file, source_sha256, input_count "
        "FROM submissions ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [SubmissionRow(*row) for row in rows]
