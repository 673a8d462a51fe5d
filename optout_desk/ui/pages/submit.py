"""The Submit page: identifiers in (the "To submit" bucket, pasted text, a file), a destination
matrix, one preview and one confirmation for every ticked destination, the destinations sent
side by side with a progress bar, time left and Cancel each, then the identifier × destination
outcomes, Retry failed per destination and one receipt. Unfinished plans found at start are
offered per destination for Resume / Review / Discard.

Everything slow (planning, sending, verifying, writing receipts, reading the database) runs
through ui.tasks.run_task. A running submission reports progress from several threads at once:
each destination's latest report is kept under a lock and shown by a timer on the GUI thread,
so a fast destination cannot flood the event loop nor hide a slow one's reports.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.errors import DeskError
from optout_desk.core.plan import Plan, PlanInput, inputs_from_lines
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.core.wording import identifiers_by_kind, rows_and_identifiers
from optout_desk.ui import formatting
from optout_desk.ui.dialogs.preview import PreviewDialog, SubmissionPreviewDialog
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.save_paths import SaveDialog
from optout_desk.ui.tasks import run_task
from optout_desk.ui.widgets.data_table import DataTable
from optout_desk.ui.widgets.destinations import DestinationMatrix, SendingPanel, describe_outcome
from optout_desk.ui.widgets.region_picker import RegionPicker
from optout_desk.workflows import submission, submit
from optout_desk.workflows.submission_process import execute_submission_isolated

SAMPLE_SHOWN = 12  # identifiers listed in the text box after a file or bucket is loaded
POLL_MS = 100  # how often a running submission's progress is shown
REPLAN_DELAY_MS = 400  # after the last keystroke in the paste box


def describe_inputs(inputs: list[PlanInput]) -> str:
    """"1,208 rows · 1,719 identifiers (1,208 emails, 511 phones)" (no rows for pasted text)."""
    rows = {(i.source_file, i.row_number) for i in inputs if i.row_number is not None}
    kinds = Counter(str(entry.identifier.kind) for entry in inputs)
    if rows:
        return rows_and_identifiers(len(rows), kinds, number=formatting.number)
    return identifiers_by_kind(kinds, number=formatting.number)


class SubmitPage(QWidget):
    def __init__(self, window: Any) -> None:
        super().__init__()
        self.window_ = window
        self.inputs: list[PlanInput] = []
        self.origin = ""
        self.compared_with: str | None = None
        self.source_sha256: str | None = None
        self.matrix_preview: submission.SubmissionPreview | None = None
        self.preview: SubmissionPreviewDialog | PreviewDialog | None = None
        self.outcome: submission.SubmissionOutcome | None = None
        self.task: Any = None
        self.plan_task: Any = None
        self._labels: dict[str, str] = {}
        self._offered: list[str] = []
        self._reports: dict[str, Progress] = {}
        self._reports_lock = threading.Lock()
        self._cancel_each: dict[str, CancelToken] = {}
        self._label_before_reading = ""
        self._preview_when_planned = False

        # Plans again shortly after the last keystroke (or region change) of pasted text.
        self._replan_timer = QTimer(self)
        self._replan_timer.setSingleShot(True)
        self._replan_timer.setInterval(REPLAN_DELAY_MS)
        self._replan_timer.timeout.connect(self.replan)

        # -- identifiers
        from optout_desk.files.mapping import default_region

        self.region = RegionPicker(default=default_region())
        self.region.regionChanged.connect(lambda _region: self._replan_timer.start())
        self.paste = QPlainTextEdit()
        self.paste.setPlaceholderText("Paste identifiers here, one per line (emails and phone "
                                      "numbers), or open a file, or send the Reconcile page's "
                                      "'To submit' bucket here.")
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)
        open_button = QPushButton("Open file…")
        open_button.setToolTip("A spreadsheet or a text file of identifiers (Ctrl+O)")
        open_button.clicked.connect(self.choose_file)
        QShortcut(QKeySequence.StandardKey.Open, self, self.choose_file)

        # -- destinations
        self.matrix = DestinationMatrix()
        self.matrix.ticksChanged.connect(self._ticks_changed)
        self.routing_label = QLabel("")
        self.routing_label.setWordWrap(True)
        self.note_label = QLabel("")
        self.note_label.setWordWrap(True)
        self.note_label.setObjectName("compareNote")
        self.note_label.setStyleSheet("#compareNote { color: #b45309; }")
        self.paste.textChanged.connect(self._paste_changed)

        self.check_button = QPushButton("Check these identifiers")
        self.check_button.setToolTip("Ask the ticked destinations that answer look-ups which of "
                                     "these they already hold as opted out")
        self.check_button.clicked.connect(self.check_identifiers)
        self.plan_button = QPushButton("Preview…")
        self.plan_button.setToolTip("See exactly what each ticked destination will receive; "
                                    "nothing is sent before you confirm")
        self.plan_button.clicked.connect(self.make_plan)
        self.plan_button.setDefault(True)
        self.resume_button = QPushButton("Unfinished submissions…")
        self.resume_button.clicked.connect(self.offer_unfinished)

        # -- sending and outcome
        self.sending = SendingPanel()
        self.sending.cancelOne.connect(self.cancel_destination)
        self.sending.retryOne.connect(self.retry_failed)
        self.sending.hide()
        self.cancel_button = QPushButton("Cancel all")
        self.cancel_button.setToolTip("Stop every destination after the requests in flight; "
                                      "the plans stay resumable")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.outcome_label = QLabel("")
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outcomes_model = ColumnarTableModel(("Identifier", "Kind"),
                                                 search_columns=("Identifier",))
        self.outcomes = DataTable(self.outcomes_model, noun=("identifier", "identifiers"),
                                  search_placeholder="Search identifiers or statuses",
                                  export_name="submission-outcomes")
        self.outcomes.hide()
        self.receipt_button = QPushButton("Export receipt…")
        self.receipt_button.setToolTip("One workbook: a Summary sheet, the outcomes and a sheet "
                                       "per destination")
        self.receipt_button.setEnabled(False)
        self.receipt_button.clicked.connect(lambda _checked=False: self.export_receipt())
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._show_progress)

        top = QHBoxLayout()
        top.addWidget(self.source_label, 1)
        top.addWidget(QLabel("Phone region:"))
        top.addWidget(self.region)
        top.addWidget(open_button)
        inputs_box = QWidget()
        inputs_layout = QVBoxLayout(inputs_box)
        inputs_layout.setContentsMargins(0, 0, 0, 0)
        inputs_layout.addLayout(top)
        inputs_layout.addWidget(self.paste, 1)
        destinations_box = QWidget()
        dest_layout = QVBoxLayout(destinations_box)
        dest_layout.setContentsMargins(0, 0, 0, 0)
        dest_layout.addWidget(QLabel("<b>Destinations</b> — tick where these opt-outs go"))
        dest_layout.addWidget(self.matrix)
        dest_layout.addWidget(self.routing_label)
        dest_layout.addWidget(self.note_label)
        dest_layout.addStretch(1)
        split = self.split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(inputs_box)
        split.addWidget(destinations_box)
        split.addWidget(self.outcomes)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 3)
        buttons = QHBoxLayout()
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.receipt_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.check_button)
        buttons.addWidget(self.plan_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Submit</h2>"))
        intro = QLabel("Send opt-outs to every platform that must stop contacting these people. "
                       "You see each destination's exact plan before anything is sent; every "
                       "request is journaled, so an interrupted run resumes safely.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        # After a run the inputs, the destinations, the outcomes and a panel per destination
        # need more height than 1024x700 leaves: rather than squeeze them below their minimum
        # (Qt then clips them), the body scrolls and the buttons stay in view.
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(split, 1)
        body_layout.addWidget(self.sending)
        body_layout.addWidget(self.outcome_label)
        self.body = QScrollArea()
        self.body.setWidgetResizable(True)
        self.body.setFrameShape(QScrollArea.Shape.NoFrame)
        self.body.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body.setWidget(body)
        self._follow_end = False
        scroll = self.body.verticalScrollBar()
        scroll.rangeChanged.connect(self._body_range_changed)
        scroll.actionTriggered.connect(self._body_scrolled_by_hand)
        layout.addWidget(self.body, 1)
        layout.addLayout(buttons)
        self._update_buttons()
        self.refresh_connections()
        window.changes.connectionsChanged.connect(self.refresh_connections)

    # --- destinations ----------------------------------------------------------------------

    @Slot()
    def refresh_connections(self) -> None:
        def work(_p: ProgressCallback, _c: CancelToken) -> list[tuple[str, str, bool]]:
            from optout_desk.connectors.base import Capability
            from optout_desk.connectors.registry import system_info
            from optout_desk.workflows.connections import connections_that

            return [(p.name, (info := system_info(p.system)).label,
                     info.can(Capability.LOOKUP)) for p in connections_that(Capability.SUBMIT)]

        run_task(self, work, on_success=self._connections_listed, name="list destinations")

    def _connections_listed(self, listed: list[tuple[str, str, bool]]) -> None:
        names = [name for name, _, _ in listed]
        self.check_button.setVisible(any(lookup for _, _, lookup in listed))
        previous = set(self.matrix.ticked())
        self._labels = {name: label for name, label, _ in listed}
        self._offered = names
        if not previous:
            default = self.compared_with or self.window_.last_connection()
            previous = {default} if default in names else set(names[:1])
        self.matrix.set_connections(names, self._labels, previous & set(names))
        self.replan()

    def on_shown(self) -> None:
        self.refresh_connections()

    @Slot()
    def _ticks_changed(self) -> None:
        self._show_notes()
        self._update_buttons()

    def _show_notes(self) -> None:
        ticked = self.matrix.ticked()
        preview = self.matrix_preview
        routes: dict[str, list[str]] = {}
        if preview is not None:
            for d in preview.destinations:
                if d.connection in ticked:
                    for kind, where in d.routes.items():
                        routes.setdefault(kind, []).append(f"{d.connection} ({where})")
        self.routing_label.setText(" · ".join(
            f"{submission.kind_label(kind).capitalize()} → {', '.join(where)}"
            for kind, where in sorted(routes.items())))
        note = ""
        if self.compared_with:
            others = [name for name in ticked if name != self.compared_with]
            if others:
                note = (f"The identifiers were reconciled against {self.compared_with}; "
                        f"{', '.join(others)} {'was' if len(others) == 1 else 'were'} not "
                        "compared with: what each is known to hold is left out, nothing more.")
            elif self.compared_with not in ticked:
                note = f"The identifiers were reconciled against {self.compared_with}."
        self.note_label.setText(note)
        self.note_label.setVisible(bool(note))

    # --- inputs ----------------------------------------------------------------------------

    def load_inputs(self, inputs: list[PlanInput], origin: str, against: str | None = None,
                    source_sha256: str | None = None) -> None:
        """From MainWindow.send_to_submit (the Reconcile page's "To submit" bucket…) or a
        file. The text box is emptied (pasted text would replace these) and shows a sample.
        `against` is the connection the identifiers were reconciled against: it is ticked,
        and the page says so when another destination is ticked too."""
        self.inputs = list(inputs)
        self.origin = origin
        self.source_sha256 = source_sha256
        self.compared_with = against
        self.paste.blockSignals(True)
        self.paste.clear()
        self.paste.blockSignals(False)
        self.source_label.setText(
            f"{describe_inputs(self.inputs)} from {origin}. Tick the destinations and press "
            "Preview; nothing is sent before you confirm it.")
        sample = [entry.identifier.original for entry in self.inputs[:SAMPLE_SHOWN]]
        more = len(self.inputs) - len(sample)
        self.paste.setPlaceholderText(
            "\n".join(sample) + (f"\n… and {more:,} more" if more > 0 else "")
            + "\n\n(Paste text here instead to submit something else.)"
        )
        if against and against in self._offered:
            self.matrix.set_ticked(against, True)
        self.replan()

    @Slot()
    def choose_file(self) -> None:
        from optout_desk.workflows.importing import open_filter

        name, _ = QFileDialog.getOpenFileName(self, "Identifiers to submit", "", open_filter())
        if name:
            self.open_file(Path(name))

    def open_file(self, path: Path) -> None:
        """A spreadsheet (emails and phones of its detected columns, with row numbers) or a
        text file (one identifier per line), read in the background."""
        region = self._region()

        def work(progress: ProgressCallback, cancel: CancelToken
                 ) -> tuple[list[PlanInput], str, None, str]:
            if path.suffix.lower() in submit.SPREADSHEET_SUFFIXES:
                inputs, name, sha = submit.inputs_from_spreadsheet(
                    path, region=region, progress=progress, cancel=cancel)
                return inputs, name, None, sha
            data = submit.read_list_file(path)
            text = data.decode("utf-8-sig", errors="replace")
            return (inputs_from_lines(text.splitlines(), region=region, source_file=path.name),
                    path.name, None, hashlib.sha256(data).hexdigest())

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
        return self.region.region()

    @Slot()
    def _paste_changed(self) -> None:
        if self.paste.toPlainText().strip():
            self._replan_timer.start()

    def current_inputs(self) -> list[PlanInput]:
        text = self.paste.toPlainText()
        if text.strip():
            self.origin = "pasted text"
            self.compared_with = None
            self.source_sha256 = None
            return inputs_from_lines(text.splitlines(), region=self._region())
        return self.inputs

    # --- planning --------------------------------------------------------------------------

    @Slot()
    def replan(self) -> None:
        """Plan every offered destination in the background, for the matrix."""
        inputs, names = self.current_inputs(), list(self._offered)
        if self.plan_task is not None:
            self.plan_task.cancel()
            self.plan_task = None
        if not inputs or not names:
            self.matrix_preview = None
            self.matrix.set_connections(names, self._labels, set(self.matrix.ticked()))
            self._show_notes()
            self._update_buttons()
            return
        compared = self.compared_with

        # The journal and the history name where the identifiers came from: the file (with its
        # SHA-256), or the origin ("reconcile of crm.xlsx", "Inbox forward #3"), which the
        # Inbox page finds its forwarded entries by.
        origin, sha = self.origin, self.source_sha256

        def work(_p: ProgressCallback, _c: CancelToken) -> submission.SubmissionPreview:
            return submission.prepare_submission(names, inputs, origin=origin,
                                                 source_file=origin or None,
                                                 source_sha256=sha, compared_with=compared)

        self.plan_task = run_task(self, work, on_success=self._planned,
                                  on_failure=self._failed, name="plan destinations")
        self._update_buttons()

    def _planned(self, preview: submission.SubmissionPreview) -> None:
        self.plan_task = None
        self.matrix_preview = preview
        self.matrix.show_preview(preview)
        self._show_notes()
        self._update_buttons()
        if self._preview_when_planned:
            self._preview_when_planned = False
            self.make_plan()

    def chosen_preview(self) -> submission.SubmissionPreview | None:
        """The matrix's preview narrowed to the ticked destinations."""
        preview = self.matrix_preview
        if preview is None:
            return None
        ticked = set(self.matrix.ticked())
        return submission.SubmissionPreview(
            [d for d in preview.destinations if d.connection in ticked], preview.input_count,
            preview.source_file, preview.source_sha256, preview.origin, preview.compared_with)

    @Slot()
    def check_identifiers(self) -> None:
        """Look the identifiers up on the ticked destinations that answer look-ups, then plan
        again (what they hold is then left out)."""
        from optout_desk.connectors.base import Capability
        from optout_desk.connectors.registry import system_info

        preview = self.chosen_preview()
        if preview is None:
            return
        asking = [d for d in preview.destinations
                  if system_info(d.plan.destination.system).can(Capability.LOOKUP)]
        if not asking:
            self.window_.notify("None of the ticked destinations answers look-ups.", "info")
            return
        wanted = [(i.identifier.kind, i.identifier.key) for i in self.current_inputs()
                  if i.identifier.key is not None]

        def work(progress: ProgressCallback, cancel: CancelToken) -> list[str]:
            from optout_desk.workflows.destinations import look_up

            lines = []
            for d in asking:
                kinds = system_info(d.plan.destination.system).routes.kinds
                outcome = look_up(d.connection, [w for w in wanted if w[0] in kinds],
                                  progress=progress, cancel=cancel)
                held = sum(a.opted_out for a in outcome.answers.values())
                lines.append(f"{d.connection}: {held:,} of {len(outcome.answers):,} already "
                             "opted out")
            return lines

        self.task = run_task(self, work, on_success=self._checked, on_failure=self._failed,
                             name="look up")
        self._update_buttons()

    def _checked(self, lines: list[str]) -> None:
        self.task = None
        self.window_.notify("Checked: " + "; ".join(lines) + ".", "info")
        self.replan()

    @Slot()
    def make_plan(self) -> None:
        if not self._offered:
            self.window_.notify("Add a connection first: it is where the opt-outs go.",
                                "warning")
            return
        if not self.current_inputs():
            self.window_.notify("Nothing to submit: paste identifiers or open a file.", "warning")
            return
        if not self.matrix.ticked():
            self.window_.notify("Tick at least one destination.", "warning")
            return
        if self.matrix_preview is None or self._replan_timer.isActive() or self.plan_task:
            # The matrix is not current yet: plan, then come back here.
            self._replan_timer.stop()
            self._preview_when_planned = True
            self.replan()
            return
        preview = self.chosen_preview()
        assert preview is not None

        def work(_p: ProgressCallback, _c: CancelToken) -> list[tuple[Any, int]]:
            found = []
            for d in preview.destinations:
                found += submit.overlapping_unfinished(d.plan)
            return found

        self.task = run_task(self, work, on_success=lambda overlaps: self._show_preview(
            preview, overlaps), on_failure=self._failed, name="check unfinished plans")

    def _show_preview(self, preview: submission.SubmissionPreview,
                      overlaps: list[tuple[Any, int]]) -> None:
        self.task = None
        if overlaps:
            old, count = overlaps[0]
            choice = self.ask_overlap(self, old, count)
            if choice == "resume":
                self.start_sending({old.connection: old.id}, old.submission_id)
            elif choice == "discard":
                submit.discard_plan(old.id)
                self.window_.notify(f"Plan {old.id} discarded; planning again.", "info")
                self.replan()
            return
        self.preview = SubmissionPreviewDialog(preview, self)
        self.preview.accepted.connect(lambda: self.confirmed(preview))
        self.preview.open()

    @classmethod
    def ask_overlap(cls, parent: QWidget, old: Any, count: int) -> str:
        """"resume", "discard" or "" (cancel): a new plan would race an unfinished one."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("An unfinished submission holds some of these")
        box.setText(f"{count:,} of these identifiers are also in unfinished plan {old.id} to "
                    f"{old.destination_label} ({old.acknowledged:,} of {old.batch_count:,} "
                    "requests acknowledged). Sending both would send them twice.")
        box.setInformativeText("Resume that plan first, or discard it and plan again.")
        resume = box.addButton("Resume it", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard it", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        clicked = box.clickedButton()
        return "resume" if clicked is resume else ("discard" if clicked is discard else "")

    def confirmed(self, preview: submission.SubmissionPreview) -> None:
        sending = [d for d in preview.destinations if d.plan.batches]
        if sending:
            self.window_.set_last_connection(sending[0].connection)
        self.task = run_task(
            self, lambda _p, _c: submission.save_submission(preview),
            on_success=self._journaled, on_failure=self._failed, name="journal plans")

    def _journaled(self, saved: submission.SavedSubmission) -> None:
        self.window_.changes.plansChanged.emit()
        self.start_sending(saved.plan_ids, saved.id)

    # --- sending ---------------------------------------------------------------------------

    def start_sending(self, plan_ids: dict[str, int], submission_id: int | None) -> None:
        self.outcome = None
        self._cancel_each = {name: CancelToken() for name in plan_ids}
        with self._reports_lock:
            self._reports = {}
        self.sending.start({name: f"(plan {plan_id})" for name, plan_id in plan_ids.items()})
        self.outcome_label.setText(
            f"Sending to {', '.join(plan_ids)}…" if plan_ids else "")
        self.outcomes.hide()
        self._scroll_to_progress()

        def record(name: str, report: Progress) -> None:  # any worker thread
            with self._reports_lock:
                self._reports[name] = report

        def work(_p: ProgressCallback, cancel: CancelToken) -> submission.SubmissionOutcome:
            # In a child process: its threads would otherwise take the GIL from the window
            # for a fifth of a second at a time (submission_process.py).
            return execute_submission_isolated(
                plan_ids, submission_id=submission_id, progress=record, cancel=cancel,
                cancel_each=self._cancel_each)

        self.task = run_task(self, work, on_success=self.finished, on_failure=self._failed,
                             name="submit")
        self._poll.start()
        self._update_buttons()

    @Slot()
    def _show_progress(self) -> None:
        with self._reports_lock:
            reports, self._reports = self._reports, {}
        for name, report in reports.items():
            self.sending.advance(name, report)

    @Slot(str)
    def cancel_destination(self, name: str) -> None:
        token = self._cancel_each.get(name)
        if token is not None:
            token.cancel()
            self.sending.cancelling(name)

    @Slot()
    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            for name in self._cancel_each:
                self.sending.cancelling(name)
            self.cancel_button.setEnabled(False)

    def finished(self, outcome: submission.SubmissionOutcome) -> None:
        self._poll.stop()
        self._show_progress()
        self.outcome = outcome
        self.task = None
        lines = []
        for run in outcome.runs:
            status, text = describe_outcome(run)
            self.sending.finish(run.connection, status, text,
                                run.outcome.failed if run.outcome else 0)
            lines.append(f"{run.connection}: {status}")
        done = sum(run.finished for run in outcome.runs)
        headline = (f"{done} of {len(outcome.runs)} destination"
                    f"{'s' if len(outcome.runs) != 1 else ''} finished: " + "; ".join(lines)
                    + ".")
        if outcome.receipt_path:
            headline += f" Receipt: {outcome.receipt_path}"
        self.outcome_label.setText(headline)
        self._scroll_to_progress()
        level = "info" if outcome.all_finished else "warning"
        self.window_.notify(headline, level)
        self._load_matrix(outcome)
        self._update_buttons()
        changes = self.window_.changes
        changes.plansChanged.emit()
        changes.historyChanged.emit()
        for run in outcome.runs:  # a verify re-fetched these lists
            if run.outcome is not None and run.outcome.verified:
                changes.cacheChanged.emit(run.connection)

    def _scroll_to_progress(self) -> None:
        """Where the body scrolls (a short window), keep each destination's progress and the
        outcome in view: the body's end, also as the layout grows (the outcomes table comes
        later), until the operator scrolls it."""
        self._follow_end = True
        bar = self.body.verticalScrollBar()
        bar.setValue(bar.maximum())

    @Slot(int, int)
    def _body_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow_end:
            self.body.verticalScrollBar().setValue(maximum)

    @Slot(int)
    def _body_scrolled_by_hand(self, _action: int) -> None:
        self._follow_end = False

    def _load_matrix(self, outcome: submission.SubmissionOutcome) -> None:
        if outcome.submission_id is None:
            return
        submission_id = outcome.submission_id

        def work(_p: ProgressCallback, _c: CancelToken
                 ) -> tuple[tuple[str, ...], dict[str, list[str]]]:
            # Rows into columns here, in the task: 100,000 identifiers × 5 columns is
            # half a second of Python the window would otherwise freeze for.
            names, rows = submission.status_matrix(submission_id)
            columns = ("Identifier", "Kind", *names)
            return columns, {name: [row[i] for row in rows] for i, name in enumerate(columns)}

        run_task(self, work, on_success=self._matrix_loaded, name="outcomes")

    def _matrix_loaded(self, result: tuple[tuple[str, ...], dict[str, list[str]]]) -> None:
        columns, by_column = result
        model = ColumnarTableModel(columns, search_columns=columns)
        model.set_columns(by_column)
        table = DataTable(model, noun=("identifier", "identifiers"),
                          search_placeholder="Search identifiers or statuses",
                          export_name="submission-outcomes")
        table.resize_columns_to_sample()
        old = self.outcomes
        self.split.replaceWidget(self.split.indexOf(old), table)
        old.deleteLater()
        table.show()
        self.outcomes, self.outcomes_model = table, model
        self._scroll_to_progress()

    def _failed(self, exc: BaseException) -> None:
        self._poll.stop()
        self.task = None
        self.plan_task = None
        self._update_buttons()
        if isinstance(exc, DeskError):
            self.window_.notify(exc.message, "warning")
        else:
            self.window_.show_error(exc, "The submission could not go on")

    def _update_buttons(self) -> None:
        sending = self.task is not None
        self.plan_button.setEnabled(not sending)
        self.check_button.setEnabled(not sending and bool(self.matrix.ticked()))
        self.cancel_button.setEnabled(sending and bool(self._cancel_each))
        self.receipt_button.setEnabled(not sending and self.outcome is not None)

    # --- after a run -----------------------------------------------------------------------

    @Slot(str)
    def retry_failed(self, name: str) -> None:
        if self.outcome is None:
            return
        run = next((r for r in self.outcome.runs if r.connection == name), None)
        if run is None:
            return

        def work(_p: ProgressCallback, _c: CancelToken) -> tuple[Plan, int | None]:
            return submission.retry_failed(run.plan_id)

        def show(result: tuple[Plan, int | None]) -> None:
            self.task = None
            plan, submission_id = result
            dialog = PreviewDialog(plan, self)
            self.preview = dialog

            def accepted() -> None:
                self.task = run_task(
                    self, lambda _p, _c: submission.save_retry(plan, run.plan_id,
                                                               submission_id),
                    on_success=lambda new_id: self.start_sending({name: new_id},
                                                                 submission_id),
                    on_failure=self._failed, name="journal retry")

            dialog.accepted.connect(accepted)
            dialog.open()

        self.task = run_task(self, work, on_success=show, on_failure=self._failed,
                             name="plan retry")

    def export_receipt(self, path: Path | None = None) -> None:
        outcome = self.outcome
        if outcome is None:
            return
        if path is None:
            suggested = (f"submission-{outcome.submission_id}-receipt.xlsx"
                         if outcome.submission_id else "submit-receipt.xlsx")
            path = SaveDialog.ask(self, self.window_.exports, "submit-receipt",
                                  "Export receipt", suggested, "Excel (*.xlsx);;CSV (*.csv)")
            if path is None:
                return
        target = path

        def work(_p: ProgressCallback, _c: CancelToken) -> Path:
            if outcome.submission_id is not None:
                return submission.write_submission_receipt(outcome.submission_id, target)
            for run in outcome.runs:  # an older plan resumed on its own
                submit.write_receipt(run.plan_id, target)
            return target

        self.task = run_task(
            self, work, on_success=lambda written: self._receipt_written(written),
            on_failure=self._failed, name="receipt")

    def _receipt_written(self, path: Path) -> None:
        self.task = None
        self.window_.exports.exported(path)
        self.window_.notify(f"Wrote the receipt to {path}", "info")
        self._update_buttons()

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
        by_id = {plan.id: plan for plan in plans}

        def chosen() -> None:
            if dialog.plan_id is None:
                return
            summary = by_id[dialog.plan_id]
            if dialog.choice == RESUME:
                self.start_sending({summary.connection: summary.id}, summary.submission_id)
            elif dialog.choice == REVIEW:
                try:
                    plan = submit.load_plan(summary.id)
                except DeskError as exc:
                    self.window_.notify(exc.message, "warning")
                    return
                review = PreviewDialog(plan, self)
                review.confirm_button.setText(f"Resume: {review.confirm_button.text()}")
                review.accepted.connect(lambda: self.start_sending(
                    {summary.connection: summary.id}, summary.submission_id))
                self.preview = review
                review.open()
            elif dialog.choice == DISCARD:
                try:
                    submit.discard_plan(summary.id)
                except DeskError as exc:
                    self.window_.notify(exc.message, "warning")
                    return
                self.window_.changes.plansChanged.emit()
                self.window_.notify(f"Plan {summary.id} discarded; its unsent batches "
                                    "will not be sent.", "info")

        dialog.accepted.connect(chosen)
        dialog.open()
        return True

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._poll.stop()
