"""The submission journal: plans stored before sending, batch states, resume bookkeeping."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator

import pytest

from optout_desk.connectors.checkmarket import CheckMarketFormat
from optout_desk.core.identifiers import normalise_email, normalise_phone
from optout_desk.core.plan import Destination, Plan, PlanInput, build_plan
from optout_desk.store import journal
from optout_desk.store.db import connect

DEST = Destination("acme", "checkmarket", "127.0.0.1", "eu")


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = connect()
    yield conn
    conn.close()


def make_plan(n: int = 10, batch_size: int = 4) -> Plan:
    inputs = [PlanInput(normalise_email(f"u{i}@example.com"), "crm.xlsx", i + 2) for i in range(n)]
    inputs.append(PlanInput(normalise_phone("+32470123456", "BE")))
    inputs.append(PlanInput(normalise_email("broken"), "crm.xlsx", 99))
    inputs.append(PlanInput(normalise_email("U0@example.com"), "crm.xlsx", 100))
    return build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(batch_size))


def test_a_long_left_out_list_comes_back_in_order(db: sqlite3.Connection) -> None:
    # load_plan reads the left-out list element by element (json_each): 12 of them, so an
    # order by text ("10" before "2") would show.
    inputs = [PlanInput(normalise_email(f"broken{i}"), "crm.xlsx", i) for i in range(12)]
    inputs.append(PlanInput(normalise_email("ok@example.com")))
    plan = build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(4))
    plan_id = journal.save_plan(db, plan)
    assert [left.row_number for left in journal.load_plan(db, plan_id).left_out] == list(
        range(12))
    assert "left_out" not in journal.plan_meta(db, plan_id)


def test_save_and_load_round_trip(db: sqlite3.Connection) -> None:
    plan = make_plan()
    plan_id = journal.save_plan(db, plan)
    assert journal.load_plan(db, plan_id) == plan
    journal.check_batches_match(db, plan_id)
    summary = journal.summary(db, plan_id)
    assert (summary.status, summary.total, summary.batch_count, summary.pending) == (
        "pending", 11, 3, 3)
    assert summary.short_hash == plan.short_hash
    assert summary.destination_label == "acme (EU)"
    stored = journal.batches(db, plan_id)
    assert [b.payload for b in stored] == [b.payload for b in plan.batches]


def test_batch_lifecycle_and_resend_after_interruption(db: sqlite3.Connection) -> None:
    plan_id = journal.save_plan(db, make_plan())
    assert journal.mark_sent(db, plan_id, 1) is False
    journal.mark_acknowledged(db, plan_id, 1, http_status=200, body_status=200, message="OK",
                              attempts=1)
    assert journal.mark_sent(db, plan_id, 2) is False
    # The process dies here; on resume batch 2 is sent again and that is counted.
    left = journal.unacknowledged_batches(db, plan_id)
    assert [(b.seq, b.state) for b in left] == [(2, "sent"), (3, "pending")]
    assert journal.mark_sent(db, plan_id, 2) is True
    journal.mark_failed(db, plan_id, 2, error="The key was refused.", http_status=401)
    with pytest.raises(journal.JournalError, match="acknowledged"):
        journal.mark_sent(db, plan_id, 1)
    b2 = journal.batches(db, plan_id)[1]
    assert (b2.state, b2.sent_count, b2.resent_after_interruption, b2.http_status) == (
        "failed", 2, 1, 401)
    summary = journal.summary(db, plan_id)
    assert (summary.acknowledged, summary.failed, summary.pending, summary.remaining) == (
        1, 1, 1, 2)
    assert [item.value for item in journal.failed_items(db, plan_id)] == [
        "u4@example.com", "u5@example.com", "u6@example.com", "u7@example.com"]


def test_receipt_rows_and_confirmation(db: sqlite3.Connection) -> None:
    plan_id = journal.save_plan(db, make_plan())
    for seq in (1, 2):
        journal.mark_sent(db, plan_id, seq)
        journal.mark_acknowledged(db, plan_id, seq, http_status=200, body_status=200,
                                  message="OK", attempts=1)
    confirmed = journal.set_confirmed(db, plan_id, {"u0@example.com", "u5@example.com"})
    assert confirmed == 2
    rows = journal.receipt_rows(db, plan_id)
    assert len(rows) == 13
    first = rows[0]
    assert (first.identifier, first.source_file, first.row_number, first.batch, first.outcome,
            first.confirmed) == ("u0@example.com", "crm.xlsx", 2, 1, "submitted", True)
    assert rows[1].confirmed is False
    assert rows[8].outcome == "not sent" and rows[8].confirmed is None
    assert rows[10].sent_as == "+32470123456"
    assert [r.outcome for r in rows[11:]] == ["left out: invalid", "left out: duplicate"]
    assert journal.unconfirmed_values(db, plan_id)[:2] == ["u1@example.com", "u2@example.com"]


def test_unfinished_and_claim(db: sqlite3.Connection) -> None:
    a = journal.save_plan(db, make_plan())
    b = journal.save_plan(db, make_plan(3))
    journal.set_status(db, b, journal.COMPLETED)
    assert [p.id for p in journal.unfinished(db)] == [a]
    assert journal.unfinished(db, "other") == []
    journal.claim(db, a)
    assert journal.summary(db, a).status == "running"
    assert journal.summary(db, a).runner_pid == os.getpid()
    # Who may claim is decided by the destination's lock (store/locks.py, tests/unit/
    # test_locks.py): the claim itself only refuses what can never be sent.
    with pytest.raises(journal.JournalError, match="completed"):
        journal.claim(db, b)
    with pytest.raises(journal.JournalError, match="no submission plan"):
        journal.claim(db, 999)


def test_stale_running_plan_can_be_claimed(db: sqlite3.Connection) -> None:
    plan_id = journal.save_plan(db, make_plan())
    db.execute("UPDATE plans SET status='running', runner_pid=? WHERE id=?", (2**22 + 7, plan_id))
    journal.claim(db, plan_id)  # the recorded runner is dead: no error
    assert journal.summary(db, plan_id).runner_pid == os.getpid()


def test_tampered_journal_is_refused(db: sqlite3.Connection) -> None:
    plan_id = journal.save_plan(db, make_plan())
    db.execute("UPDATE items SET value='x@example.com' WHERE plan_id=? AND position=1",
               (plan_id,))
    with pytest.raises(journal.JournalError, match="no longer matches"):
        journal.load_plan(db, plan_id)
    db.execute("UPDATE items SET value='u0@example.com' WHERE plan_id=? AND position=1",
               (plan_id,))
    db.execute("UPDATE batches SET payload_json='{\"EmailAddresses\":[\"x@y.z\"]}' "
               "WHERE plan_id=? AND seq=1", (plan_id,))
    with pytest.raises(journal.JournalError, match="differ"):
        journal.check_batches_match(db, plan_id)


def test_journal_overhead_per_batch_is_small(db: sqlite3.Connection) -> None:
    inputs = [PlanInput(normalise_email(f"p{i}@example.com")) for i in range(20_000)]
    plan = build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(100))
    plan_id = journal.save_plan(db, plan)
    started = time.perf_counter()
    for seq in range(1, 201):
        journal.mark_sent(db, plan_id, seq)
        journal.mark_acknowledged(db, plan_id, seq, http_status=200, body_status=200,
                                  message="OK", attempts=1)
    per_batch_ms = (time.perf_counter() - started) / 200 * 1000
    # The target is 2 ms (bench/bench_submit.py measures it); leave room for a busy CI box.
    assert per_batch_ms < 10, per_batch_ms


def test_a_plan_of_the_earlier_format_is_refused_never_misread(db: sqlite3.Connection) -> None:
    """A database from before the connector contract holds plans whose batches are bare
    CheckMarket bodies and whose JSON has no format: they are refused with a sentence, while
    their receipt still reads."""
    plan_id = journal.save_plan(db, make_plan())
    meta = journal.plan_meta(db, plan_id)
    del meta["format"]
    db.execute("UPDATE plans SET plan_json = ? WHERE id = ?", (json.dumps(meta), plan_id))
    db.execute("UPDATE batches SET payload_json = json_extract(payload_json, '$.body') "
               "WHERE plan_id = ?", (plan_id,))
    summary = journal.summary(db, plan_id)
    assert summary.plan_format == 1 and summary.remaining == summary.batch_count
    for attempt in (journal.claim, journal.check_batches_match, journal.load_plan):
        with pytest.raises(journal.JournalError, match="earlier version of Opt-out Desk"):
            attempt(db, plan_id)
    assert len(journal.receipt_rows(db, plan_id)) == 13
