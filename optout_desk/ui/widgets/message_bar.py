"""A non-modal message strip at the top of the window (error tier 1: expected problems).

`MessageBar.show_message(text, level)`; info and success messages fade after a few seconds,
warnings and errors stay until dismissed or replaced, so an operator never misses one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

LEVELS = ("info", "success", "warning", "error")
_ICONS = {
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "success": QStyle.StandardPixmap.SP_DialogApplyButton,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
}
# Tints blended over the palette, so the bar reads in light and dark schemes alike.
_TINTS = {
    "info": "rgba(64, 128, 255, 40)",
    "success": "rgba(40, 170, 80, 45)",
    "warning": "rgba(240, 170, 0, 60)",
    "error": "rgba(220, 50, 50, 55)",
}
AUTO_HIDE_MS = 6000
READING_MS_PER_CHAR = 70  # about 15 characters a second


class MessageBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.level = "info"
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setAutoRaise(True)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        if level not in LEVELS:
            level = "info"
        self.level = level
        self.text.setText(text)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(_ICONS[level]).pixmap(size, size))
        self.setStyleSheet(
            f"#messageBar {{ background: {_TINTS[level]}; border-radius: 4px; }}"
        )
        self.show()
        if level in ("info", "success"):
            # Long enough to read: a longer message (the demo's first steps) stays longer.
            self._timer.start(max(AUTO_HIDE_MS, READING_MS_PER_CHAR * len(text)))
        else:
            self._timer.stop()

    @Slot()
    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()
