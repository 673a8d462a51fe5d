"""Opt-outs per day as a bar chart (pyqtgraph, not Qt Charts: licensing), so the spike after a
campaign shows at a glance.

`daily_counts(dates)` is pure and runs in the page's loading task; `OptOutsPerDayChart` imports
pyqtgraph only when it is first given data, which keeps it out of the app's cold start. Colours
come from the widget's palette, so the chart follows the light/dark scheme. Hovering a bar shows
its day and count (in the line under the chart and as a tooltip); clicking a bar emits
`dayClicked(day)`, which the Opt-outs page uses to filter the table to that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedLayout, QToolTip, QVBoxLayout, QWidget

from optout_desk.ui.formatting import counted, day

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class DailyCounts:
    days: np.ndarray  # datetime64[D], ascending
    counts: np.ndarray  # int64, same length

    @property
    def peak(self) -> tuple[str, int] | None:
        if not len(self.counts):
            return None
        i = int(np.argmax(self.counts))
        return str(self.days[i]), int(self.counts[i])


def daily_counts(dates: Sequence[Any]) -> DailyCounts:
    """Count opt-outs per UTC day from canonical DateOptOut texts ("YYYY-MM-DD…")."""
    days = [d[:10] for d in dates if isinstance(d, str) and len(d) >= 10]
    if not days:
        return DailyCounts(np.array([], dtype="datetime64[D]"), np.array([], dtype=np.int64))
    try:
        as_days = np.array(days, dtype="datetime64[D]")
    except ValueError:  # a malformed date in the cache: count only the parseable ones
        parsed = []
        for d in days:
            try:
                parsed.append(np.datetime64(d, "D"))
            except ValueError:
                continue
        as_days = np.array(parsed, dtype="datetime64[D]")
    unique, counts = np.unique(as_days, return_counts=True)
    return DailyCounts(unique, counts.astype(np.int64))


class OptOutsPerDayChart(QWidget):
    """A bar per day; the pyqtgraph widget is created on the first data."""

    dayClicked = Signal(str)  # "2026-11-22"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(190)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        holder = QWidget()
        self._layout = QStackedLayout(holder)
        outer.addWidget(holder, 1)
        self.hover = QLabel(" ")
        self.hover.setObjectName("chartHover")
        self.hover.setEnabled(False)
        outer.addWidget(self.hover)
        self.empty = QLabel("Opt-outs per day appear here after a fetch.")
        self.empty.setEnabled(False)
        self._layout.addWidget(self.empty)
        self.plot: Any = None
        self._bars: Any = None
        self.counts = DailyCounts(np.array([], dtype="datetime64[D]"),
                                  np.array([], dtype=np.int64))

    def _ensure_plot(self) -> Any:
        if self.plot is not None:
            return self.plot
        import pyqtgraph as pg

        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")},
                                  background=background)
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=False, y=True, alpha=0.2)
        item.setLabel("left", "opt-outs / day", color=foreground.name())
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(foreground)
            item.getAxis(axis).setTextPen(foreground)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._mouse_clicked)
        self._layout.addWidget(self.plot)
        return self.plot

    # --- hover and click ------------------------------------------------------------------

    def day_at(self, x_seconds: float) -> tuple[str, int] | None:
        """The day (and its count) whose bar covers x (seconds since 1970), if any."""
        if not len(self.counts.days):
            return None
        starts = self.counts.days.astype("datetime64[s]").astype(np.int64)
        position = int(np.searchsorted(starts, x_seconds, side="right")) - 1
        if position < 0 or x_seconds >= starts[position] + SECONDS_PER_DAY:
            return None
        return str(self.counts.days[position]), int(self.counts.counts[position])

    def hover_text(self, x_seconds: float) -> str:
        found = self.day_at(x_seconds)
        if found is None:
            return ""
        return f"{day(found[0])}: {counted(found[1], 'opt-out')} (click to show that day)"

    def _x_of(self, scene_pos: QPointF) -> float:
        return float(self.plot.getPlotItem().vb.mapSceneToView(scene_pos).x())

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        text = self.hover_text(self._x_of(scene_pos))
        self.hover.setText(text or " ")
        if text:
            QToolTip.showText(self.plot.mapToGlobal(self.plot.mapFromScene(scene_pos)), text,
                              self.plot)

    def _mouse_clicked(self, event: Any) -> None:
        self.click_at(self._x_of(event.scenePos()))

    def click_at(self, x_seconds: float) -> None:
        found = self.day_at(x_seconds)
        if found is not None:
            self.dayClicked.emit(found[0])

    def prepare(self) -> None:
        """Create the plot widget now (it stays hidden until there is data)."""
        self._ensure_plot()

    def set_counts(self, counts: DailyCounts) -> None:
        self.counts = counts
        if not len(counts.days):
            self.hover.setText(" ")
            self._layout.setCurrentWidget(self.empty)
            return
        import pyqtgraph as pg

        plot = self._ensure_plot()
        seconds = counts.days.astype("datetime64[s]").astype(np.int64).astype(np.float64)
        # Bars centred on midday, so each sits over its own date on the axis.
        x = seconds + SECONDS_PER_DAY / 2
        highlight = self.palette().color(QPalette.ColorRole.Highlight)
        if self._bars is not None:
            plot.removeItem(self._bars)
        self._bars = pg.BarGraphItem(x=x, height=counts.counts.astype(np.float64),
                                     width=SECONDS_PER_DAY * 0.8, brush=highlight,
                                     pen=pg.mkPen(None))
        plot.addItem(self._bars)
        plot.setXRange(float(seconds[0]), float(seconds[-1] + SECONDS_PER_DAY), padding=0.02)
        plot.setYRange(0, float(counts.counts.max()) * 1.1, padding=0)
        peak = counts.peak
        if peak is not None:
            self.hover.setText(f"Busiest day: {day(peak[0])}, {counted(peak[1], 'opt-out')}. "
                               "Point at a bar for its day; click it to show that day.")
        self._layout.setCurrentWidget(plot)
