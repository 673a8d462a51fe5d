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
    assert str(run_id) in row and "submit" in row and "crm.xlsx" in row and "ab" * 32 in row
    assert any("failed: The key was refused." in str(v) for v in row)
    page.table.view.selectRow(0)
    assert page.selected_run_id() == run_id
    out = tmp_path / "receipt.csv"
    page.export_receipt(out)
    qtbot.waitUntil(out.exists, timeout=10_000)
    with out.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["identifier"] for r in rows] == ["h0@example.com", "h1@example.com",
                                              "h2@example.com"]
    assert {r["outcome"] for r in rows} == {"not sent"}


def test_export_without_selection_says_so(qtbot: Any, main_window: Any) -> None:
    page = main_window.show_page("history")
    qtbot.waitUntil(lambda: page.task is None or not page.task.running, timeout=10_000)
    page.export_receipt(Path("unused.csv"))
    assert "Select a run first" in main_window.message_bar.text.text()
