"""The History page: every fetch, reconcile and submit run (time, OS user, kind, connection,
source file, counts, outcome), and each run's receipt, exportable.

The table fits the window without horizontal scrolling: counts are a short readable summary
("4 to submit · 1 missing from CRM"), the outcome is a word ("Done", "Failed") with its message
beside it, and the rest — the file's SHA-256, every count, the whole message — shows in the
pane under the table for the selected run. Times are local, in the system's format. The page
refreshes whenever another page records a run (`host.changes.historyChanged`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from optout_desk.core.reconcile import Bucket
from optout_desk.store import history
from optout_desk.ui.formatting import number, when
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.save_paths import SaveDialog
from optout_desk.ui.tasks import report_failure, run_task
from optout_desk.ui.widgets.data_table import DataTable

COLUMNS = ("id", "time", "os_user", "kind", "connection", "source_file", "counts", "outcome",
           "detail")
HEADERS = {"id": "Run", "time": "Time", "os_user": "User", "kind": "Kind",
           "connection": "Connection", "source_file": "Source file", "counts": "Counts",
           "outcome": "Outcome", "detail": "Details"}
KIND_LABELS = {"fetch": "Fetch", "reconcile": "Reconcile", "submit": "Submit"}
OUTCOME_LABELS = {"ok": "Done", "failed": "Failed", "cancelled": "Cancelled"}
# Count names as the operator reads them (anything else: underscores become spaces).
COUNT_LABELS: dict[str, str] = {
    Bucket.TO_SUBMIT.value: "to submit", Bucket.MISSING_FROM_CRM.value: "missing from the CRM",
    Bucket.IN_SYNC.value: "in sync", Bucket.SUBSCRIBED.value: "subscribed",
    Bucket.INVALID.value: "invalid", Bucket.DUPLICATE.value: "duplicates",
    "fetched": "fetched", "added": "new", "total": "in the list",
    "submitted": "submitted", "identifiers": "identifiers", "destinations": "destinations",
    "batches_failed": "requests failed", "batches": "requests",
}
HIDDEN_COUNTS = frozenset({"plan_id", "submission_id"})  # references, not counts
# The widest each column gets when sized to its content; Outcome takes the rest.
MAX_WIDTHS = {"id": 60, "time": 140, "os_user": 110, "kind": 90, "connection": 150,
              "source_file": 170, "counts": 280}
MIN_WIDTH = 48
OUTCOME_MIN_WIDTH = 180
SUMMARY_COUNTS = 3


def count_label(key: str) -> str:
    if ": " in key:  # "demo-eu: submitted"
        connection, _, rest = key.partition(": ")
        return f"{COUNT_LABELS.get(rest, rest.replace('_', ' '))} ({connection})"
    return COUNT_LABELS.get(key, key.replace("_", " "))


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The counts worth reading first first (the buckets in their usual order)."""
    order = {key: position for position, key in enumerate(COUNT_LABELS)}
    shown = [(k, v) for k, v in counts.items() if k not in HIDDEN_COUNTS]
    return sorted(shown, key=lambda item: order.get(item[0], len(order)))


def counts_summary(counts: dict[str, int], limit: int = SUMMARY_COUNTS) -> str:
    shown = _ordered(counts)
    parts = [f"{number(v)} {count_label(k)}" for k, v in shown[:limit]]
    if len(shown) > limit:
        parts.append(f"+{len(shown) - limit} more")
    return " · ".join(parts)


def run_detail(run: history.RunRecord) -> str:
    lines = [f"Run {run.id} · {KIND_LABELS.get(run.kind, run.kind)} · "
             f"{OUTCOME_LABELS.get(run.outcome, run.outcome)} · finished {when(run.finished_at)}"
             f" by {run.os_user}"]
    if run.source_file:
        lines.append(f"Source file: {run.source_file}"
                     + (f" (SHA-256 {run.source_sha256})" if run.source_sha256 else ""))
    shown = _ordered(run.counts)
    if shown:
        lines.append("Counts: " + ", ".join(f"{number(v)} {count_label(k)}" for k, v in shown))
    if run.message:
        lines.append(run.message)
    if run.receipt_path:
        lines.append(f"Receipt: {run.receipt_path}")
    return "\n".join(lines)


def run_columns(runs: list[history.RunRecord]) -> dict[str, list[Any]]:
    return {
        "id": [r.id for r in runs],
        "time": [r.finished_at for r in runs],
        "os_user": [r.os_user for r in runs],
        "kind": [KIND_LABELS.get(r.kind, r.kind) for r in runs],
        "connection": [r.connection or "" for r in runs],
        "source_file": [r.source_file or "" for r in runs],
        "counts": [counts_summary(r.counts) for r in runs],
        "outcome": [OUTCOME_LABELS.get(r.outcome, r.outcome)
                    + (f": {r.message}" if r.message else "") for r in runs],
        "detail": [run_detail(r) for r in runs],
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
        self._stale = False
        self.model = ColumnarTableModel(COLUMNS, headers=HEADERS,
                                        search_columns=("kind", "connection", "source_file",
                                                        "os_user", "outcome", "counts"),
                                        formatters={"time": when})
        self.table = DataTable(self.model, noun=("run", "runs"), export_name="history",
                               host=host, detail_column="detail",
                               search_placeholder="Search kind, connection, file, user or "
                               "outcome")
        self.table.view.horizontalHeader().setStretchLastSection(False)
        # The columns are fitted to the width (fit_columns): never a horizontal scroll bar.
        self.table.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.detail_placeholder = ("Select a run to see its file's SHA-256, every count "
                                         "and the whole message.")
        self.table.detail.setText(self.table.detail_placeholder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.receipt_button = QPushButton("Export receipt…")
        self.receipt_button.setToolTip("Write the selected run's receipt to a file")
        self.receipt_button.clicked.connect(self._export_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
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
        host.changes.historyChanged.connect(self._history_changed)
        self.refresh()

    def on_shown(self) -> None:
        if self._stale:
            self.refresh()

    @Slot()
    def _history_changed(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True  # refreshed when next shown

    @Slot()
    def refresh(self) -> None:
        self._stale = False
        self.task = run_task(self, lambda _p, _c: load_runs(), on_success=self._loaded,
                             name="history")

    def _loaded(self, runs: list[history.RunRecord]) -> None:
        self.runs = runs
        self.model.set_columns(run_columns(runs))
        self.fit_columns()
        # Again once the vertical scroll bar has appeared and narrowed the table.
        QTimer.singleShot(0, self.fit_columns)

    def fit_columns(self) -> None:
        """Columns sized to their content up to a cap and, when the window is narrow, shrunk
        alike so Outcome keeps room: no horizontal scrolling at 1024 px and up (a cut cell
        shows its whole text as a tooltip, and the pane below shows everything)."""
        self.table.resize_columns_to_sample(caps={**MAX_WIDTHS, "outcome": OUTCOME_MIN_WIDTH})
        header = self.table.view.horizontalHeader()
        sizes = {name: min(header.sectionSize(COLUMNS.index(name)), widest)
                 for name, widest in MAX_WIDTHS.items()}
        room = self.table.view.viewport().width() - OUTCOME_MIN_WIDTH
        total = sum(sizes.values())
        if room > 0 and total > room:
            sizes = {name: max(MIN_WIDTH, size * room // total) for name, size in sizes.items()}
        for name, size in sizes.items():
            header.resizeSection(COLUMNS.index(name), size)
        # Outcome takes what is left (the hidden Details column is last, so the header's own
        # stretch of its last section cannot do it).
        left = self.table.view.viewport().width() - sum(sizes.values()) - 2
        header.resizeSection(COLUMNS.index("outcome"), max(MIN_WIDTH, left))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self.fit_columns)  # sized while hidden: fit the real width

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.runs:
            self.fit_columns()

    def selected_run_id(self) -> int | None:
        rows = self.table.selected_view_rows()
        if not rows:
            return None
        return int(self.model.row_values(self.model.data_row(rows[0]))[0])

    @Slot()
    def _export_clicked(self) -> None:
        self.export_receipt()

    def export_receipt(self, path: Path | None = None) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            self.host.notify("Select a run first.", "warning")
            return
        if path is None:
            path = SaveDialog.ask(self, self.host.exports, "history-receipt", "Export receipt",
                                  f"run-{run_id}-receipt.xlsx", "Excel (*.xlsx);;CSV (*.csv)")
            if path is None:
                return
        from optout_desk.workflows.submit import export_run_receipt

        target = path

        def written(_rows: object) -> None:
            self.host.exports.exported(target)
            self.host.notify(f"Wrote run {run_id}'s receipt to {target}", "success")

        self.task = run_task(
            self, lambda _p, _c: export_run_receipt(run_id, target), on_success=written,
            on_failure=lambda exc: report_failure(self, exc, "The receipt could not be written"),
            name="export receipt")
