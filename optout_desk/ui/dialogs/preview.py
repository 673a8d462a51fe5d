"""The submission preview: exactly what will be sent to each destination, and the one button
that sends it all.

For each destination: the connection, system and host, counts per identifier kind, the
requests, a sample of the exact request body, the plan's short hash and what was left out and
why. The confirm button names every destination and its count ("Send 1,208 to demo-eu and 1,208
to demo-mk"; one destination: "Submit 1,208 opt-outs to demo-eu (EU)"); the plans shown are the
plans sent — nothing is recomputed after confirmation. `PreviewDialog` shows one plan (Review of
an unfinished one).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from optout_desk.connectors.registry import system_label
from optout_desk.core.plan import Plan, left_out_phrases
from optout_desk.core.wording import kinds_counted
from optout_desk.ui.formatting import counted, number
from optout_desk.workflows.submission import SubmissionPreview, estimate


def confirm_text(plan: Plan) -> str:
    return f"Submit {counted(plan.total, 'opt-out')} to {plan.destination.label}"


def plan_widget(plan: Plan, extra: list[tuple[str, str]] | None = None) -> QWidget:
    """One plan: destination, counts, requests, hash, left out, sample body."""
    page = QWidget()
    dest = plan.destination
    form = QFormLayout()
    form.addRow("Destination:", QLabel(
        f"<b>{dest.label}</b> — {system_label(dest.system)} at {dest.host}"))
    form.addRow("To submit:", QLabel(
        f"{counted(plan.total, 'opt-out')} ({kinds_counted(plan.counts, number)})"))
    form.addRow("Requests:", QLabel(f"{counted(len(plan.batches), 'request')} of up to "
                                    f"{counted(plan.batch_size, 'identifier')} each"))
    for label, text in extra or []:
        form.addRow(label, QLabel(text))
    hash_label = QLabel(plan.short_hash)
    hash_label.setToolTip(f"SHA-256 of the plan: {plan.hash}")
    form.addRow("Plan hash:", hash_label)
    left = ", ".join(left_out_phrases(plan.left_out, number))
    left_label = QLabel(left or "nothing")
    left_label.setWordWrap(True)
    left_label.setObjectName("leftOut")
    form.addRow("Left out:", left_label)
    sample = QPlainTextEdit(json.dumps(plan.payload_sample(), indent=2, ensure_ascii=False)
                            if plan.batches else "(nothing to send)")
    sample.setReadOnly(True)
    sample.setMaximumHeight(160)
    layout = QVBoxLayout(page)
    layout.addLayout(form)
    layout.addWidget(QLabel("Sample of request 1 (the exact body):"))
    layout.addWidget(sample)
    return page


class _Confirming(QDialog):
    def _buttons(self, text: str, enabled: bool) -> QDialogButtonBox:
        self.buttons = QDialogButtonBox()
        self.confirm_button: QPushButton = self.buttons.addButton(
            text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setEnabled(enabled)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        return self.buttons

    def _cancel_has_focus(self) -> None:
        # The Cancel button has focus: Enter must not send by accident.
        cancel: Any = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        cancel.setFocus()


class PreviewDialog(_Confirming):
    """One plan (Review of an unfinished submission's destination)."""

    def __init__(self, plan: Plan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle("Preview the submission")
        layout = QVBoxLayout(self)
        layout.addWidget(plan_widget(plan))
        layout.addWidget(self._buttons(confirm_text(plan), bool(plan.batches)))
        self._cancel_has_focus()


class SubmissionPreviewDialog(_Confirming):
    """Every destination's plan, a tab each, and one confirmation naming them all."""

    def __init__(self, preview: SubmissionPreview, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = preview
        self.setWindowTitle("Preview the submission")
        self.setMinimumWidth(620)
        sending = [d for d in preview.destinations if d.plan.batches]
        intro = QLabel(f"{counted(preview.input_count, 'identifier')} to "
                       f"{counted(len(preview.destinations), 'destination')}. Nothing is "
                       "sent before you confirm; each destination's plan is journaled first.")
        intro.setWordWrap(True)
        self.tabs = QTabWidget()
        for d in preview.destinations:
            extra = [("Pacing:", f"{d.pacing.concurrency} request"
                      f"{'s' if d.pacing.concurrency != 1 else ''} at a time"
                      + (f", at most {d.pacing.per_second:g} a second"
                         if d.pacing.per_second else "")
                      + f" — {estimate(d.estimated_seconds)}")]
            self.tabs.addTab(plan_widget(d.plan, extra),
                             f"{d.connection} ({d.plan.total:,})")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        for note in preview.warnings():
            label = QLabel(note)
            label.setWordWrap(True)
            label.setObjectName("previewWarning")
            label.setStyleSheet("#previewWarning { color: #b45309; }")
            layout.addWidget(label)
        layout.addWidget(self.tabs)
        if len(sending) == 1 and len(preview.destinations) == 1:
            text = confirm_text(sending[0].plan)
        else:
            text = preview.confirmation().rstrip("?")
        layout.addWidget(self._buttons(text, bool(sending)))
        self._cancel_has_focus()
