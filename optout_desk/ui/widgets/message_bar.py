"""A non-modal message strip at the top of the window (error tier 1: expected problems).

`MessageBar.show_message(text, level)`; info and success messages fade after a few seconds,
warnings and errors stay until dismissed or replaced, so an operator never misses one. The
window floats the bar over the top of the page (it emits `shown` to be placed), so a message
never pushes the page's controls away from under the pointer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

LEVELS = ("info", "success", "warning", "error")
_ICONS = {
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "success": QStyle.StandardPixmap.SP_DialogApplyButton,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
}
# Tints blended over the palette's window colour, so the bar reads in light and dark schemes
# alike (and is opaque: it floats over the page).
_TINTS = {
    "info": (64, 128, 255, 40),
    "success": (40, 170, 80, 45),
    "warning": (240, 170, 0, 60),
    "error": (220, 50, 50, 55),
}


def _blended(base: QColor, tint: tuple[int, int, int, int]) -> str:
    red, green, blue, alpha = tint
    share = alpha / 255
    mix = [round(channel * share + under * (1 - share))
           for channel, under in zip((red, green, blue), (base.red(), base.green(),
                                                          base.blue()), strict=True)]
    return f"rgb({mix[0]}, {mix[1]}, {mix[2]})"
AUTO_HIDE_MS = 6000
READING_MS_PER_CHAR = 70  # about 15 characters a second


class MessageBar(QFrame):
    shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setAutoFillBackground(True)
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
        # Over the page: the tint on an opaque window-coloured base, with a border.
        colour = _blended(self.palette().color(QPalette.ColorRole.Window), _TINTS[level])
        self.setStyleSheet(
            f"#messageBar {{ background: {colour}; border: 1px solid rgba(0, 0, 0, 70); "
            "border-radius: 4px; }"
        )
        self.show()
        self.shown.emit()
        if level in ("info", "success"):
            # Long enough to read: a longer message (the demo's first steps) stays longer.
            self._timer.start(max(AUTO_HIDE_MS, READING_MS_PER_CHAR * len(text)))
        else:
            self._timer.stop()

    @Slot()
    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()
