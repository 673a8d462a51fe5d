"""The History page: runs listed with who, when, what; a submit run's receipt exported."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from optout_desk.connectors.checkmarket import CheckMarketFormat
from optout_desk.core.identifiers import normalise_email
from optout_desk.core.plan import Destination, PlanInput, build_plan
from optout_desk.store import history, journal
from optout_desk.store.db import connect


@pytest.fixture(autouse=True)
def _database_migrated(isolated_home: Path) -> None:
    """Migrate before the window's pages open the database from several threads at once
    (store.db.migrate is not safe against a concurrent first open)."""
    connect().close()

def test_runs_listed_and_receipt_exported(qtbot: Any, main_window: Any, tmp_path: Path) -> None:
    db = connect()
    plan = build_plan([PlanInput(normalise_email(f"h{i}@example.com"), "crm.xlsx", i + 2)
                       for i in range(3)],
                      destination=Destination("acme", "checkmarket", "h", "eu"),
                      payload_format=CheckMarketFormat(5))
    plan_id = journal.save_plan(db, plan)
    history.record_run(db, kind="fetch", connection="acme", source_file=None,
                       source_sha256=None, counts={"fetched": 12}, outcome="ok")
    run_id = history.record_run(db, kind="submit", connection="acme", source_file="crm.xlsx",
                                source_sha256="ab" * 32, counts={"plan_id": plan_id,
                                                                 "submitted": 0},
                                outcome="failed", message="The key was refused.")
    db.close()
    page = main_window.show_page("history")
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=10_000)
    row = [page.model.data(page.model.index(0, c)) for c in range(page.model.columnCount())]
    assert str(run_id) in row and "Submit" in row and "crm.xlsx" in row
    assert "Failed: The key was refused." in row
    assert "0 submitted" in row  # readable counts; the plan id is a reference, not a count
    assert not any("plan_id" in str(v) for v in row)
    page.table.view.selectRow(0)
    assert page.selected_run_id() == run_id
    assert "ab" * 32 in page.table.detail.text()  # the SHA-256 is in the details pane
    out = tmp_path / "receipt.csv"
    page.export_receipt(out)
    qtbot.waitUntil(out.exists, timeout=10_000)
    with out.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Identifier"] for r in rows] == ["h0@example.com", "h1@example.com",
                                              "h2@example.com"]
    assert {r["Outcome"] for r in rows} == {"not sent"}


def test_export_without_selection_says_so(qtbot: Any, main_window: Any) -> None:
    page = main_window.show_page("history")
    qtbot.waitUntil(lambda: page.task is None or not page.task.running, timeout=10_000)
    page.export_receipt(Path("unused.csv"))
    assert "Select a run first" in main_window.message_bar.text.text()


def test_history_fits_without_horizontal_scrolling_and_follows_new_runs(
    qtbot: Any, main_window: Any
) -> None:
    db = connect()
    for number in range(30):
        history.record_run(db, kind="reconcile", connection=None,
                           source_file=f"a-rather-long-spreadsheet-name-{number}.xlsx",
                           source_sha256="cd" * 32,
                           counts={"to_submit": 1208, "missing_from_crm": 3, "in_sync": 40,
                                   "invalid": 2, "duplicate": 1}, outcome="ok",
                           message="compared with connection demo-eu (account-wide list, "
                                   "synced 2026-11-22T09:14:03.1234567Z)")
    db.close()
    main_window.resize(1024, 700)
    page = main_window.show_page("history")
    qtbot.waitUntil(lambda: page.model.rowCount() == 30, timeout=10_000)
    qtbot.wait(50)
    view = page.table.view
    assert not view.horizontalScrollBar().isVisible()
    header = view.horizontalHeader()
    shown = sum(header.sectionSize(c) for c in range(header.count()) if not view.isColumnHidden(c))
    assert shown <= view.viewport().width()  # nothing cut off at the right
    counts = page.model.data(page.model.index(0, 6))
    assert counts == "1,208 to submit · 3 missing from the CRM · 40 in sync · +2 more"
    # A run recorded elsewhere (another page emits historyChanged) shows up here.
    db = connect()
    history.record_run(db, kind="fetch", connection="demo-eu", source_file=None,
                       source_sha256=None, counts={"fetched": 5}, outcome="ok")
    db.close()
    main_window.changes.historyChanged.emit()
    qtbot.waitUntil(lambda: page.model.rowCount() == 31, timeout=10_000)
