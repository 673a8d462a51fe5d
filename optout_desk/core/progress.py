"""Progress reports and cooperative cancellation shared by every workflow.

A workflow takes `progress: ProgressCallback` and `cancel: CancelToken`; the GUI passes a
callback that emits a Qt signal, the CLI one that advances a rich progress bar, tests a list.
"""

from __future__ import annotations

import threading
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


NEVER_CANCELLED = CancelToken()
