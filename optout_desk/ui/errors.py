"""The three tiers of errors in the desktop app (STYLE.md).

1. Expected problems (wrong key, throttled, nothing to fetch): a non-modal message in the
   window's message bar — `MainWindow.notify(text, level)`; see widgets/message_bar.py.
2. A failed operation: `ErrorDialog` — the operator message, and for an unexpected exception the
   traceback under "Details", with a "Copy details" button for support.
3. An uncaught exception anywhere: `CrashHandler` (sys.excepthook and threading.excepthook) logs
   it to the log file and shows a crash dialog, or with `--no-crash-dialog` (CI) logs it and makes
   the app exit with EXIT_CRASH.

Secrets never reach these texts: DeskError messages are written without them, and tracebacks
show code, not local values.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk import log as desk_log
from optout_desk import paths
from optout_desk.core.errors import DeskError

log = logging.getLogger(__name__)

EXIT_CRASH = 70  # EX_SOFTWARE: an internal error, distinct from the CLI's 1 and 2


def log_folder() -> str:
    """Where the log file is being written (demo mode keeps logs in the real data folder)."""
    for handler in logging.getLogger("optout_desk").handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            return str(Path(handler.baseFilename).parent)
    return str(paths.log_dir())


def describe(exc: BaseException) -> tuple[str, str]:
    """(message for the operator, details for support) of an exception."""
    if isinstance(exc, DeskError):
        return exc.message, ""
    details = getattr(exc, "_desk_traceback", "") or "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    message = (
        "Something unexpected went wrong and the operation did not finish. "
        f"Details are in the log file in {log_folder()}."
    )
    return message, desk_log.redact(details)


class ErrorDialog(QDialog):
    """A failed operation: what happened, what to do, and details to copy for support."""

    def __init__(self, parent: QWidget | None, title: str, message: str, details: str = ""):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        layout = QVBoxLayout(self)
        self.message_label = QLabel(message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message_label)
        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setVisible(bool(details))
        self.details.setMinimumHeight(160 if details else 0)
        layout.addWidget(self.details)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy details")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self._full_text = f"{title}\n{message}\n\n{details}".strip()

    @Slot()
    def copy_details(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self._full_text)

    @classmethod
    def show_exception(
        cls, parent: QWidget | None, exc: BaseException, title: str = "The operation failed"
    ) -> ErrorDialog:
        """Show the dialog non-blocking (open()); tests find it through this classmethod."""
        message, details = describe(exc)
        dialog = cls(parent, title, message, details)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog


class CrashHandler(QObject):
    """Catches exceptions nobody caught: logs them, then a crash dialog or exit (CI).

    An exception in a worker thread is re-posted to the GUI thread through a queued signal, so
    the dialog is always created on the GUI thread.
    """

    crashed = Signal(str, str)  # message, details

    def __init__(
        self, *, show_dialog: bool, exit_app: Callable[[int], None] | None = None
    ) -> None:
        super().__init__()
        self.show_dialog = show_dialog
        self.crash_count = 0
        self.last_dialog: ErrorDialog | None = None
        self._exit_app = exit_app or _exit_application
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self.crashed.connect(self._on_crash, Qt.ConnectionType.QueuedConnection)

    def install(self) -> CrashHandler:
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread
        return self

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        threading.excepthook = self._previous_thread_hook

    def handle(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._exit_app(130)
            return
        self.crash_count += 1
        details = desk_log.redact("".join(traceback.format_exception(exc_type, exc, tb)))
        log.critical("uncaught exception\n%s", details)
        message = (
            "Opt-out Desk hit an unexpected error. Nothing half-done was saved; the details "
            f"are in the log file in {log_folder()}."
        )
        self.crashed.emit(message, details)

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    @Slot(str, str)
    def _on_crash(self, message: str, details: str) -> None:
        if not self.show_dialog:
            print(f"optout-desk: {message}", file=sys.stderr)
            self._exit_app(EXIT_CRASH)
            return
        parent = QApplication.activeWindow()
        dialog = ErrorDialog(parent, "Unexpected error", message, details)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.last_dialog = dialog


def _exit_application(code: int) -> None:
    app = QApplication.instance()
    if app is not None:
        app.exit(code)
    else:
        raise SystemExit(code)
