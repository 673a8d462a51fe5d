"""Progress reports and cooperative cancellation shared by every workflow.

A workflow takes `progress: ProgressCallback` and `cancel: CancelToken`; the GUI passes a
callback that emits a Qt signal, the CLI one that advances a rich progress bar, tests a list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from optout_desk.core.errors import Cancelled


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a long operation has come. `total` is None while unknown."""

    done: int
    total: int | None = None
    unit: str = "items"
    message: str = ""
    # Secondary counter shown beside the main one, e.g. records while `done` counts pages.
    records: int | None = None


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores reports."""


class CancelToken:
    """Set by the user's Cancel; checked by the work between steps. Thread-safe."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on cancel. Returns True if cancelled."""
        return self._event.wait(seconds)


class AnyCancelled(CancelToken):
    """Cancelled as soon as any of its tokens is: e.g. "cancel all" or "cancel this one"."""

    def __init__(self, *tokens: CancelToken) -> None:
        super().__init__()
        self._tokens = tokens

    def cancel(self) -> None:
        for token in self._tokens:
            token.cancel()

    @property
    def cancelled(self) -> bool:
        return any(token.cancelled for token in self._tokens)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.cancelled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._tokens[0].wait(min(left, 0.05))  # short slices: any token may fire
        return True


NEVER_CANCELLED = CancelToken()
