"""The Submit page: identifiers in (the "To submit" bucket, pasted text, a file), a frozen plan,
its preview, batch-by-batch sending with progress, ETA and Cancel, the outcome, Retry failed
and Export receipt. Unfinished plans found at start are offered for Resume / Review / Discard.

Everything slow (planning, sending, verifying, writing receipts) runs through ui.tasks.run_task.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.errors import DeskError
from optout_desk.core.plan import Plan, PlanInput, inputs_from_lines
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.files.formats import dialog_filter
from optout_desk.ui.dialogs.preview import PreviewDialog
from optout_desk.ui.tasks import run_task
from optout_desk.workflows import submit

MAX_UNCONFIRMED_SHOWN = 20
SAMPLE_SHOWN = 12  # identifiers listed in the text box after a file or bucket is loaded


class SubmitPage(QWidget):
    def __init__(self, window: Any) -> None:
        super().__init__()
        self.window_ = window
        self.inputs: list[PlanInput] = []
        self.origin = ""
        self.plan: Plan | None = None
        self.plan_id: int | None = None
        self.outcome: submit.SubmitOutcome | None = None
        self.preview: PreviewDialog | None = None
        self.task: Any = None
        self._started = 0.0
        self._label_before_reading = ""

        self.connection = QComboBox()
        self.region = QLineEdit("BE")
        self.region.setMaximumWidth(50)
        self.region.setToolTip("Default country for phone numbers written without +CC")
        self.paste = QPlainTextEdit()
        self.paste.setPlaceholderText("Paste identifiers here, one per line (emails and phone "
                                      "numbers), or open a file, or send the Reconcile page's "
                                      "'To submit' bucket here.")
        self.source_label = QLabel("")
        open_button = QPushButton("Open file…")
        open_button.clicked.connect(self.choose_file)
        self.plan_button = QPushButton("Preview…")
        self.plan_button.clicked.connect(self.make_plan)
        self.resume_button = QPushButton("Unfinished submissions…")
        self.resume_button.clicked.connect(self.offer_unfinished)

        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m batches")
        self.progress.setVisible(False)
        self.eta_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the batch in flight; the plan stays resumable")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.outcome_label = QLabel("")
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry failed")
        self.retry_button.setEnabled(False)
        self.retry_button.clicked.connect(self.retry_failed)
        self.receipt_button = QPushButton("Export receipt…")
        self.receipt_button.setEnabled(False)
        self.receipt_button.clicked.connect(self.export_receipt)

        top = QHBoxLayout()
        top.addWidget(QLabel("Destination:"))
        top.addWidget(self.connection, 1)
        top.addWidget(QLabel("Phone region:"))
        top.addWidget(self.region)
        top.addWidget(open_button)
        top.addWidget(self.resume_button)
        self.plan_button.setDefault(True)
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.eta_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.receipt_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.plan_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Submit</h2>"))
        intro = QLabel("Send opt-outs to a platform. You see the exact plan before anything is "
                       "sent; every batch is journaled, so an interrupted run resumes safely.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addWidget(self.source_label)
        layout.addWidget(self.paste, 1)
        layout.addLayout(run_row)
        layout.addWidget(self.outcome_label)
        layout.addLayout(buttons)
        self.refresh_connections()
        if hasattr(window, "connectionsChanged"):
            window.connectionsChanged.connect(self.refresh_connections)

    # --- inputs ----------------------------------------------------------------------------

    def refresh_connections(self) -> None:
        from optout_desk.store import connections
        from optout_desk.store.db import connect

        db = connect()
        try:
            names = [p.name for p in connections.list_all(db)]
        finally:
            db.close()
        current = self.connection.currentText() or self.window_.last_connection()
        self.connection.clear()
        self.connection.addItems(names)
        if current in names:
            self.connection.setCurrentText(current)

    def on_shown(self) -> None:
        self.refresh_connections()

    def load_inputs(self, inputs: list[PlanInput], origin: str) -> None:
        """From MainWindow.send_to_submit (the Reconcile page's "To submit" bucket…) or a
        file. The text box is emptied (pasted text would replace these) and shows a sample."""
        self.inputs = list(inputs)
        self.origin = origin
        self.paste.clear()
        self.source_label.setText(
            f"{len(self.inputs):,} identifiers from {origin}. Press Preview to see the plan; "
            "nothing is sent before you confirm it."
        )
        sample = [entry.identifier.original for entry in self.inputs[:SAMPLE_SHOWN]]
        more = len(self.inputs) - len(sample)
        self.paste.setPlaceholderText(
            "\n".join(sample) + (f"\n… and {more:,} more" if more > 0 else "")
            + "\n\n(Paste text here instead to submit something else.)"
        )

    def choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Identifiers to submit", "",
            dialog_filter("Spreadsheets and text"))
        if name:
            self.open_file(Path(name))

    def open_file(self, path: Path) -> None:
        """A spreadsheet (emails and phones of its detected columns, with row numbers) or a
        text file (one identifier per line), read in the background."""
        region = self._region()

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[list[PlanInput], str]:
            if path.suffix.lower() in submit.SPREADSHEET_SUFFIXES:
                inputs, name, _ = submit.inputs_from_spreadsheet(
                    path, region=region, progress=progress, cancel=cancel)
                return inputs, name
            text = submit.read_list_file(path).decode("utf-8-sig", errors="replace")
            return inputs_from_lines(text.splitlines(), region=region,
                                     source_file=path.name), path.name

        self._label_before_reading = self.source_label.text()
        self.source_label.setText(f"Reading {path.name}…")
        self.task = run_task(self, work, on_success=lambda result: self.load_inputs(*result),
                             on_failure=self._file_failed, name="read identifiers")

    def _file_failed(self, exc: BaseException) -> None:
        self.task = None
        self.source_label.setText(self._label_before_reading)  # what is loaded is unchanged
        if isinstance(exc, DeskError):  # a bad or unreadable file: say so, no dialog
            self.window_.notify(str(exc), "warning")
        else:
            self.window_.show_error(exc, "The file could not be read")

    def _region(self) -> str:
        return (self.region.text().strip() or "US").upper()

    def current_inputs(self) -> list[PlanInput]:
        text = self.paste.toPlainText()
        if text.strip():
            self.origin = "pasted text"
            return inputs_from_lines(text.splitlines(), region=self._region())
        return self.inputs

    # --- plan and preview ------------------------------------------------------------------

    def make_plan(self) -> None:
        connection = self.connection.currentText()
        if not connection:
            self.window_.notify("Add a connection first: it is where the opt-outs go.",
                                "warning")
            return
        inputs = self.current_inputs()
        if not inputs:
            self.window_.notify("Nothing to submit: paste identifiers or open a file.", "warning")
            return
        self.plan_button.setEnabled(False)
        self.task = run_task(
            self, lambda _p, _c: submit.prepare_plan(connection, inputs),
            on_success=self.show_preview, on_failure=self._failed, name="plan")

    def show_preview(self, plan: Plan) -> None:
        self.plan_button.setEnabled(True)
        self.plan = plan
        self.preview = PreviewDialog(plan, self)
        self.preview.accepted.connect(self.confirmed)
        self.preview.open()

    def confirmed(self) -> None:
        plan = self.plan
        assert plan is not None
        self.window_.set_last_connection(plan.destination.connection)
        source = self.origin or None
        self.task = run_task(
            self, lambda _p, _c: submit.save_plan(plan, source_file=source),
            on_success=self.start_sending, on_failure=self._failed, name="journal plan")

    # --- sending ---------------------------------------------------------------------------

    def start_sending(self, plan_id: int) -> None:
        self.plan_id = plan_id
        summary = submit.plan_summary(plan_id)
        self.progress.setRange(0, summary.batch_count)
        self.progress.setValue(summary.acknowledged)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.plan_button.setEnabled(False)
        self.retry_button.setEnabled(False)
        self.outcome_label.setText(f"Sending plan {plan_id} to {summary.destination_label}…")
        self._started = time.monotonic()
        self._first_done: int | None = None

        def work(progress: ProgressCallback, cancel: CancelToken) -> submit.SubmitOutcome:
            return submit.execute_plan(plan_id, progress=progress, cancel=cancel)

        self.task = run_task(self, work, on_success=self.finished, on_failure=self._failed,
                             on_progress=self.advanced, name="submit")

    def advanced(self, report: Progress) -> None:
        if report.total:
            self.progress.setRange(0, report.total)
        self.progress.setValue(report.done)
        if self._first_done is None:
            self._first_done, self._started = report.done, time.monotonic()
            return
        sent = report.done - self._first_done
        if sent > 0 and report.total:
            per_batch = (time.monotonic() - self._started) / sent
            self.eta_label.setText(f"about {per_batch * (report.total - report.done):.0f} s left")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.outcome_label.setText("Stopping after the batch in flight…")

    def finished(self, outcome: submit.SubmitOutcome) -> None:
        self.outcome = outcome
        self.task = None
        self.cancel_button.setEnabled(False)
        self.plan_button.setEnabled(True)
        self.eta_label.setText("")
        lines = outcome.summary_lines()
        if outcome.unconfirmed:
            shown = outcome.unconfirmed[:MAX_UNCONFIRMED_SHOWN]
            more = len(outcome.unconfirmed) - len(shown)
            lines.append("Not yet visible: " + ", ".join(shown)
                         + (f" and {more:,} more (see the receipt)" if more else ""))
        self.outcome_label.setText("\n".join(lines))
        self.retry_button.setEnabled(outcome.failed > 0)
        self.receipt_button.setEnabled(True)
        level = "error" if outcome.error else ("warning" if outcome.resumable else "info")
        self.window_.notify(lines[0], level)

    def _failed(self, exc: BaseException) -> None:
        self.task = None
        self.cancel_button.setEnabled(False)
        self.plan_button.setEnabled(True)
        self.window_.show_error(exc, "The submission could not go on")

    # --- after a run -----------------------------------------------------------------------

    def retry_failed(self) -> None:
        if self.outcome is None:
            return
        old = self.outcome.plan_id
        try:
            plan = submit.retry_failed_plan(old)
        except Exception as exc:
            self.window_.show_error(exc)
            return
        submit.discard_plan(old)
        self.origin = f"failed batches of plan {old}"
        self.show_preview(plan)

    def export_receipt(self, path: Path | None = None) -> None:
        if self.outcome is None:
            return
        if path is None:
            name, _ = QFileDialog.getSaveFileName(
                self, "Export receipt", f"submit-receipt-plan{self.outcome.plan_id}.xlsx",
                "Excel (*.xlsx);;CSV (*.csv)")
            if not name:
                return
            path = Path(name)
        plan_id = self.outcome.plan_id
        target = path
        self.task = run_task(
            self, lambda _p, _c: submit.write_receipt(plan_id, target),
            on_success=lambda rows: self.window_.notify(
                f"Wrote the receipt ({rows:,} rows) to {target}", "info"),
            on_failure=self._failed, name="receipt")

    # --- unfinished plans ------------------------------------------------------------------

    def offer_unfinished(self) -> bool:
        """Ask about unfinished plans (also called at start). Returns whether any exist."""
        from optout_desk.ui.dialogs.resume import DISCARD, RESUME, REVIEW, ResumeDialog

        plans = submit.find_unfinished()
        if not plans:
            self.window_.notify("No unfinished submissions.", "info")
            return False
        dialog = ResumeDialog(plans, self)
        self.resume_dialog = dialog

        def chosen() -> None:
            if dialog.plan_id is None:
                return
            if dialog.choice == RESUME:
                self.start_sending(dialog.plan_id)
            elif dialog.choice == REVIEW:
                plan = submit.load_plan(dialog.plan_id)
                self.plan = plan
                review = PreviewDialog(plan, self)
                review.confirm_button.setText(f"Resume: {review.confirm_button.text()}")
                plan_id = dialog.plan_id
                review.accepted.connect(lambda: self.start_sending(plan_id))
                self.preview = review
                review.open()
            elif dialog.choice == DISCARD:
                submit.discard_plan(dialog.plan_id)
                self.window_.notify(f"Plan {dialog.plan_id} discarded; its unsent batches "
                                    "will not be sent.", "info")

        dialog.accepted.connect(chosen)
        dialog.open()
        return True

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()
