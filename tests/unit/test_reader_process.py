"""The reader process: whatever happens to it ends in one sentence for the caller, and the
caller (this test process) lives on. Real files and a real child process throughout; the
limits are lowered per test so the bound is reached by an ordinary file."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import CancelToken
from optout_desk.files._isolated import READER_FLAG, ReaderProcess
from optout_desk.files.spreadsheet import read_table
from optout_desk.frames import child_command
from tests.fixtures import hostile


def reader_children() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True)
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


def rows_job(path: Path, **options: object) -> ReaderProcess:
    return ReaderProcess(path, "rows", (str(path), None), on_rows=lambda block: None,
                         **options)  # type: ignore[arg-type]


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    return hostile.huge_csv(tmp_path / "big.csv", 40 * 1024**2)  # 1.3M rows, a few seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_a_native_abort_in_the_reader_is_one_sentence(tmp_path: Path) -> None:
    """Within the extent limit (10 million cells) but not within this test's memory limit:
    calamine's allocation of the dense range fails and aborts its process, as the XFD1048576
    file aborted the app before the reader process existed."""
    path = hostile.xlsx_far_cell(tmp_path / "j.xlsx", "J1000000")
    with pytest.raises(BadInputError) as caught:
        rows_job(path, memory_limit=200 * 1024**2).run()
    message = caught.value.message
    assert "j.xlsx" in message and "memory the desk gives one file" in message
    assert not reader_children()


def test_the_watchdog_stops_a_reader_using_too_much_memory(big_csv: Path) -> None:
    # Resident memory over 40 MB (the reader needs more), address space left free: the app's
    # watchdog, not the child's own limit, must stop it.
    job = rows_job(big_csv, memory_limit=40 * 1024**2, address_limit=8 * 1024**3)
    with pytest.raises(BadInputError, match="memory the desk gives one file"):
        job.run()
    assert not reader_children()


def test_a_reader_past_its_time_is_stopped(big_csv: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BadInputError, match="took longer than"):
        rows_job(big_csv, time_limit=0.3).run()
    assert time.monotonic() - started < 5
    assert not reader_children()


def test_cancel_ends_the_reader_at_once(big_csv: Path) -> None:
    cancel = CancelToken()
    threading.Timer(0.5, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        read_table(big_csv, cancel=cancel)
    assert time.monotonic() - started < 3
    assert not reader_children()


def test_rows_arrive_in_blocks_and_the_child_ends(big_csv: Path) -> None:
    blocks: list[int] = []
    job = ReaderProcess(big_csv, "rows", (str(big_csv), None),
                        on_rows=lambda block: blocks.append(len(block or [])))
    outcome = job.run()
    assert outcome.delimiter == "," and outcome.encoding == "utf-8"
    assert len(blocks) > 10 and sum(blocks) > 1_000_000
    assert job.peak_rss > 0
    assert not reader_children()


def test_the_child_is_a_plain_interpreter_not_the_callers_main() -> None:
    """multiprocessing's spawn would re-import the caller's __main__ (a script calling
    read_table at import time would start itself again); the reader runs `-c`."""
    command = child_command(READER_FLAG, "optout_desk.files._isolated")
    assert command[0] == sys.executable and command[1] == "-c"
    assert "child_main" in command[2]
