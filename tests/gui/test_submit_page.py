"""The Submit page driven like a user: bucket in, destination matrix, preview, send, cancel,
resume, receipt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from optout_desk.core.identifiers import normalise_email
from optout_desk.core.plan import PlanInput
from optout_desk.sandbox.server import Sandbox
from optout_desk.store import connections
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import submission
from tests.fixtures.sandbox import SandboxFactory


def add_demo(box: Sandbox, monkeypatch: pytest.MonkeyPatch, batch_size: int = 3) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", box.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", box.key)
    db = connect()
    connections.add(db, ConnectionProfile("demo", "checkmarket", box.base_url, "eu",
                                          settings={"batch_size": batch_size}))
    db.close()


def bucket(n: int) -> list[PlanInput]:
    return [PlanInput(normalise_email(f"gui{i}@example.com"), "crm.xlsx", i + 2)
            for i in range(n)]


def planned(qtbot: Any, page: Any) -> None:
    """Wait until the matrix shows the current plans."""
    qtbot.waitUntil(lambda: page.matrix_preview is not None and page.plan_task is None,
                    timeout=10_000)


def tick_only(page: Any, *names: str) -> None:
    for row in range(page.matrix.rowCount()):
        name = page.matrix.item(row, 0).data(Qt.ItemDataRole.UserRole)
        page.matrix.set_ticked(name, name in names)


def preview_and_send(qtbot: Any, page: Any) -> None:
    qtbot.mouseClick(page.plan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.isVisible(), timeout=10_000)
    qtbot.mouseClick(page.preview.confirm_button, Qt.MouseButton.LeftButton)


def only_run(page: Any) -> Any:
    [run] = page.outcome.runs
    return run.outcome


def test_bucket_preview_send_and_receipt(
    qtbot: Any, main_window: Any, sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    box = sandbox_factory(records=10)
    add_demo(box, monkeypatch)

    def sent_in_the_window(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the window's process sent the submission")

    # A child process sends (workflows/submission_process.py): never the window's.
    monkeypatch.setattr(submission, "execute_submission", sent_in_the_window)
    main_window.send_to_submit(bucket(7), "Reconcile: To submit", "demo")
    page = main_window.current_page()
    assert "7 rows · 7 identifiers (7 emails) from Reconcile: To submit" in (
        page.source_label.text())
    planned(qtbot, page)
    assert page.matrix.ticked() == ["demo"]  # the connection reconciled against
    assert page.matrix.item(0, 1).text() == "7" and page.matrix.item(0, 4).text() == "3"
    assert "Emails → demo (opt-out list)" in page.routing_label.text()
    qtbot.mouseClick(page.plan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.isVisible(), timeout=10_000)
    assert page.preview.confirm_button.text() == "Submit 7 opt-outs to demo (EU)"
    assert box.state.submitted == []  # nothing before confirmation
    qtbot.mouseClick(page.preview.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    assert only_run(page).status == "completed" and only_run(page).submitted == 7
    assert [v for b in box.state.submitted for v in b["EmailAddresses"]] == [
        f"gui{i}@example.com" for i in range(7)]
    assert "1 of 1 destination finished: demo: completed" in page.outcome_label.text()
    assert page.sending.rows["demo"].bar.value() == 3
    qtbot.waitUntil(lambda: page.outcomes.isVisible(), timeout=10_000)
    assert page.outcomes.model.total_rows == 7
    receipt = tmp_path / "receipt.xlsx"
    page.export_receipt(receipt)
    qtbot.waitUntil(receipt.exists, timeout=10_000)
    import openpyxl

    book = openpyxl.load_workbook(receipt, read_only=True)
    assert book.sheetnames == ["Summary", "Outcomes", "demo"]
    outcomes = [row[2] for row in book["Outcomes"].iter_rows(min_row=2, values_only=True)]
    book.close()
    assert outcomes == ["sent, confirmed"] * 7


def test_cancel_then_resume_from_the_unfinished_dialog(
    qtbot: Any, main_window: Any, sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = sandbox_factory(records=10, latency_ms=80)
    add_demo(box, monkeypatch, batch_size=2)
    page = main_window.show_page("submit")
    qtbot.waitUntil(lambda: page.matrix.rowCount() == 1, timeout=10_000)
    page.paste.setPlainText("\n".join(f"p{i}@example.com" for i in range(20)))
    preview_and_send(qtbot, page)
    qtbot.waitUntil(lambda: "demo" in page.sending.rows
                    and page.sending.rows["demo"].bar.value() >= 1, timeout=10_000)
    qtbot.mouseClick(page.sending.rows["demo"].cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    assert only_run(page).cancelled and only_run(page).remaining > 0
    sent_before = len(box.state.submitted)
    assert sent_before == only_run(page).acknowledged < 10
    assert page.offer_unfinished() is True
    dialog = page.resume_dialog
    assert "Plan 1" in dialog.list.item(0).text()
    page.outcome = None
    box.state.set_latency(0)
    qtbot.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    assert only_run(page).status == "completed"
    assert only_run(page).resent_after_interruption == 0
    assert len(box.state.submitted) == 10


def test_refused_key_shows_why_and_discard(
    qtbot: Any, main_window: Any, sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = sandbox_factory(records=10)
    box.state.add_key(box.master_key, "reader", {"contacts:read"})
    add_demo(box, monkeypatch)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", "reader")
    main_window.send_to_submit(bucket(4), "test")
    page = main_window.current_page()
    planned(qtbot, page)
    preview_and_send(qtbot, page)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    shown = page.sending.rows["demo"].status.text()
    assert "refused" in shown and "Contacts (write)" in shown
    assert "demo: failed" in page.outcome_label.text()
    assert page.sending.rows["demo"].retry.isVisibleTo(page)
    assert page.offer_unfinished() is True
    qtbot.mouseClick(page.resume_dialog.discard_button, Qt.MouseButton.LeftButton)
    from optout_desk.workflows.submit import find_unfinished

    assert find_unfinished() == []
    assert box.state.submitted == []


def test_nothing_to_plan_is_explained(qtbot: Any, main_window: Any) -> None:
    page = main_window.show_page("submit")
    qtbot.mouseClick(page.plan_button, Qt.MouseButton.LeftButton)
    assert page.preview is None
    assert page.offer_unfinished() is False


def test_startup_offers_unfinished_plans(qtbot: Any, main_window: Any) -> None:
    from optout_desk.connectors.checkmarket import CheckMarketFormat
    from optout_desk.core.plan import Destination, build_plan
    from optout_desk.store import journal
    from optout_desk.ui.app import offer_unfinished_submissions

    offer_unfinished_submissions(main_window)  # nothing unfinished: stays quiet
    assert main_window.current_key != "submit" or not hasattr(
        main_window.current_page(), "resume_dialog")
    db = connect()
    journal.save_plan(db, build_plan(bucket(2), destination=Destination(
        "demo", "checkmarket", "h", "eu"), payload_format=CheckMarketFormat(5)))
    db.close()
    offer_unfinished_submissions(main_window)
    page = main_window.current_page()
    qtbot.waitUntil(lambda: page.resume_dialog.isVisible(), timeout=5_000)
    assert "demo (EU)" in page.resume_dialog.list.item(0).text()
    page.resume_dialog.reject()


def test_open_a_spreadsheet_takes_its_detected_columns_with_row_numbers(
    qtbot: Any, main_window: Any, tmp_path: Path,
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Contacts"], [], ["Name", "E-mail", "Mobile"],
                ["Ann", "Ann@Example.com", "0470 12 34 56"], ["Bob", "bob@example.com", None]):
        sheet.append(row)
    path = tmp_path / "crm.xlsx"
    book.save(path)
    main_window.show_page("submit")
    page = main_window.current_page()
    page.region.set_region("BE")
    page.open_file(path)
    qtbot.waitUntil(lambda: len(page.inputs) == 3, timeout=10_000)
    assert [(i.identifier.key, i.source_file, i.row_number) for i in page.inputs] == [
        ("ann@example.com", "crm.xlsx", 4), ("+32470123456", "crm.xlsx", 4),
        ("bob@example.com", "crm.xlsx", 5)]
    assert "2 rows · 3 identifiers (2 emails, 1 phone) from crm.xlsx" in page.source_label.text()
    assert "Ann@Example.com" in page.paste.placeholderText()


def test_a_damaged_file_is_a_message_and_keeps_what_was_loaded(
    qtbot: Any, main_window: Any, tmp_path: Path,
) -> None:
    main_window.send_to_submit(bucket(2), "Reconcile: To submit")
    page = main_window.current_page()
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not a workbook")
    page.open_file(broken)
    qtbot.waitUntil(lambda: main_window.message_bar.level == "warning", timeout=10_000)
    assert "broken.xlsx" in main_window.message_bar.text.text()
    assert len(page.inputs) == 2
    assert "2 rows · 2 identifiers (2 emails) from Reconcile: To submit" in (
        page.source_label.text())


def test_two_destinations_side_by_side_with_the_matrix_of_outcomes(
    qtbot: Any, main_window: Any, sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = sandbox_factory(records=10, seed=1, latency_ms=20)
    second = sandbox_factory(records=10, seed=2, latency_ms=20)
    add_demo(first, monkeypatch)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_OTHER_MASTER_KEY", second.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_OTHER_KEY", second.key)
    db = connect()
    connections.add(db, ConnectionProfile("other", "checkmarket", second.base_url, "us",
                                          settings={"batch_size": 2}))
    db.close()
    main_window.send_to_submit(bucket(5), "Reconcile: To submit", "demo")
    page = main_window.current_page()
    planned(qtbot, page)
    qtbot.waitUntil(lambda: page.matrix.rowCount() == 2, timeout=10_000)
    assert page.matrix.ticked() == ["demo"] and not page.note_label.isVisibleTo(page)
    page.matrix.set_ticked("other", True)
    assert "other was not compared with" in page.note_label.text()
    assert page.note_label.isVisibleTo(page)
    rows = {page.matrix.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(2)}
    assert page.matrix.item(rows["other"], 4).text() == "3"  # 5 emails in batches of 2
    qtbot.mouseClick(page.plan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.preview is not None and page.preview.isVisible(), timeout=10_000)
    assert page.preview.tabs.count() == 2
    assert page.preview.confirm_button.text() == "Send 5 to demo (EU) and 5 to other (US)"
    qtbot.mouseClick(page.preview.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: set(page.sending.rows) == {"demo", "other"}, timeout=10_000)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    assert page.outcome.all_finished
    assert page.sending.rows["other"].bar.value() == 3
    assert page.sending.rows["demo"].bar.value() == 2
    qtbot.waitUntil(lambda: page.outcomes.isVisible(), timeout=10_000)
    assert page.outcomes.model.columns == ("Identifier", "Kind", "demo", "other")
    assert len(first.state.submitted) == 2 and len(second.state.submitted) == 3


def test_after_a_run_in_a_short_window_nothing_is_squeezed_and_the_outcome_is_in_view(
    qtbot: Any, main_window: Any, sandbox_factory: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 1024x700 the inputs, the destinations, the outcomes and the progress of each
    destination need more height than there is: the body scrolls (the destinations table
    keeps its rows, not a sliver of them), the buttons stay put, and the view ends on the
    progress and the outcome."""
    box = sandbox_factory(records=10)
    add_demo(box, monkeypatch, batch_size=10)
    main_window.resize(1024, 700)
    main_window.show()
    main_window.send_to_submit(bucket(4), "Reconcile: To submit", "demo")
    page = main_window.current_page()
    planned(qtbot, page)
    preview_and_send(qtbot, page)
    qtbot.waitUntil(lambda: page.outcome is not None, timeout=20_000)
    qtbot.waitUntil(lambda: page.outcomes.isVisible(), timeout=10_000)
    qtbot.wait(50)  # the scroll to the end is queued after the layout
    assert page.matrix.height() >= page.matrix.minimumSizeHint().height()
    viewport = page.body.viewport()
    outcome_top = page.outcome_label.mapTo(viewport, page.outcome_label.rect().topLeft())
    assert 0 <= outcome_top.y() and outcome_top.y() + page.outcome_label.height() <= (
        viewport.height())
    assert page.plan_button.isVisible() and page.receipt_button.isEnabled()
    assert page.sending.rows["demo"].bar.text() == "1 of 1 request"


def test_the_destination_matrix_keeps_every_row_and_column_in_view_at_1024(qtbot: Any) -> None:
    """Before, at 1024 px the matrix scrolled sideways ("Left out" out of view) and its
    scroll bar hid most of the fourth row: names and reasons now share the width, elided,
    each in full in its tooltip."""
    from optout_desk.ui.widgets.destinations import DestinationMatrix

    matrix = DestinationMatrix()
    qtbot.addWidget(matrix)
    names = ["demo-dy", "demo-eu", "demo-mykaarma", "demo-us"]
    label = "CheckMarket (Medallia Agile Research)"
    matrix.set_connections(names, dict.fromkeys(names, label), {"demo-eu"})
    reason = "78 phones it does not take, it cannot tell what is already there"
    for row in range(4):
        matrix.item(row, len(matrix.COLUMNS) - 1).setText(reason)
        matrix.item(row, len(matrix.COLUMNS) - 1).setToolTip(reason)
    matrix.resize(818, matrix.sizeHint().height())
    matrix.show()
    qtbot.waitExposed(matrix)
    matrix._fit_columns()
    header = matrix.horizontalHeader()
    assert header.length() <= matrix.viewport().width()  # no sideways scrolling
    assert not matrix.horizontalScrollBar().isVisible()
    assert matrix.viewport().height() >= 4 * matrix.rowHeight(0)  # all four rows
    assert header.sectionSize(0) >= 160  # still names each destination
    assert matrix.item(1, 0).toolTip() == f"demo-eu — {label}"
    wide = DestinationMatrix()
    qtbot.addWidget(wide)
    wide.set_connections(names, dict.fromkeys(names, label), set())
    wide.resize(1400, wide.sizeHint().height())
    wide.show()
    qtbot.waitExposed(wide)
    for row in range(4):  # names in full, the long reasons cut: still nothing off-screen
        wide.item(row, len(wide.COLUMNS) - 1).setText(reason * 3)
    wide._fit_columns()
    assert wide.horizontalHeader().sectionSize(0) >= wide.sizeHintForColumn(0)  # in full
    assert wide.horizontalHeader().length() <= wide.viewport().width()
