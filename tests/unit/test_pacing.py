"""Pacer: evenly spaced request starts across threads; 0 means no pacing; cancel wakes it."""

from __future__ import annotations

import threading
import time

import pytest

from optout_desk.connectors.pacing import Pacer
from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken


def test_no_pacing_never_waits() -> None:
    pacer = Pacer(0)
    started = time.perf_counter()
    for _ in range(1000):
        pacer.wait()
    assert time.perf_counter() - started < 0.1


def test_starts_are_spaced_across_threads() -> None:
    pacer = Pacer(50)  # one start every 20 ms
    starts: list[float] = []
    lock = threading.Lock()

    def go() -> None:
        pacer.wait()
        with lock:
            starts.append(time.perf_counter())

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert starts[-1] - starts[0] >= 5 * 0.02 * 0.9


def test_cancel_wakes_a_waiting_caller() -> None:
    pacer = Pacer(0.5)  # two seconds apart
    pacer.wait()
    cancel = CancelToken()
    threading.Timer(0.05, cancel.cancel).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        pacer.wait(cancel)
    assert time.perf_counter() - started < 1


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(-1)
