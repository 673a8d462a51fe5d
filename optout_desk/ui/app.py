"""The desktop app's entry point: `run_app(demo, crash_dialog)`, called by cli.main.

Start-up is kept under a second from source: only Qt and the window are imported here; pages
import what they need (numpy, pyqtgraph, httpx…) when first shown, and demo mode starts its
sandbox in a worker thread after the window is up. The app uses Qt's default style, so it looks
native and follows the system's light/dark scheme (Qt 6.5+ platform themes do that by itself).
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from optout_desk import __version__
from optout_desk.ui.errors import CrashHandler
from optout_desk.ui.main_window import AppContext, MainWindow

log = logging.getLogger(__name__)

APP_NAME = "Opt-out Desk"


def app_icon() -> QIcon:
    try:
        from optout_desk.resources import app_icon_png

        return QIcon(str(app_icon_png(256)))
    except (ImportError, FileNotFoundError):
        return QIcon()


# Worker threads (fetch, sort, search index) run Python too. With CPython's default 5 ms switch
# interval, every time Qt hands control back to Python on the GUI thread (each data() call while
# painting) it may wait up to 5 ms for a busy worker to drop the GIL; 1 ms keeps painting smooth.
GIL_SWITCH_INTERVAL_S = 0.001


# A full (generation 2) garbage collection walks every live object with the GIL held: with a
# fetched list in memory that is 100+ ms in whatever thread triggers it, freezing the window.
# Automatic collection keeps the cheap young generations; full collections run on a timer,
# only while no background task is running (the cells hold no reference cycles anyway).
FULL_GC_INTERVAL_MS = 30_000


class IdleCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        threshold0, threshold1, _ = gc.get_threshold()
        gc.set_threshold(threshold0, threshold1, 1_000_000_000)
        self.timer = QTimer(self)
        self.timer.setInterval(FULL_GC_INTERVAL_MS)
        self.timer.timeout.connect(self.collect_if_idle)
        self.timer.start()

    @Slot()
    def collect_if_idle(self) -> None:
        from optout_desk.ui.tasks import running_tasks

        if not running_tasks():
            gc.collect()


def ensure_application() -> QApplication:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])

    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("Opt-out Desk")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("optout-desk")
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    return app


class DemoController:
    """Starts the demo sandboxes in a task after the window shows; stops them on quit."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.started: Any = None
        self.task: Any = None

    def start(self) -> None:
        from optout_desk.ui import demo
        from optout_desk.ui.tasks import run_task

        self.window.notify("Starting the demo sandbox…", "info")
        self.task = run_task(self.window, demo.start_demo, on_success=self._started,
                             on_failure=self._failed, name="demo sandbox")

    def _started(self, started: Any) -> None:
        self.started = started
        self.window.context.sandbox = started.sandboxes[0] if started.sandboxes else None
        self.window.context.demo_connections = list(started.connections)
        hint = " Press F5 on the Opt-outs page to fetch"
        if started.spreadsheet is not None:
            from optout_desk.ui.pages.reconcile import remember_recent_file

            remember_recent_file(self.window.settings, started.spreadsheet)
            hint += f"; Reconcile lists a demo CRM export ({started.spreadsheet.name})"
        self.window.notify(
            "Demo data is ready: the connections " + ", ".join(started.connections)
            + " talk to the built-in sandbox." + hint + ".",
            "success",
        )
        self.window.changes.connectionsChanged.emit()

    def _failed(self, exc: BaseException) -> None:
        self.window.show_error(exc, "The demo sandbox could not start")

    def stop(self) -> None:
        from optout_desk.ui import demo

        demo.stop_demo(self.started)
        self.started = None


def build_window(demo: bool) -> tuple[MainWindow, DemoController | None]:
    """The main window for this run (also used by tests and the screenshot script)."""
    context = AppContext(demo=demo)
    if demo:
        from optout_desk.ui import demo as demo_mode

        if not demo_mode.user_named_data_dir():
            context.temporary_data_dir = demo_mode.use_temporary_data_dir()
    prepare_database()
    window = MainWindow(context)
    controller = DemoController(window) if demo else None
    return window, controller


def prepare_database() -> None:
    """Create or migrate the database once, before any background task opens it: two
    threads migrating a fresh database at the same moment would collide (store/db.migrate
    reads the schema version outside its transaction). A few milliseconds at start-up."""
    from optout_desk.store.db import connect

    connect().close()


def install_gc_policy(app: QApplication) -> None:
    """Full garbage collections only while idle (see IdleCollector); for the app and the
    benchmarks, not for tests (where late collection would move resource warnings around)."""
    if app.findChild(IdleCollector) is None:
        IdleCollector(app)


def run_app(demo: bool, crash_dialog: bool) -> int:
    app = ensure_application()
    install_gc_policy(app)
    crash_handler = CrashHandler(show_dialog=crash_dialog).install()
    window, controller = build_window(demo)
    window.restore_last_page()
    window.show()
    # Startup hook ([SUB]): unfinished submissions are offered for Resume / Review / Discard.
    QTimer.singleShot(0, lambda: offer_unfinished_submissions(window))
    if controller is not None:
        QTimer.singleShot(0, controller.start)
    log.info("app started (demo=%s)", demo)
    try:
        code = app.exec()
    finally:
        if controller is not None:
            controller.stop()
        if window.context.temporary_data_dir is not None:
            from optout_desk.ui import demo as demo_mode

            demo_mode.remove_temporary_data_dir(window.context.temporary_data_dir)
        crash_handler.uninstall()
    log.info("app quit (code %s)", code)
    return int(code)


def offer_unfinished_submissions(window: MainWindow) -> None:
    """If a submission was interrupted (crash, closed laptop, failed batch), open the Submit
    page with the Resume / Review / Discard dialog. Quiet when there is none."""
    from optout_desk.workflows.submit import find_unfinished

    try:
        if not find_unfinished():
            return
    except Exception:  # the check must never keep the app from starting
        log.exception("could not look for unfinished submissions")
        return
    page = window.show_page("submit")
    offer = getattr(page, "offer_unfinished", None)
    if offer is not None:
        offer()
