"""The receiver's event store: a child process commits the deliveries (real SQLite file, real
child). Every delivery is on disk when its request is resolved, concurrent deliveries share
commits, the same event twice counts two deliveries, a row that fails fails alone, a killed
child fails only what was waiting and the next delivery starts a new one, and a stopped store
refuses."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from optout_desk.core.errors import DeskError
from optout_desk.store import inbox
from optout_desk.webhooks.event_store import EventStore
from optout_desk.webhooks.writer import WriterStopped
from tests.unit.test_inbox_writer import _event


@pytest.fixture
def store(inbox_db_path: Path) -> Any:
    started = EventStore(inbox_db_path).start()
    yield started
    started.stop()


def _stored(inbox_db_path: Path) -> dict[int, int]:
    conn = sqlite3.connect(inbox_db_path)
    try:
        return dict(conn.execute("SELECT id, deliveries FROM inbox_events").fetchall())
    finally:
        conn.close()


def test_every_delivery_is_on_disk_when_it_is_acknowledged_and_they_share_commits(
        store: EventStore, inbox_db_path: Path) -> None:
    late: list[int] = []

    async def deliver_all() -> list[inbox.Recorded]:
        async def one(n: int) -> inbox.Recorded:
            recorded = await store.record(inbox.event_row(_event(n)))
            # A fresh reader, the moment this one is acknowledged: it is there.
            if _stored(inbox_db_path).get(recorded.row_id) != recorded.deliveries:
                late.append(n)
            return recorded

        return list(await asyncio.gather(*(one(n) for n in range(200))))

    recorded = asyncio.run(deliver_all())
    assert late == []
    assert [r.deliveries for r in recorded] == [1] * 200
    assert len({r.row_id for r in recorded}) == 200
    assert store.events == 200 and store.batches < 50  # group commit, not one fsync each


def test_the_same_event_twice_counts_two_deliveries(store: EventStore, inbox_db_path: Path) -> None:
    rows = [inbox.event_row(e) for e in (_event(1), _event(2), _event(1),
                                         _event(1, source="other"), _event(1))]

    async def deliver() -> list[inbox.Recorded]:
        return list(await asyncio.gather(*(store.record(row) for row in rows)))

    recorded = asyncio.run(deliver())
    assert [(r.deliveries, r.created) for r in recorded] == [
        (1, True), (1, True), (2, False), (1, True), (3, False)]
    assert recorded[0].row_id == recorded[2].row_id == recorded[4].row_id
    assert sorted(_stored(inbox_db_path).values()) == [1, 1, 3]


def test_a_row_that_fails_fails_alone(store: EventStore, inbox_db_path: Path) -> None:
    broken = (None, *inbox.event_row(_event(2))[1:])  # no source: NOT NULL refuses it

    async def deliver() -> list[Any]:
        return list(await asyncio.gather(
            store.record(inbox.event_row(_event(1))), store.record(broken),
            store.record(inbox.event_row(_event(3))), return_exceptions=True))

    first, failed, third = asyncio.run(deliver())
    assert isinstance(failed, RuntimeError) and "could not be stored" in str(failed)
    assert (first.deliveries, third.deliveries) == (1, 1)
    assert len(_stored(inbox_db_path)) == 2
    # The child said so in a log file of its own (two processes must not rotate one file).
    from optout_desk import paths
    from optout_desk.log import EVENT_STORE_LOG_FILE_NAME

    own_log = (paths.log_dir() / EVENT_STORE_LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "an inbox event could not be stored: IntegrityError" in own_log


def test_a_killed_child_fails_what_waited_and_the_next_delivery_starts_a_new_one(
        store: EventStore, inbox_db_path: Path) -> None:
    async def deliver() -> tuple[inbox.Recorded, list[Any], inbox.Recorded]:
        first = await store.record(inbox.event_row(_event(1)))
        process = store._process
        assert process is not None
        process.kill()
        process.wait()
        waiting = await asyncio.gather(
            *(store.record(inbox.event_row(_event(n))) for n in (2, 3)),
            return_exceptions=True)
        # The child's end has been seen by now: the next delivery gets a new child.
        for _ in range(100):
            if store._process is None:
                break
            await asyncio.sleep(0.01)
        again = await store.record(inbox.event_row(_event(4)))
        return first, list(waiting), again

    first, waiting, again = asyncio.run(deliver())
    assert first.deliveries == 1 and again.deliveries == 1
    for outcome in waiting:  # each either failed (503: sent again) or was stored: never lost
        assert isinstance(outcome, (WriterStopped, inbox.Recorded)), outcome
    stored = _stored(inbox_db_path)
    assert first.row_id in stored and again.row_id in stored
    assert len(stored) == 2 + sum(isinstance(o, inbox.Recorded) for o in waiting)


def test_a_stopped_store_refuses_and_stores_nothing(inbox_db_path: Path) -> None:
    store = EventStore(inbox_db_path).start()
    store.stop()

    async def deliver() -> None:
        await store.record(inbox.event_row(_event(1)))

    with pytest.raises(WriterStopped, match="not running"):
        asyncio.run(deliver())
    assert _stored(inbox_db_path) == {}


def test_a_store_that_cannot_open_the_database_says_why(tmp_path: Path) -> None:
    (tmp_path / "not-a-database").write_bytes(b"this is no SQLite file" * 100)
    with pytest.raises(DeskError, match=r"could not start.*not a database") as raised:
        EventStore(tmp_path / "not-a-database").start()
    assert isinstance(raised.value, WriterStopped)  # a delivery that meets it gets 503


def test_a_child_that_never_answers_is_killed_and_said_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child stuck before it is ready (a frozen disk, a database another process holds)
    must not keep the receiver from starting for ever."""
    import subprocess
    import sys
    import time

    from optout_desk.webhooks import event_store

    started: list[subprocess.Popen[bytes]] = []

    def stuck(*_args: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(process)
        return process

    monkeypatch.setattr(event_store, "start_child", stuck)
    monkeypatch.setattr(event_store, "START_TIMEOUT_S", 0.5)
    began = time.monotonic()
    with pytest.raises(DeskError, match=r"did not answer within 0.5 s"):
        EventStore(tmp_path / "inbox.sqlite3").start()
    assert time.monotonic() - began < 10
    assert started[0].poll() is not None  # killed, not left behind


def test_a_loop_that_cannot_watch_a_pipe_gets_the_answers_from_a_thread(
        store: EventStore, inbox_db_path: Path) -> None:
    """Windows' proactor loop has no add_reader: a thread reads the child's answers there."""
    async def deliver() -> list[inbox.Recorded]:
        def cannot(*_args: Any) -> None:
            raise NotImplementedError

        asyncio.get_running_loop().add_reader = cannot  # type: ignore[method-assign]
        return list(await asyncio.gather(
            *(store.record(inbox.event_row(_event(n))) for n in range(50))))

    recorded = asyncio.run(deliver())
    assert [r.deliveries for r in recorded] == [1] * 50
    assert len(_stored(inbox_db_path)) == 50


def test_ctrl_c_in_the_terminal_does_not_end_the_child(store: EventStore) -> None:
    """The receiver decides when the child ends (at its own clean stop), not the keystroke
    that reaches the whole process group."""
    import signal
    import time

    process = store._process
    assert process is not None
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert process.poll() is None

    async def deliver() -> inbox.Recorded:
        return await store.record(inbox.event_row(_event(1)))

    assert asyncio.run(deliver()).deliveries == 1
