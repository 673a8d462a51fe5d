"""Pacing: at most N requests per second from one client, whatever the number of threads.

A connection's pacing setting is the operator's promise to a platform whose rate limit is
UNKNOWN; the HTTP policy's 429 handling still applies on top of it. 0 means no pacing.
"""

from __future__ import annotations

import threading
import time

from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken


class Pacer:
    """Hands out evenly spaced start times; `wait()` sleeps until the caller's slot."""

    def __init__(self, requests_per_second: float) -> None:
        if requests_per_second < 0:
            raise ValueError("requests_per_second must not be negative")
        self.interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, cancel: CancelToken = NEVER_CANCELLED) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0 and cancel.wait(delay):
            raise Cancelled()
