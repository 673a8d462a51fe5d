"""The submission journal: a plan is written down before its first request, and each batch's
state is committed around its request, so a crash at any moment leaves a true record.

A batch (one payload) goes pending -> sent -> acknowledged | failed. `sent` is committed BEFORE
the request: after a crash a batch still `sent` may or may not have reached the platform. A
resume sends it again only when its payload says that is harmless (`Payload.resend_safe`, the
connector's answer: an idempotent opt-out), and counts that repeat; otherwise it stays `sent`
and is listed for the operator to check. A batch `acknowledged` is never sent again.

Plans are stored in the format they were made in (`PLAN_FORMAT`, in the plan's JSON; absent =
1, the CheckMarket-only format of earlier versions). A plan of another format is never read as
this one: it is refused with a sentence saying so, while its receipt and history still read.

Each state change is one small autocommit transaction (WAL, synchronous=NORMAL, set by
store.db.connect): well under 2 ms per batch. Item outcomes are not rewritten per batch; they
follow from their batch's state when read.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from optout_desk.core.plan import (
    PLAN_FORMAT,
    Destination,
    LeftOut,
    Payload,
    Plan,
    PlanItem,
    item_from_json,
    left_out_from_json,
    left_out_to_json,
    plan_hash,
    restore_plan,
)

PENDING, RUNNING, COMPLETED, FAILED, DISCARDED = (
    "pending", "running", "completed", "failed", "discarded",
)
UNFINISHED_STATUSES = (PENDING, RUNNING, FAILED)
BATCH_PENDING, BATCH_SENT, BATCH_ACKNOWLEDGED, BATCH_FAILED = (
    "pending", "sent", "acknowledged", "failed",
)

# What an item's outcome reads as, from its batch's state (sent items) or its own (left out).
ITEM_OUTCOMES = {
    BATCH_ACKNOWLEDGED: "submitted",
    BATCH_FAILED: "failed",
    BATCH_SENT: "sent, not acknowledged",
    BATCH_PENDING: "not sent",
}


class JournalError(Exception):
    """The journal does not hold what the caller expected (an unknown plan, say)."""


@dataclass(frozen=True)
class PlanSummary:
    """A plan as the resume dialog and `submit --resume` list it."""

    id: int
    hash: str
    connection: str
    created_at: str
    updated_at: str
    status: str
    total: int
    batch_count: int
    acknowledged: int  # batches
    failed: int
    sent_unacknowledged: int
    pending: int
    message: str
    runner_pid: int | None
    destination_label: str = ""
    system: str = ""
    submission_id: int | None = None
    plan_format: int = PLAN_FORMAT

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def remaining(self) -> int:
        """Batches still without an acknowledgement."""
        return self.batch_count - self.acknowledged


@dataclass(frozen=True)
class JournalBatch:
    plan_id: int
    seq: int
    payload_data: Any  # the stored JSON: a Payload's as_json() in the current format
    size: int
    state: str
    http_status: int | None
    body_status: int | None
    message: str
    attempts: int
    sent_count: int
    resent_after_interruption: int

    @property
    def payload(self) -> Payload:
        return Payload.from_json(self.payload_data)


class ReceiptRow(NamedTuple):
    """One identifier of a plan as the receipt shows it (a NamedTuple: one per identifier,
    100k+ per large plan)."""

    identifier: str
    kind: str
    sent_as: str
    source_file: str | None
    row_number: int | None
    batch: int | None
    outcome: str
    message: str
    confirmed: bool | None


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- writing ---------------------------------------------------------------------------------


def save_plan(
    conn: sqlite3.Connection, plan: Plan, *, source_file: str | None = None,
    source_sha256: str | None = None, submission_id: int | None = None,
) -> int:
    """Write the whole plan (status pending) in one transaction and return its id. The source
    file (name and SHA-256) goes into the run history when the plan is sent."""
    now = utc_now()
    meta = {
        "format": PLAN_FORMAT,
        "source_file": source_file,
        "source_sha256": source_sha256,
        "destination": plan.destination.as_dict(),
        "batch_size": plan.batch_size,
        "counts": plan.counts,
        "left_out_counts": plan.left_out_counts,
        "left_out": [left_out_to_json(item) for item in plan.left_out],
    }
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            "INSERT INTO plans (hash, connection, created_at, updated_at, status, plan_json, "
            "total, batch_count, submission_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (plan.hash, plan.destination.connection, now, now, PENDING,
             json.dumps(meta, ensure_ascii=False), plan.total, len(plan.batches),
             submission_id),
        )
        plan_id = cursor.lastrowid
        assert plan_id is not None
        conn.executemany(
            "INSERT INTO batches (plan_id, seq, payload_json, size) VALUES (?, ?, ?, ?)",
            ((plan_id, b.seq, json.dumps(b.payload.as_json(), ensure_ascii=False),
              len(b.items))
             for b in plan.batches),
        )
        conn.executemany(
            "INSERT INTO items (plan_id, position, seq, kind, value, key, original, "
            "source_file, row_number, outcome, message) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            _item_rows(plan_id, plan),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return plan_id


def _item_rows(plan_id: int, plan: Plan) -> Iterator[tuple[Any, ...]]:
    position = 0
    for seq, item in plan.items():
        position += 1
        yield (plan_id, position, seq, str(item.kind), item.value, item.key, item.original,
               item.source_file, item.row_number, None, "")
    for left in plan.left_out:
        position += 1
        yield (plan_id, position, None, str(left.kind), left.original, left.key, left.original,
               left.source_file, left.row_number, str(left.reason), left.detail)


# The plan's description without its left-out list. That list can be megabytes (50,000
# phones a destination does not take: 12.6 MB), and json.loads holds the GIL for the whole of
# it (80 ms: a visible freeze of the window while a submission sends); SQLite drops it with
# the GIL released. load_plan reads the list one element at a time.
_META = "json_remove(plan_json, '$.left_out')"


def claim(conn: sqlite3.Connection, plan_id: int, pid: int | None = None) -> None:
    """Mark a plan running by this process. The caller holds the destination's lock
    (store/locks.py), so a plan still marked running by someone else is a leftover of a run
    that died. Refuses a plan that is completed or discarded, or of another plan format."""
    pid = os.getpid() if pid is None else pid
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            f"SELECT status, {_META} FROM plans WHERE id = ?", (plan_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"There is no submission plan {plan_id}.")
        status = row[0]
        if status in (COMPLETED, DISCARDED):
            raise JournalError(f"Submission plan {plan_id} is {status}; there is nothing to send.")
        _require_current_format(plan_id, json.loads(row[1]))
        conn.execute(
            "UPDATE plans SET status = ?, runner_pid = ?, updated_at = ?, message = '' "
            "WHERE id = ?", (RUNNING, pid, utc_now(), plan_id),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def format_of(meta: dict[str, Any]) -> int:
    value = meta.get("format", 1)
    return value if isinstance(value, int) else 1


def _require_current_format(plan_id: int, meta: dict[str, Any]) -> None:
    found = format_of(meta)
    if found != PLAN_FORMAT:
        which = "an earlier" if found < PLAN_FORMAT else "a newer"
        raise JournalError(
            f"Submission plan {plan_id} was made by {which} version of Opt-out Desk (plan "
            f"format {found}; this one reads format {PLAN_FORMAT}) and will not be sent by "
            "this one. Its acknowledged batches stay recorded; discard it and plan again "
            "from the same file (what is already on the platform is left out)."
        )


def set_status(conn: sqlite3.Connection, plan_id: int, status: str, message: str = "") -> None:
    conn.execute(
        "UPDATE plans SET status = ?, message = ?, updated_at = ?, runner_pid = NULL "
        "WHERE id = ?", (status, message, utc_now(), plan_id),
    )


def mark_sent(conn: sqlite3.Connection, plan_id: int, seq: int) -> bool:
    """Commit that batch `seq` is about to be POSTed. Returns True when it had been sent before
    without an acknowledgement (the process died while it was in flight): a repeat."""
    row = conn.execute(
        "SELECT state FROM batches WHERE plan_id = ? AND seq = ?", (plan_id, seq)
    ).fetchone()
    if row is None:
        raise JournalError(f"Plan {plan_id} has no batch {seq}.")
    if row[0] == BATCH_ACKNOWLEDGED:
        raise JournalError(f"Batch {seq} of plan {plan_id} was acknowledged; it is not resent.")
    repeat = str(row[0]) == BATCH_SENT
    conn.execute(
        "UPDATE batches SET state = 'sent', sent_count = sent_count + 1, sent_at = ?, "
        "resent_after_interruption = resent_after_interruption + ? "
        "WHERE plan_id = ? AND seq = ?",
        (utc_now(), int(repeat), plan_id, seq),
    )
    return repeat


def mark_acknowledged(
    conn: sqlite3.Connection, plan_id: int, seq: int, *, http_status: int,
    body_status: int | None, message: str, attempts: int,
) -> None:
    conn.execute(
        "UPDATE batches SET state = 'acknowledged', http_status = ?, body_status = ?, "
        "message = ?, attempts = attempts + ?, finished_at = ? WHERE plan_id = ? AND seq = ?",
        (http_status, body_status, message, attempts, utc_now(), plan_id, seq),
    )


def mark_failed(
    conn: sqlite3.Connection, plan_id: int, seq: int, *, error: str,
    http_status: int | None = None, body_status: int | None = None, attempts: int = 1,
) -> None:
    conn.execute(
        "UPDATE batches SET state = 'failed', http_status = ?, body_status = ?, message = ?, "
        "attempts = attempts + ?, finished_at = ? WHERE plan_id = ? AND seq = ?",
        (http_status, body_status, error, attempts, utc_now(), plan_id, seq),
    )


def set_confirmed(conn: sqlite3.Connection, plan_id: int, visible_keys: set[str]) -> int:
    """Mark each sent item of an acknowledged batch confirmed (its key is in `visible_keys`) or
    not yet visible; returns how many are confirmed."""
    rows = conn.execute(
        "SELECT i.position, i.key FROM items i JOIN batches b "
        "ON b.plan_id = i.plan_id AND b.seq = i.seq "
        "WHERE i.plan_id = ? AND b.state = 'acknowledged'", (plan_id,),
    ).fetchall()
    updates = [(int(key in visible_keys), plan_id, position) for position, key in rows]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "UPDATE items SET confirmed = ? WHERE plan_id = ? AND position = ?", updates
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return sum(flag for flag, _, _ in updates)


# -- reading ---------------------------------------------------------------------------------


_SUMMARY_SQL = f"""
    SELECT p.id, p.hash, p.connection, p.created_at, p.updated_at, p.status, p.total,
           p.batch_count,
           SUM(b.state = 'acknowledged'), SUM(b.state = 'failed'), SUM(b.state = 'sent'),
           SUM(b.state = 'pending'), p.message, p.runner_pid, {_META}, p.submission_id
    FROM plans p LEFT JOIN batches b ON b.plan_id = p.id
"""


def _summary(row: Sequence[Any]) -> PlanSummary:
    meta = json.loads(row[14])
    dest = _destination(meta)
    return PlanSummary(
        id=row[0], hash=row[1], connection=row[2], created_at=row[3], updated_at=row[4],
        status=row[5], total=row[6], batch_count=row[7], acknowledged=int(row[8] or 0),
        failed=int(row[9] or 0), sent_unacknowledged=int(row[10] or 0),
        pending=int(row[11] or 0), message=row[12], runner_pid=row[13],
        destination_label=dest.label, system=dest.system, submission_id=row[15],
        plan_format=format_of(meta),
    )


def summary(conn: sqlite3.Connection, plan_id: int) -> PlanSummary:
    row = conn.execute(_SUMMARY_SQL + " WHERE p.id = ? GROUP BY p.id", (plan_id,)).fetchone()
    if row is None:
        raise JournalError(f"There is no submission plan {plan_id}.")
    return _summary(row)


def unfinished(conn: sqlite3.Connection, connection: str | None = None) -> list[PlanSummary]:
    """Plans with batches still to send (pending, interrupted while running, or stopped by a
    failure), oldest first."""
    marks = ",".join("?" * len(UNFINISHED_STATUSES))
    sql = _SUMMARY_SQL + f" WHERE p.status IN ({marks})"
    params: list[Any] = list(UNFINISHED_STATUSES)
    if connection is not None:
        sql += " AND p.connection = ?"
        params.append(connection)
    rows = conn.execute(sql + " GROUP BY p.id ORDER BY p.id", params).fetchall()
    return [_summary(row) for row in rows]


def list_plans(conn: sqlite3.Connection, limit: int = 100) -> list[PlanSummary]:
    rows = conn.execute(_SUMMARY_SQL + " GROUP BY p.id ORDER BY p.id DESC LIMIT ?",
                        (limit,)).fetchall()
    return [_summary(row) for row in rows]


def batches(conn: sqlite3.Connection, plan_id: int,
            states: Iterable[str] | None = None) -> list[JournalBatch]:
    sql = (
        "SELECT plan_id, seq, payload_json, size, state, http_status, body_status, message, "
        "attempts, sent_count, resent_after_interruption FROM batches WHERE plan_id = ?"
    )
    params: list[Any] = [plan_id]
    if states is not None:
        wanted = list(states)
        sql += f" AND state IN ({','.join('?' * len(wanted))})"
        params.extend(wanted)
    rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
    return [
        JournalBatch(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                     r[10])
        for r in rows
    ]


def unacknowledged_batches(conn: sqlite3.Connection, plan_id: int) -> list[JournalBatch]:
    """What a resume sends: every batch without an acknowledgement, in order."""
    return batches(conn, plan_id, (BATCH_PENDING, BATCH_SENT, BATCH_FAILED))


def plan_meta(conn: sqlite3.Connection, plan_id: int) -> dict[str, Any]:
    """The plan's stored description: destination, batch size, counts, source, left-out
    counts (not the left-out list itself: load_plan reads that)."""
    row = conn.execute(f"SELECT {_META} FROM plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise JournalError(f"There is no submission plan {plan_id}.")
    meta: dict[str, Any] = json.loads(row[0])
    return meta


def _destination(meta: dict[str, Any]) -> Destination:
    d = meta["destination"]
    return Destination(d["connection"], d["system"], d["host"], d.get("region", ""))


def load_plan(conn: sqlite3.Connection, plan_id: int) -> Plan:
    """The stored plan, checked against its hash (JournalError if it no longer matches, or is
    of another plan format)."""
    row = conn.execute(f"SELECT hash, {_META} FROM plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise JournalError(f"There is no submission plan {plan_id}.")
    plan_hash, meta_text = row
    meta = json.loads(meta_text)
    _require_current_format(plan_id, meta)
    by_batch: dict[int, list[PlanItem]] = {}
    for seq, kind, value, key, original, source, row_number in conn.execute(
        "SELECT seq, kind, value, key, original, source_file, row_number FROM items "
        "WHERE plan_id = ? AND seq IS NOT NULL ORDER BY position", (plan_id,),
    ):
        by_batch.setdefault(seq, []).append(item_from_json({
            "kind": kind, "value": value, "key": key, "original": original,
            "source_file": source, "row_number": row_number,
        }))
    stored = [(b.seq, by_batch.get(b.seq, []), b.payload) for b in batches(conn, plan_id)]
    left: list[LeftOut] = [left_out_from_json(json.loads(item)) for (item,) in conn.execute(
        "SELECT j.value FROM plans p, json_each(p.plan_json, '$.left_out') j WHERE p.id = ? "
        "ORDER BY j.key", (plan_id,))]
    try:
        return restore_plan(_destination(meta), int(meta["batch_size"]), stored, left,
                            plan_hash)
    except ValueError:
        raise JournalError(
            f"Submission plan {plan_id} no longer matches the hash it was previewed with "
            f"({plan_hash[:12]}); it will not be sent. Discard it and plan again."
        ) from None


def check_batches_match(conn: sqlite3.Connection, plan_id: int) -> None:
    """Verify that the stored payloads (what is sent) still hash to the previewed plan's
    hash, and that the items agree with them. Cheap enough to run before every send."""
    row = conn.execute(f"SELECT hash, {_META} FROM plans WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise JournalError(f"There is no submission plan {plan_id}.")
    meta = json.loads(row[1])
    _require_current_format(plan_id, meta)
    altered = JournalError(
        f"The stored batches of submission plan {plan_id} differ from the previewed plan "
        f"({row[0][:12]}); they will not be sent. Discard the plan and plan again."
    )
    try:
        stored = {b.seq: b.payload for b in batches(conn, plan_id)}
    except (KeyError, TypeError, ValueError):
        raise altered from None
    if plan_hash(_destination(meta), stored.values()) != row[0]:
        raise altered
    items: dict[int, list[str]] = {}
    for seq, value in conn.execute(
        "SELECT seq, value FROM items WHERE plan_id = ? AND seq IS NOT NULL ORDER BY position",
        (plan_id,),
    ):
        items.setdefault(seq, []).append(value)
    if any(sorted(items.get(seq, [])) != sorted(payload.values)
           for seq, payload in stored.items()):
        raise JournalError(
            f"The items of submission plan {plan_id} differ from its batches; it will not be "
            "sent. Discard the plan and plan again."
        )


def receipt_rows(conn: sqlite3.Connection, plan_id: int) -> list[ReceiptRow]:
    """Every identifier of the plan, sent ones first in plan order, then the ones left out."""
    # The batches first, into a dict: a join would look one up per item (5 µs each).
    batches = {
        seq: (ITEM_OUTCOMES[state], message) for seq, state, message in conn.execute(
            "SELECT seq, state, message FROM batches WHERE plan_id = ?", (plan_id,))
    }
    rows = conn.execute(
        "SELECT original, kind, value, source_file, row_number, seq, outcome, message, "
        "confirmed FROM items WHERE plan_id = ? ORDER BY position", (plan_id,),
    )
    new = tuple.__new__
    result = []
    for original, kind, value, source, row_number, seq, outcome, message, confirmed in rows:
        if seq is None:
            result.append(new(ReceiptRow, (original, kind, "", source, row_number, None,
                                           f"left out: {outcome.replace('_', ' ')}", message,
                                           None)))
        else:
            state, batch_message = batches[seq]
            result.append(new(ReceiptRow, (original, kind, value, source, row_number, seq,
                                           state, batch_message,
                                           None if confirmed is None else bool(confirmed))))
    return result


def failed_items(conn: sqlite3.Connection, plan_id: int) -> list[PlanItem]:
    """The items of the plan's failed batches (for "Retry failed only")."""
    rows = conn.execute(
        "SELECT i.kind, i.value, i.key, i.original, i.source_file, i.row_number FROM items i "
        "JOIN batches b ON b.plan_id = i.plan_id AND b.seq = i.seq "
        "WHERE i.plan_id = ? AND b.state = 'failed' ORDER BY i.position", (plan_id,),
    ).fetchall()
    return [item_from_json({"kind": r[0], "value": r[1], "key": r[2], "original": r[3],
                            "source_file": r[4], "row_number": r[5]}) for r in rows]


def unconfirmed_values(conn: sqlite3.Connection, plan_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT value FROM items WHERE plan_id = ? AND confirmed = 0 ORDER BY position",
        (plan_id,),
    ).fetchall()
    return [row[0] for row in rows]


def unsent_keys(conn: sqlite3.Connection, plan_id: int) -> set[str]:
    """The keys of the plan's items whose batch is not acknowledged (what a resume would
    send, or might: a batch sent without an answer counts)."""
    rows = conn.execute(
        "SELECT i.key FROM items i JOIN batches b ON b.plan_id = i.plan_id AND b.seq = i.seq "
        "WHERE i.plan_id = ? AND b.state <> 'acknowledged'", (plan_id,),
    )
    return {row[0] for row in rows if row[0]}


def acknowledged_keys(conn: sqlite3.Connection, connection: str,
                      keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Of `keys`, those an earlier plan to `connection` sent in an acknowledged batch:
    key -> (plan id, when it was acknowledged)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for key, plan_id, finished in conn.execute(
            "SELECT i.key, i.plan_id, b.finished_at FROM items i "
            "JOIN batches b ON b.plan_id = i.plan_id AND b.seq = i.seq "
            "JOIN plans p ON p.id = i.plan_id "
            f"WHERE i.key IN ({marks}) AND p.connection = ? AND b.state = 'acknowledged'",
            (*chunk, connection),
        ):
            found.setdefault(key, (int(plan_id), str(finished or "")))
    return found


def acknowledged_items(conn: sqlite3.Connection, plan_id: int) -> list[PlanItem]:
    """The items of the plan's acknowledged batches, in plan order (what verification asks
    the destination about)."""
    rows = conn.execute(
        "SELECT i.kind, i.value, i.key, i.original, i.source_file, i.row_number FROM items i "
        "JOIN batches b ON b.plan_id = i.plan_id AND b.seq = i.seq "
        "WHERE i.plan_id = ? AND b.state = 'acknowledged' ORDER BY i.position", (plan_id,),
    ).fetchall()
    return [item_from_json({"kind": r[0], "value": r[1], "key": r[2], "original": r[3],
                            "source_file": r[4], "row_number": r[5]}) for r in rows]
