"""The submission preview: exactly what will be sent, and the one button that sends it.

Shows the destination (connection, system, host), counts per identifier type, the batches, a
sample of the payload, the plan's short hash and what was left out and why. The confirm button
names the count and destination ("Submit 1,234 opt-outs to acme-prod (EU)"); the plan shown is
the plan sent — nothing is recomputed after confirmation.
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
    QVBoxLayout,
    QWidget,
)

from optout_desk.connectors.registry import system_label
from optout_desk.core.plan import REASON_LABELS, LeftOutReason, Plan


def confirm_text(plan: Plan) -> str:
    return f"Submit {plan.total:,} opt-outs to {plan.destination.label}"


class PreviewDialog(QDialog):
    def __init__(self, plan: Plan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle("Preview the submission")
        dest = plan.destination
        form = QFormLayout()
        form.addRow("Destination:", QLabel(
            f"<b>{dest.label}</b> — {system_label(dest.system)} at {dest.host}"))
        kinds = ", ".join(f"{n:,} {kind}{'s' if n != 1 else ''}"
                          for kind, n in sorted(plan.counts.items())) or "nothing"
        form.addRow("To submit:", QLabel(f"{plan.total:,} opt-outs ({kinds})"))
        form.addRow("Batches:", QLabel(f"{len(plan.batches):,} of up to {plan.batch_size:,}"))
        hash_label = QLabel(plan.short_hash)
        hash_label.setToolTip(f"SHA-256 of the plan: {plan.hash}")
        form.addRow("Plan hash:", hash_label)
        left = ", ".join(f"{count:,} {REASON_LABELS[LeftOutReason(reason)]}"
                         for reason, count in sorted(plan.left_out_counts.items()))
        self.left_out_label = QLabel(left or "nothing")
        self.left_out_label.setWordWrap(True)
        form.addRow("Left out:", self.left_out_label)
        sample = QPlainTextEdit(json.dumps(plan.payload_sample(), indent=2, ensure_ascii=False))
        sample.setReadOnly(True)
        sample.setMaximumHeight(160)

        self.buttons = QDialogButtonBox()
        self.confirm_button: QPushButton = self.buttons.addButton(
            confirm_text(plan), QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setEnabled(bool(plan.batches))
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Sample of batch 1 (the exact request body):"))
        layout.addWidget(sample)
        layout.addWidget(self.buttons)
        # The Cancel button has focus: Enter must not send by accident.
        cancel: Any = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        cancel.setFocus()
