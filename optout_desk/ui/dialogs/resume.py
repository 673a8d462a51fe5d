"""Unfinished submissions found at start: Resume, Review or Discard each one."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.wording import counted_of
from optout_desk.store.journal import PlanSummary

RESUME, REVIEW, DISCARD = "resume", "review", "discard"


def describe(plan: PlanSummary) -> str:
    return (f"Plan {plan.id} ({plan.short_hash}) to {plan.destination_label}, "
            f"{plan.created_at[:16].replace('T', ' ')} UTC: "
            f"{counted_of(plan.acknowledged, plan.batch_count, 'batch', 'batches')} "
            f"acknowledged, {plan.remaining:,} to send"
            + (f" — {plan.message}" if plan.message else ""))


class ResumeDialog(QDialog):
    """Lists the plans; `choice` and `plan_id` say what the user picked."""

    def __init__(self, plans: list[PlanSummary], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Unfinished submissions")
        self.choice = ""
        self.plan_id: int | None = None
        self.plans = plans
        self.list = QListWidget()
        for plan in plans:
            item = QListWidgetItem(describe(plan))
            item.setData(256, plan.id)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.resume_button = QPushButton("Resume")
        self.review_button = QPushButton("Review")
        self.discard_button = QPushButton("Discard…")
        later = QPushButton("Later")
        self.resume_button.clicked.connect(lambda: self._pick(RESUME))
        self.review_button.clicked.connect(lambda: self._pick(REVIEW))
        self.discard_button.clicked.connect(lambda: self._pick(DISCARD))
        later.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.resume_button, self.review_button, self.discard_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(later)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(
            "These submissions did not finish (the desk was closed, crashed, or a batch failed). "
            "Resume sends only the batches without an acknowledgement."))
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    def _pick(self, choice: str) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        self.choice = choice
        self.plan_id = int(item.data(256))
        self.accept()
