"""MainWindow: pages, placeholders, shortcuts, notify, error dialog, drops, settings, and the
crash handler (in-process and through the real `optout-desk --no-crash-dialog`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from optout_desk.core.errors import BadInputError
from optout_desk.ui.errors import EXIT_CRASH, CrashHandler, ErrorDialog
from optout_desk.ui.main_window import AppContext, MainWindow
from optout_desk.ui.pages import PAGES, PlaceholderPage


def test_sidebar_lists_the_pages_in_order_and_builds_them_lazily(main_window: Any) -> None:
    titles = [main_window.sidebar.item(i).text() for i in range(main_window.sidebar.count())]
    assert titles == ["Connections", "Opt-outs", "Reconcile", "Submit", "Inbox", "History"]
    assert set(main_window.built_pages()) <= {"connections"}  # only what was shown
    page = main_window.show_page("inbox")
    from optout_desk.ui.pages.inbox import InboxPage

    assert isinstance(page, InboxPage)
    assert "inbox" in main_window.built_pages()
    assert "history" not in main_window.built_pages()
    assert main_window.stack.currentWidget() is page


def test_ctrl_number_switches_pages(main_window: Any, qtbot: Any) -> None:
    main_window.show_page("connections")
    main_window.activateWindow()
    qtbot.keyClick(main_window, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
    assert main_window.current_key == "inbox"


def test_notify_shows_a_non_modal_message(main_window: Any) -> None:
    main_window.notify("The key was refused.", "warning")
    assert main_window.message_bar.isVisible()
    assert main_window.message_bar.text.text() == "The key was refused."
    assert main_window.message_bar.level == "warning"
    assert QApplication.activeModalWidget() is None
    main_window.message_bar.close_button.click()
    assert not main_window.message_bar.isVisible()


def test_error_dialog_shows_the_operator_message_for_a_desk_error(main_window: Any) -> None:
    dialog = main_window.show_error(BadInputError("The file has no header row."))
    assert isinstance(dialog, ErrorDialog)
    assert dialog.message_label.text() == "The file has no header row."
    assert not dialog.details.isVisibleTo(dialog)
    dialog.close()


def test_error_dialog_for_a_bug_has_copyable_details(main_window: Any) -> None:
    try:
        raise KeyError("missing-thing")
    except KeyError as exc:
        dialog = main_window.show_error(exc)
    assert "unexpected" in dialog.message_label.text()
    assert "KeyError" in dialog.details.toPlainText()
    dialog.copy_button.click()
    assert "KeyError" in QGuiApplication.clipboard().text()
    dialog.close()


def test_settings_remember_the_last_page(qtbot: Any, isolated_home: Path) -> None:
    window = MainWindow(AppContext())
    qtbot.addWidget(window)
    window.show_page("history")
    window.close()
    assert (isolated_home / "settings.ini").exists()
    again = MainWindow(AppContext())
    qtbot.addWidget(again)
    again.restore_last_page()
    assert again.current_key == "history"
    again.close()


def test_demo_badge_only_in_demo_mode(qtbot: Any) -> None:
    normal = MainWindow(AppContext())
    demo = MainWindow(AppContext(demo=True))
    qtbot.addWidget(normal)
    qtbot.addWidget(demo)
    assert not normal.demo_badge.isVisibleTo(normal)
    assert demo.demo_badge.isVisibleTo(demo)
    assert demo.demo_badge.text() == "Demo data"
    normal.close()
    demo.close()


@pytest.fixture
def request_restore() -> Any:
    undo: list[Any] = []
    yield undo
    for step in undo:
        step()


def test_a_dropped_file_goes_to_the_page_that_accepts_it(main_window: Any, tmp_path: Path,
                                                         request_restore: Any) -> None:
    opened: list[Path] = []

    class FilePage(PlaceholderPage):
        def open_file(self, path: Path) -> None:
            opened.append(path)

    spec = next(s for s in PAGES if s.key == "reconcile")
    patched = [*PAGES]
    patched[PAGES.index(spec)] = type(spec)(
        spec.key, spec.title, spec.icon, lambda w: FilePage("R", "r"), spec.accepts)
    original = [*PAGES]
    PAGES[:] = patched
    request_restore.append(lambda: PAGES.__setitem__(slice(None), original))
    sheet = tmp_path / "crm.xlsx"
    sheet.write_bytes(b"")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sheet))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    main_window.dropEvent(event)
    assert opened == [sheet]
    assert main_window.current_key == "reconcile"
    # Every type the reader opens is accepted (.ods used to be refused), nothing else.
    assert main_window.open_file(tmp_path / "list.ods") is True
    assert main_window.open_file(tmp_path / "notes.pdf") is False
    assert main_window.message_bar.level == "warning"
    assert ".ods" in main_window.message_bar.text.text()


def test_send_to_submit_loads_the_identifiers_on_the_submit_page(main_window: Any) -> None:
    from optout_desk.core.plan import inputs_from_lines

    inputs = inputs_from_lines(["a@example.com", "+32470123456"], region="BE")
    main_window.send_to_submit(inputs, "reconcile: To submit")
    assert main_window.current_key == "submit"
    page = main_window.current_page()
    assert page.inputs == inputs
    assert "2 identifiers (1 email, 1 phone) from reconcile: To submit" in (
        page.source_label.text())


def test_crash_handler_without_dialog_logs_and_exits(qtbot: Any) -> None:
    codes: list[int] = []
    handler = CrashHandler(show_dialog=False, exit_app=codes.append)
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        handler.handle(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: codes == [EXIT_CRASH], timeout=5000)
    assert handler.crash_count == 1


def test_crash_handler_with_dialog_shows_it(qtbot: Any) -> None:
    handler = CrashHandler(show_dialog=True, exit_app=lambda code: None)
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        handler.handle(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: handler.last_dialog is not None, timeout=5000)
    dialog = handler.last_dialog
    assert dialog is not None and dialog.isVisible()
    assert "RuntimeError" in dialog.details.toPlainText()
    dialog.close()


CRASHING_APP = textwrap.dedent("""
    from PySide6.QtCore import QTimer
    from optout_desk import cli
    from optout_desk.ui import main_window

    def boom():
        raise RuntimeError("boom in a slot")

    main_window.MainWindow.restore_last_page = lambda self: QTimer.singleShot(0, boom)
    raise SystemExit(cli.main(["--no-crash-dialog"]))
""")


def test_the_real_app_with_no_crash_dialog_exits_non_zero_and_logs(isolated_home: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OPTOUT_DESK_HOME=str(isolated_home))
    result = subprocess.run([sys.executable, "-c", CRASHING_APP], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == EXIT_CRASH, result.stderr
    assert "unexpected error" in result.stderr
    log_text = (isolated_home / "logs" / "optout-desk.log").read_text()
    assert "uncaught exception" in log_text and "boom in a slot" in log_text
