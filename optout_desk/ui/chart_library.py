"""pyqtgraph, imported off the GUI thread without racing PySide6's lazy types.

pyqtgraph takes a few hundred ms to import, so the pages import it on a worker thread. But
PySide6 creates each Qt class's Python type the first time it is used (lazy loading), and that
creation is not safe from two threads at once: pyqtgraph's import reads every attribute of
QtCore, QtGui and QtWidgets (and imports QtOpenGL, QtOpenGLWidgets, QtSvg and QtTest), and
doing that on a worker while the GUI thread built widgets crashed the app with SIGSEGV (2 of 13
demo runs under Xvfb; faulthandler had the worker in pyqtgraph's `_copy_attrs`).

So the GUI thread first creates every type of those modules itself, a slice of SLICE_S per
event-loop turn (about 0.3 s in all on a slow machine, none of it one long pause), and only then
does a worker import pyqtgraph: the worker finds nothing left to create. One load per process;
`when_ready` calls back at once when it is done.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from optout_desk.core.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

# Every PySide6 module `import pyqtgraph` touches (measured with pyqtgraph 0.14).
QT_MODULES = ("QtCore", "QtGui", "QtWidgets", "QtOpenGL", "QtOpenGLWidgets", "QtSvg", "QtTest")
SLICE_S = 0.01

_loader: _Loader | None = None


def when_ready(owner: QObject, callback: Callable[[], None]) -> None:
    """Call `callback` on the GUI thread once pyqtgraph is imported (and `owner` still
    exists); start the import if nobody has."""
    global _loader
    if _loader is None:
        if "pyqtgraph" in sys.modules:  # imported on the GUI thread (a chart drawn first)
            callback()
            return
        _loader = _Loader()
    _loader.add(owner, callback)


def _names() -> Iterator[tuple[ModuleType, str]]:
    for name in QT_MODULES:
        try:
            module = importlib.import_module(f"PySide6.{name}")
        except ImportError:  # not in this installation: pyqtgraph does without it too
            continue
        for attribute in dir(module):
            yield module, attribute


def _import_pyqtgraph(_progress: ProgressCallback, _cancel: CancelToken) -> None:
    import pyqtgraph  # noqa: F401


class _Loader(QObject):
    def __init__(self) -> None:
        super().__init__(QApplication.instance())
        self.done = False
        self._waiting: list[tuple[QObject, Callable[[], None]]] = []
        self._pending = _names()
        QTimer.singleShot(0, self._create_types)

    def add(self, owner: QObject, callback: Callable[[], None]) -> None:
        if self.done:
            callback()
        else:
            self._waiting.append((owner, callback))

    def _create_types(self) -> None:
        """One slice of the warm-up on the GUI thread, then the next turn's."""
        deadline = time.perf_counter() + SLICE_S
        for module, attribute in self._pending:
            getattr(module, attribute, None)  # creates the type if it is still lazy
            if time.perf_counter() >= deadline:
                QTimer.singleShot(0, self._create_types)
                return
        from optout_desk.ui.tasks import run_task

        run_task(self, _import_pyqtgraph, on_success=self._imported,
                 on_failure=self._failed, name="import pyqtgraph")

    def _imported(self, _result: Any) -> None:
        self.done = True
        waiting, self._waiting = self._waiting, []
        for owner, callback in waiting:
            if shiboken6.isValid(owner):  # a page closed meanwhile gets nothing
                callback()

    def _failed(self, exc: BaseException) -> None:
        # The charts stay empty; the rest of the app works. Said once, in the log.
        log.warning("the chart library could not be imported: %s", type(exc).__name__)
        self._waiting = []
