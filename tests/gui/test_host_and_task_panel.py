"""The page host (ui/host.py), run_task's default failure routing and the TaskPanel widget."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.ui import tasks
from optout_desk.ui.host import Changes, PageHost
from optout_desk.ui.widgets.task_panel import TaskPanel, TimeLeft, time_left_text


def test_the_main_window_is_a_page_host_with_one_change_object(main_window: Any) -> None:
    assert isinstance(main_window, PageHost)
    assert isinstance(main_window.changes, Changes)
    seen: list[str] = []
    main_window.changes.connectionsChanged.connect(lambda: seen.append("changes"))
    main_window.connectionsChanged.emit()  # the old name is the same signal
    assert seen == ["changes"]


def run_and_wait(qtbot: Any, owner: Any, work: Any) -> None:
    handle = tasks.run_task(owner, work, on_success=lambda _: None)
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass


def test_an_expected_error_goes_to_the_message_bar_by_default(main_window: Any, qtbot: Any,
                                                              monkeypatch: Any) -> None:
    dialogs: list[BaseException] = []
    monkeypatch.setattr(main_window, "show_error", lambda exc, title="": dialogs.append(exc))

    def bad_file(_p: ProgressCallback, _c: CancelToken) -> None:
        raise BadInputError("'crm.xlsx' is not a spreadsheet.")

    run_and_wait(qtbot, main_window, bad_file)
    assert main_window.message_bar.isVisible()
    assert main_window.message_bar.level == "warning"
    assert main_window.message_bar.text.text() == "'crm.xlsx' is not a spreadsheet."
    assert dialogs == []

    def cancelled(_p: ProgressCallback, _c: CancelToken) -> None:
        raise Cancelled()

    run_and_wait(qtbot, main_window, cancelled)
    assert main_window.message_bar.level == "info"
    assert "Cancelled" in main_window.message_bar.text.text()
    assert dialogs == []

    def bug(_p: ProgressCallback, _c: CancelToken) -> None:
        raise KeyError("bug")

    run_and_wait(qtbot, main_window, bug)
    assert len(dialogs) == 1 and isinstance(dialogs[0], KeyError)


def test_time_left_is_estimated_from_the_rate_since_the_first_report() -> None:
    estimate = TimeLeft()
    assert estimate.estimate(10, 100, now=100.0) is None  # the first report sets the start
    assert estimate.estimate(20, 100, now=100.5) is None  # too early to say
    assert estimate.estimate(30, 100, now=102.0) == pytest.approx(7.0)  # 20 in 2 s, 70 left
    assert time_left_text(7.0) == "about 7 s left"
    assert time_left_text(190) == "about 3 min left"
    assert time_left_text(7500) == "about 2 h 5 min left"


def test_task_panel_shows_progress_and_clears_its_status_when_the_task_ends(
    qtbot: Any, main_window: Any
) -> None:
    panel = TaskPanel()
    qtbot.addWidget(panel)
    panel.show()
    release = threading.Event()
    results: list[int] = []

    def work(progress: ProgressCallback, _cancel: CancelToken) -> int:
        progress(Progress(1200, 5000, "rows", "Reading crm.xlsx…"))
        release.wait(5)
        return 7

    panel.run(main_window, work, "Opening crm.xlsx…", on_success=results.append)
    assert panel.isVisible() and panel.busy
    assert panel.status.text() == "Opening crm.xlsx…"
    qtbot.waitUntil(lambda: panel.bar.maximum() == 5000, timeout=5000)
    assert panel.bar.value() == 1200
    assert panel.status.text() == "Reading crm.xlsx… 1,200 of 5,000 rows"
    release.set()
    qtbot.waitUntil(lambda: results == [7], timeout=5000)
    assert not panel.isVisible() and not panel.busy
    assert panel.status.text() == "" and panel.eta.text() == ""


def test_task_panel_cancel_and_escape_cancel_the_task(qtbot: Any, main_window: Any) -> None:
    panel = TaskPanel()
    qtbot.addWidget(panel)
    panel.show()
    failures: list[BaseException] = []

    def work(_progress: ProgressCallback, cancel: CancelToken) -> None:
        while not cancel.wait(0.01):
            pass
        cancel.raise_if_cancelled()

    panel.run(main_window, work, "Fetching…", on_success=lambda _: None,
              on_failure=failures.append)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert panel.status.text() == "Cancelling…"
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=5000)
    assert isinstance(failures[0], Cancelled)
    assert not panel.isVisible()

    panel.run(main_window, work, "Fetching again…", on_success=lambda _: None,
              on_failure=failures.append)
    qtbot.keyClick(panel, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=5000)


def test_task_panel_without_on_failure_reports_like_run_task(qtbot: Any,
                                                            main_window: Any) -> None:
    panel = TaskPanel(main_window)

    def work(_progress: ProgressCallback, _cancel: CancelToken) -> None:
        raise BadInputError("The file is empty.")

    handle = panel.run(main_window, work, "Reading…", on_success=lambda _: None)
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert main_window.message_bar.text.text() == "The file is empty."
    assert not panel.isVisible()


def test_window_title_names_the_page_not_the_app_twice(main_window: Any) -> None:
    main_window.show_page("history")
    assert main_window.windowTitle() == "History"
    assert "Opt-out Desk" not in main_window.windowTitle()  # the platform adds the app name


def test_ctrl_o_asks_the_current_page_for_a_file(main_window: Any, qtbot: Any,
                                                 monkeypatch: Any) -> None:
    from optout_desk.ui.pages.reconcile import ReconcilePage

    asked: list[str] = []
    monkeypatch.setattr(ReconcilePage, "ask_open_path",
                        classmethod(lambda cls, parent: asked.append("asked")))
    main_window.show_page("history")  # no file to open there: Reconcile asks
    qtbot.keyClick(main_window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert asked == ["asked"]
    assert main_window.current_key == "reconcile"


def test_a_message_floats_over_the_page_instead_of_pushing_it(main_window: Any,
                                                            qtbot: Any) -> None:
    page = main_window.show_page("history")
    qtbot.wait(20)
    before = page.mapTo(main_window, page.rect().topLeft())
    main_window.notify("A long message that used to push every control of the page down by "
                       "a line or two, so a click meant for one button landed on another.",
                       "warning")
    qtbot.wait(20)
    assert main_window.message_bar.isVisible()
    assert page.mapTo(main_window, page.rect().topLeft()) == before  # nothing moved
    bar = main_window.message_bar.geometry()
    assert bar.top() <= 16 and bar.width() > page.width() - 40  # over the page's top


def test_demo_exports_are_offered_a_rescue_on_quit(qtbot: Any, tmp_path: Any,
                                                   monkeypatch: Any) -> None:
    from pathlib import Path

    from optout_desk.ui.app import ensure_application, prepare_database
    from optout_desk.ui.main_window import AppContext, MainWindow
    from optout_desk.ui.save_paths import SavePaths

    demo_folder = tmp_path / "demo-data"
    demo_folder.mkdir()
    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setattr("optout_desk.ui.save_paths.documents_folder", lambda: documents)
    ensure_application()
    prepare_database()
    window = MainWindow(AppContext(demo=True, temporary_data_dir=demo_folder))
    qtbot.addWidget(window)
    exported = demo_folder / "result.xlsx"
    exported.write_bytes(b"x")
    window.exports.exported(exported)
    window.exports.exported(documents / "safe.xlsx")  # outside the demo folder: not at risk
    assert window.exports.at_risk() == [exported]
    answers = ["cancel", "move"]
    asked: list[list[Path]] = []

    def ask(cls: Any, parent: Any, files: list[Path]) -> str:
        asked.append(files)
        return answers.pop(0)

    monkeypatch.setattr(MainWindow, "ask_about_demo_exports", classmethod(ask))
    assert window.close() is False  # Cancel keeps the window open
    assert window.close() is True
    assert asked == [[exported], [exported]]
    assert not exported.exists() and (documents / "result.xlsx").read_bytes() == b"x"
    # Saving again offers the folder chosen last in that dialog, else documents.
    paths = SavePaths(window.settings)
    assert paths.folder("table-export") == documents
    paths.chosen("table-export", tmp_path / "elsewhere" / "x.xlsx")
    assert paths.folder("table-export") == documents  # that folder does not exist
    (tmp_path / "elsewhere").mkdir()
    assert paths.folder("table-export") == tmp_path / "elsewhere"
    assert paths.folder("history-receipt") == documents  # each dialog has its own


def test_a_cut_cell_shows_its_whole_text_as_a_tooltip(qtbot: Any) -> None:
    from optout_desk.ui.models.columnar import ColumnarTableModel
    from optout_desk.ui.widgets.data_table import DataTable

    model = ColumnarTableModel(["short", "long"])
    model.set_columns({"short": ["ok"], "long": ["A sentence far too long for its column " * 3]})
    table = DataTable(model)
    qtbot.addWidget(table)
    table.resize(600, 300)
    table.show()
    table.view.setColumnWidth(0, 120)
    table.view.setColumnWidth(1, 120)
    assert table.cell_tooltip_text(0, 0) == ""  # it fits: no tooltip
    assert table.cell_tooltip_text(0, 1).startswith("A sentence far too long")


def test_wide_columns_give_way_first_when_the_table_is_narrow() -> None:
    from optout_desk.ui.widgets.data_table import fit_widths

    assert fit_widths([50, 300, 80], [40, 60, 60], 1000) == [50, 300, 80]  # it fits
    fitted = fit_widths([50, 300, 80, 250], [40, 60, 60, 60], 500)
    assert fitted[0] == 50 and fitted[2] == 80  # narrow columns keep their width
    assert fitted[1] == fitted[3] and sum(fitted) <= 500
    assert fit_widths([100, 120], [50, 50], 150) == [75, 75]
    assert fit_widths([100, 100], [90, 90], 100) == [100, 100]  # cannot fit: scroll instead


def test_a_cut_header_ends_in_an_ellipsis_and_shows_its_whole_title_as_a_tooltip(
        qtbot: Any) -> None:
    """Before, a header narrowed to its content was clipped at both ends ("Customer number"
    read "ustomer r"), with no way to read it whole."""
    from PySide6.QtCore import Qt

    from optout_desk.ui.models.columnar import ColumnarTableModel
    from optout_desk.ui.widgets.data_table import DataTable

    model = ColumnarTableModel(["Customer number", "E-mail"])
    model.set_columns({"Customer number": ["100012"], "E-mail": ["a@example.com"]})
    table = DataTable(model)
    qtbot.addWidget(table)
    header = table.view.horizontalHeader()
    assert header.textElideMode() == Qt.TextElideMode.ElideRight
    assert model.headerData(0, Qt.Orientation.Horizontal,
                            Qt.ItemDataRole.ToolTipRole) == "Customer number"
