"""The History page: every fetch, reconcile and submit run (time, OS user, kind, connection,
source file and SHA-256, counts, outcome), and each run's receipt, exportable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.store import history
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import run_task
from optout_desk.ui.widgets.data_table import DataTable

COLUMNS = ("id", "time", "os_user", "kind", "connection", "source_file", "source_sha256",
           "counts", "outcome")
HEADERS = {"id": "Run", "time": "Time (UTC)", "os_user": "User", "kind": "Kind",
           "connection": "Connection", "source_file": "Source file",
           "source_sha256": "SHA-256", "counts": "Counts", "outcome": "Outcome"}


def run_columns(runs: list[history.RunRecord]) -> dict[str, list[Any]]:
    return {
        "id": [r.id for r in runs],
        "time": [r.finished_at[:19].replace("T", " ") for r in runs],
        "os_user": [r.os_user for r in runs],
        "kind": [r.kind for r in runs],
        "connection": [r.connection or "" for r in runs],
        "source_file": [r.source_file or "" for r in runs],
        "source_sha256": [r.source_sha256 or "" for r in runs],
        "counts": [", ".join(f"{k} {v:,}" for k, v in r.counts.items() if k != "plan_id")
                   for r in runs],
        "outcome": [r.outcome + (f": {r.message}" if r.message else "") for r in runs],
    }


def load_runs(limit: int = 1000) -> list[history.RunRecord]:
    from optout_desk.store.db import connect

    db = connect()
    try:
        return history.list_runs(db, limit)
    finally:
        db.close()


class HistoryPage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.runs: list[history.RunRecord] = []
        self.model = ColumnarTableModel(COLUMNS, headers=HEADERS,
                                        search_columns=("kind", "connection", "source_file",
                                                        "os_user", "outcome"))
        self.table = DataTable(self.model, noun=("run", "runs"), export_name="history")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.receipt_button = QPushButton("Export receipt…")
        self.receipt_button.setToolTip("Write the selected run's receipt to a file")
        self.receipt_button.clicked.connect(lambda: self.export_receipt())
        buttons = QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(self.receipt_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>History</h2>"))
        intro = QLabel("Every fetch, reconciliation and submission, with its counts and "
                       "outcome. A run's receipt is the evidence to hand to compliance.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        self.task: Any = None
        self.refresh()

    def on_shown(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.task = run_task(self, lambda _p, _c: load_runs(), on_success=self._loaded,
                             on_failure=self.host.show_error, name="history")

    def _loaded(self, runs: list[history.RunRecord]) -> None:
        self.runs = runs
        self.model.set_columns(run_columns(runs))
        self.table.resize_columns_to_sample()

    def selected_run_id(self) -> int | None:
        rows = self.table.selected_view_rows()
        if not rows:
            return None
        index = self.model.index(rows[0], COLUMNS.index("id"))
        return int(self.model.data(index))

    def export_receipt(self, path: Path | None = None) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            self.host.notify("Select a run first.", "warning")
            return
        if path is None:
            name, _ = QFileDialog.getSaveFileName(self, "Export receipt",
                                                  f"run-{run_id}-receipt.xlsx",
                                                  "Excel (*.xlsx);;CSV (*.csv)")
            if not name:
                return
            path = Path(name)
        from optout_desk.workflows.submit import export_run_receipt

        target = path
        self.task = run_task(
            self, lambda _p, _c: export_run_receipt(run_id, target),
            on_success=lambda rows: self.host.notify(
                f"Wrote run {run_id}'s receipt to {target}", "info"),
            on_failure=self.host.show_error, name="export receipt")
