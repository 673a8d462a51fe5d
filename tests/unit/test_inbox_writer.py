"""The group-commit writer (the receiver's own writes) over a real SQLite file: a batch is one
transaction committed before any of its requests is resolved, one call wakes the waiting loop
per batch, a failing request fails alone; and store.inbox's batched record_rows() stores exactly
what record() one at a time does (the event store's child commits with it)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from optout_desk.store import inbox
from optout_desk.store.db import connect
from optout_desk.webhooks.writer import GroupCommitWriter, WriterStopped


def _event(n: int, source: str = "lox", **changes: Any) -> inbox.InboxEvent:
    fields: dict[str, Any] = dict(
        source=source, system="lox24", event_id=f"00000000-0000-4000-8000-{n:012d}",
        event="phone.unsubscribe", kind=inbox.KIND_OPTOUT, id_kind="phone",
        identifier=f"+491511234{n:04d}", occurred_at="2026-01-02T03:04:05.0000000Z",
        reason_id=2, reason_label="Zu viele Nachrichten", free_text="nein\x00danke ✓",
        campaign="SPRING", user_id=7, group_id=None, short_link="abc",
        details={"b": 1, "a": [1, 2], "text": "ü"})
    fields.update(changes)
    return inbox.InboxEvent(**fields)


@pytest.fixture
def writer(inbox_db_path: Path) -> Any:
    started = GroupCommitWriter(inbox_db_path).start()
    yield started
    started.stop()


def _hold(writer: GroupCommitWriter) -> threading.Event:
    """Keep the writer busy until the returned event is set, so what is queued meanwhile
    becomes one batch."""
    release, busy = threading.Event(), threading.Event()

    def wait(_conn: sqlite3.Connection) -> None:
        busy.set()
        release.wait(10)

    writer.submit(wait)
    assert busy.wait(10)
    return release


def _setting(name: str) -> Any:
    return lambda conn: inbox.set_setting(conn, name, "on")


def _settings(inbox_db_path: Path) -> list[str]:
    conn = sqlite3.connect(inbox_db_path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM inbox_settings ORDER BY name")]
    finally:
        conn.close()


def test_a_batch_is_committed_before_any_of_it_is_acknowledged(
        writer: GroupCommitWriter, inbox_db_path: Path) -> None:
    seen_at_resolution: list[int] = []

    async def run_all() -> list[Any]:
        release = _hold(writer)
        tasks = [asyncio.ensure_future(writer.run(_setting(f"k{n:02d}"))) for n in range(30)]
        await asyncio.sleep(0.05)  # all 30 queued behind the held operation
        release.set()
        first = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # The moment the first is resolved, a fresh reader already sees all 30 on disk.
        seen_at_resolution.append(len(_settings(inbox_db_path)))
        assert first
        return list(await asyncio.gather(*tasks))

    batches, calls = writer.batches, writer.loop_calls
    asyncio.run(run_all())
    assert seen_at_resolution == [30]
    assert writer.batches - batches == 2  # the held operation's batch, then all 30 at once
    assert writer.loop_calls - calls == 1  # and one wake-up of the loop for the 30


def test_a_failing_request_fails_alone(writer: GroupCommitWriter, inbox_db_path: Path) -> None:
    def broken(_conn: sqlite3.Connection) -> None:
        raise ValueError("a bug")

    async def run() -> list[Any]:
        release = _hold(writer)
        tasks = [asyncio.ensure_future(writer.run(_setting("first"))),
                 asyncio.ensure_future(writer.run(broken)),
                 asyncio.ensure_future(writer.run(_setting("second")))]
        await asyncio.sleep(0.05)
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    first, failed, second = asyncio.run(run())
    assert isinstance(failed, ValueError)
    assert first is None and second is None
    assert _settings(inbox_db_path) == ["first", "second"]


def test_a_stopped_writer_refuses_and_stores_nothing(inbox_db_path: Path) -> None:
    writer = GroupCommitWriter(inbox_db_path).start()
    writer.stop()

    async def run() -> None:
        await writer.run(_setting("late"))

    with pytest.raises(WriterStopped, match="not running"):
        asyncio.run(run())
    with pytest.raises(WriterStopped):
        writer.run_sync(_setting("late"))
    assert _settings(inbox_db_path) == []


def test_record_rows_stores_what_record_one_at_a_time_stores(tmp_path: Path) -> None:
    events = [_event(n) for n in (1, 2, 1, 3)] + [_event(4, details={}, reason_id=None)]
    stored = []
    for batched in (False, True):
        conn = connect(tmp_path / f"{batched}.sqlite3")
        inbox.add_source(conn, "lox", "lox24", inbox.hash_token("lox"))
        conn.execute("BEGIN IMMEDIATE")
        if batched:
            results = inbox.record_rows(conn, [inbox.event_row(e) for e in events],
                                        "2026-01-05T00:00:00.000000Z")
        else:
            results = [inbox.record(conn, e, "2026-01-05T00:00:00.000000Z") for e in events]
        conn.execute("COMMIT")
        entries = inbox.list_entries(conn)
        source = inbox.get_source(conn, "lox")
        conn.close()
        stored.append((results, [(e.seq, e.event, e.received_at, e.last_delivery_at,
                                  e.deliveries) for e in entries], source.last_event_at))
    assert stored[0] == stored[1]
    results, entries, last_event_at = stored[1]
    assert [r.deliveries for r in results] == [1, 1, 2, 1, 1]
    assert last_event_at == "2026-01-05T00:00:00.000000Z"
    assert entries[0][1] == events[0]  # every field back as it went in (NUL and ✓ too)
    assert entries[0][0] == 3  # a repeated delivery moves the event past the pull cursor
