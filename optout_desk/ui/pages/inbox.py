"""The Inbox page: what the webhooks pushed, live.

Every POLL_MS a worker task reads the local database (never SQLite on the GUI thread): a cheap
signature first, the entries only when it changed, so new events appear while the page is
open. The same task settles forwarding: entries handed to the Submit page are marked forwarded
once the plan journaled under their tag completed (workflows.inbox.settle_forward_requests).

Above the table: a banner when no receiver is running or nothing arrived for a long time; the
"Receive webhooks on this computer" switch with each source's URL and a Copy button; opt-outs
per day and per reason. "Forward to destinations" hands the new opt-outs shown to the Submit
page (preview, journal, receipt as always). Resubscribes are listed for a person to decide
about and never forwarded. With an inbox-relay connection (a receiver on an always-on host),
"Pull from relays" (F5) fetches what each relay received since the last pull, with progress and
Cancel (what was pulled stays: each page is committed with its cursor); between those, the page
pulls them every RELAY_PULL_MS in the background and speaks only when something new came or a
relay starts failing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer, Slot
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.ui import chart_library
from optout_desk.ui.charts import OptOutsPerDayChart, daily_counts
from optout_desk.ui.formatting import counted, number
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import run_task
from optout_desk.ui.widgets.data_table import DataTable
from optout_desk.ui.widgets.task_panel import TaskPanel

log = logging.getLogger(__name__)

POLL_MS = 2000
RELAY_PULL_MS = 60_000  # while relay connections exist, each is pulled this often
QUIET_AFTER_S = 24 * 3600  # "nothing arrived for a long time"
COLUMNS = ("received", "occurred", "source", "identifier", "kind", "reason", "campaign",
           "deliveries", "status")
HEADERS = {"received": "Received (UTC)", "occurred": "Opted out (UTC)", "source": "Source",
           "identifier": "Identifier",
           "kind": "Kind", "reason": "Reason", "campaign": "Campaign",
           "deliveries": "Deliveries", "status": "Status"}
SEARCH_COLUMNS = ("identifier", "source", "reason", "campaign", "status")
FILTERS = ("All entries", "New opt-outs", "Resubscribes to decide", "Forwarded")
RELAY_SYSTEM = "inbox-relay"


@dataclass(frozen=True)
class RelayPulls:
    """What "Pull from relays" did: a sentence per relay pulled, and per relay that failed."""

    pulled: list[str]
    failed: list[str]
    restarted: list[str]
    new: int = 0

    def problem(self) -> str:
        return " ".join(self.failed + self.restarted)

    def message(self) -> tuple[str, str]:
        """(text, level) for the message bar."""
        text = " ".join(self.failed + self.restarted + self.pulled)
        level = "warning" if self.failed or self.restarted else "success"
        return text, level


def pull_relays(names: list[str], progress: ProgressCallback, cancel: CancelToken
                ) -> RelayPulls:
    """Each relay in turn (worker thread); one that fails (a wrong token, a relay that is
    down) is said so and does not keep the others from being pulled."""
    from dataclasses import replace

    from optout_desk.core.errors import Cancelled, DeskError
    from optout_desk.workflows import inbox

    pulls = RelayPulls([], [], [])
    new = 0
    for name in names:
        def report(step: Any, name: str = name) -> None:
            progress(replace(step, message=f"Pulling {name}…"))

        try:
            result = inbox.pull_relay(name, progress=report, cancel=cancel)
        except Cancelled:
            raise
        except DeskError as exc:
            pulls.failed.append(f"{name}: {exc.message}")
            continue
        if result.restarted is not None:
            pulls.restarted.append(f"{name} was pulled again from the start: "
                                   f"{result.restarted}; nothing is counted twice.")
        pulls.pulled.append(f"{name}: {counted(result.fetched, 'event')} fetched, "
                            f"{result.new:,} new.")
        new += result.new
    return replace(pulls, new=new)


@dataclass(frozen=True)
class SourceLine:
    name: str
    system: str  # as operators know it ("LOX24"), not the desk's id
    url: str  # or why it cannot be shown
    hook: str  # CheckMarket's webhook state, "" for LOX24


@dataclass
class Snapshot:
    """What one poll read (worker thread). `rows` is None when nothing changed."""

    signature: tuple[Any, ...]
    rows: list[dict[str, Any]] | None = None
    sources: list[SourceLine] | None = None
    heartbeat: bool = False
    last_received: str | None = None
    marked: int = 0
    base_url: str = ""
    names: list[str] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)  # inbox-relay connections, to pull from


def read_snapshot(known: tuple[Any, ...] | None, base_url: str, sources_known: bool
                  ) -> Snapshot:
    """One poll (worker thread): settle forwards, read the signature, and the entries and
    sources only when they changed."""
    from optout_desk.store import connections
    from optout_desk.store import inbox as store
    from optout_desk.store.db import connect
    from optout_desk.workflows import inbox

    marked = inbox.settle_forward_requests()
    db = connect()
    try:
        relays = [c.name for c in connections.list_all(db) if c.system == RELAY_SYSTEM]
        count, top = db.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM inbox_events"
                                ).fetchone()
        forwards = db.execute("SELECT COUNT(*) FROM inbox_forwards").fetchone()[0]
        sources = store.list_sources(db)
        last = store.last_received_at(db)
    finally:
        db.close()
    source_key = tuple((s.name, s.hook_state, s.webhook_id) for s in sources)
    signature = (count, top, forwards, source_key, base_url)
    snap = Snapshot(signature, heartbeat=inbox.receiver_heartbeat() is not None,
                    last_received=last, marked=marked, base_url=base_url,
                    names=[s.name for s in sources], relays=relays)
    if known is None or signature[:3] != known[:3] or marked:
        entries, optout_ids = inbox.load_entries()
        snap.rows = [_row(entry, inbox.status_of(entry, optout_ids)) for entry in entries]
    if known is None or signature[3:] != known[3:] or not sources_known:
        snap.sources = [_source_line(s, base_url) for s in sources]
    return snap


def _row(entry: Any, status: str) -> dict[str, Any]:
    e = entry.event
    reason = e.reason_label or (str(e.reason_id) if e.reason_id else "")
    return {"row_id": entry.row_id, "received": entry.received_at[:19].replace("T", " "),
            "source": e.source, "identifier": e.identifier,
            "kind": "opt-out" if e.kind == "optout" else "resubscribe",
            "reason": reason, "campaign": e.campaign, "deliveries": entry.deliveries,
            "status": status, "occurred": e.occurred_at[:19].replace("T", " "),
            "optout": e.kind == "optout",
            "new": status == "new"}


def _source_line(source: Any, base_url: str) -> SourceLine:
    from optout_desk.connectors.registry import system_label
    from optout_desk.core.errors import DeskError
    from optout_desk.workflows import inbox

    try:
        url = inbox.source_url(source.name, base_url or None)
    except DeskError as exc:
        url = f"(URL not available: {exc.message})"
    hook = ""
    if source.system == "checkmarket":
        hook = f"webhook {source.hook_state}" if source.hook_state else "webhook not registered"
    return SourceLine(source.name, system_label(source.system), url, hook)


class ReasonChart(QWidget):
    """Opt-outs per reason as bars, the reasons' labels on the axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(170)
        self._layout = QStackedLayout(self)
        self.empty = QLabel("Opt-outs per reason appear here.")
        self.empty.setEnabled(False)
        self._layout.addWidget(self.empty)
        self.plot: Any = None
        self._bars: Any = None
        self.counts: list[tuple[str, int]] = []

    def set_counts(self, counts: list[tuple[str, int]]) -> None:
        self.counts = counts
        if not counts:
            self._layout.setCurrentWidget(self.empty)
            return
        import pyqtgraph as pg

        if self.plot is None:
            palette = self.palette()
            foreground = palette.color(QPalette.ColorRole.Text)
            self.plot = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
            item = self.plot.getPlotItem()
            item.setMenuEnabled(False)
            item.hideButtons()
            item.showGrid(x=True, y=False, alpha=0.2)
            item.setLabel("bottom", "opt-outs per reason", color=foreground.name())
            for axis in ("left", "bottom"):
                item.getAxis(axis).setPen(foreground)
                item.getAxis(axis).setTextPen(foreground)
            self.plot.setMouseEnabled(x=False, y=False)
            self._layout.addWidget(self.plot)
        # Horizontal bars, most frequent on top: the reasons' labels are long (and German).
        y = np.arange(len(counts), dtype=np.float64)[::-1]
        widths = np.array([n for _, n in counts], dtype=np.float64)
        if self._bars is not None:
            self.plot.removeItem(self._bars)
        self._bars = pg.BarGraphItem(x0=0, y=y, width=widths, height=0.7,
                                     brush=self.palette().color(QPalette.ColorRole.Highlight),
                                     pen=pg.mkPen(None))
        self.plot.addItem(self._bars)
        ticks = [(float(y[i]), _short(label, 24)) for i, (label, _) in enumerate(counts)]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks])
        self.plot.setYRange(-0.6, len(counts) - 0.4, padding=0)
        self.plot.setXRange(0, float(widths.max()) * 1.1, padding=0)
        self.plot.setToolTip("\n".join(f"{label}: {n:,}" for label, n in counts))
        self._layout.setCurrentWidget(self.plot)


def _short(label: str, width: int = 16) -> str:
    return label if len(label) <= width else label[:width - 1] + "…"


def reason_counts(rows: list[dict[str, Any]], limit: int = 6) -> list[tuple[str, int]]:
    counts = Counter(r["reason"] or "no reason given" for r in rows if r["optout"])
    top = counts.most_common(limit)
    rest = sum(counts.values()) - sum(n for _, n in top)
    return top + ([("other reasons", rest)] if rest else [])


class InboxPage(QWidget):
    def __init__(self, window: Any) -> None:
        super().__init__()
        self.window_ = window
        self.receiver_port = 8787  # tests use 0 (any free port)
        self.rows: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.sources: list[SourceLine] = []
        self.signature: tuple[Any, ...] | None = None
        self.last_received: str | None = None
        self.heartbeat = False
        self._poll_task: Any = None
        self._switch_task: Any = None
        self.task: Any = None

        self.banner = QLabel()
        self.banner.setObjectName("inboxBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("#inboxBanner { background: #fef3c7; color: #78350f; "
                                  "border: 1px solid #f59e0b; border-radius: 4px; "
                                  "padding: 6px 8px; }")
        self.banner.hide()

        self.receive_button = QCheckBox("Receive webhooks on this computer")
        self.receive_button.setToolTip("Run the webhook receiver inside the desk, on 127.0.0.1 "
                                       "(for an always-on host use `optout-desk receive`)")
        self.receive_button.toggled.connect(self._switch_receiver)
        self.receiver_label = QLabel("Not receiving on this computer.")
        self.receiver_label.setWordWrap(True)
        self.add_button = QPushButton("Add source…")
        self.add_button.clicked.connect(self.add_source)
        self.copy_button = QPushButton("Copy URLs")
        self.copy_button.setToolTip("Copy every source's webhook URL, to paste into the "
                                    "platforms' webhook settings")
        self.copy_button.clicked.connect(self.copy_urls)
        self.pull_button = QPushButton("Pull from relays")
        self.pull_button.setToolTip("Fetch what each inbox relay (`optout-desk receive` on an "
                                    "always-on host) received since the last pull (F5)")
        self.pull_button.clicked.connect(self.pull)
        self.pull_button.hide()  # until an inbox-relay connection exists
        self.relays: list[str] = []
        self.panel = TaskPanel(cancel_tooltip="Stop pulling; what was pulled stays in the "
                               "inbox")
        self.relay_timer = QTimer(self)
        self.relay_timer.setInterval(RELAY_PULL_MS)
        self.relay_timer.timeout.connect(self._pull_in_background)
        self._background_pull: Any = None
        self._background_reports = False  # a Pull pressed meanwhile: say what it gave
        self._background_problem = ""  # the last background failure, said once
        self.urls = QPlainTextEdit()
        self.urls.setReadOnly(True)
        self.urls.setMaximumHeight(64)
        self.urls.setPlaceholderText("No webhook sources yet: Add source…, or `optout-desk "
                                     "inbox add NAME --system lox24`.")

        self.source_filter = QComboBox()
        self.source_filter.addItem("All sources")
        self.source_filter.currentIndexChanged.connect(self._refilter)
        self.kind_filter = QComboBox()
        self.kind_filter.addItems(FILTERS)
        self.kind_filter.currentIndexChanged.connect(self._refilter)
        self.counts_label = QLabel()
        self.forward_button = QPushButton("Forward to destinations…")
        self.forward_button.setToolTip("Send the new opt-outs shown through Submit (preview, "
                                       "journal, receipt); resubscribes are never forwarded")
        self.forward_button.clicked.connect(self.forward)

        self.day_chart = OptOutsPerDayChart()
        self.day_chart.empty.setText("Opt-outs per day appear here as webhooks arrive.")
        self.reason_chart = ReasonChart()
        self.model = ColumnarTableModel(COLUMNS, headers=HEADERS, search_columns=SEARCH_COLUMNS,
                                        parent=self)
        self.table = DataTable(self.model, noun=("entry", "entries"),
                               search_placeholder="Search identifier, source, reason, campaign "
                               "(Ctrl+F)", export_name="inbox")
        self.table.empty_text = "Nothing received yet."

        receiver_row = QHBoxLayout()
        receiver_row.addWidget(self.receive_button)
        receiver_row.addWidget(self.receiver_label, 1)
        receiver_row.addWidget(self.pull_button)
        receiver_row.addWidget(self.add_button)
        receiver_row.addWidget(self.copy_button)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show"))
        filters.addWidget(self.kind_filter)
        filters.addWidget(self.source_filter)
        filters.addWidget(self.counts_label, 1)
        filters.addWidget(self.forward_button)
        charts = QHBoxLayout()
        charts.addWidget(self.day_chart, 3)
        charts.addWidget(self.reason_chart, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Inbox</h2>"))
        layout.addWidget(self.banner)
        layout.addLayout(receiver_row)
        layout.addWidget(self.panel)
        layout.addWidget(self.urls)
        layout.addLayout(charts)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        chart_library.when_ready(self, self.day_chart.prepare)
        self.poll()

    # --- polling ---------------------------------------------------------------------------

    def base_url(self) -> str:
        from optout_desk.ui import receiver_control

        local = receiver_control.current()
        return local.base_url if local is not None else ""

    def on_shown(self) -> None:
        self.poll()

    @Slot()
    def poll(self) -> None:
        if self._poll_task is not None:
            return  # the last poll is still reading
        known, base, have_sources = self.signature, self.base_url(), bool(self.sources)

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> Snapshot:
            return read_snapshot(known, base, have_sources)

        self._poll_task = run_task(self, work, on_success=self._polled,
                                   on_failure=self._poll_failed, name="inbox poll")

    def _poll_failed(self, exc: BaseException) -> None:
        self._poll_task = None
        log.warning("inbox poll failed: %s", type(exc).__name__)

    def _polled(self, snap: Snapshot) -> None:
        self._poll_task = None
        self.signature = snap.signature
        self.heartbeat = snap.heartbeat
        self.last_received = snap.last_received
        self.relays = snap.relays
        self.pull_button.setVisible(bool(snap.relays))
        if not snap.relays:
            self.relay_timer.stop()
        elif not self.relay_timer.isActive():
            self.relay_timer.start()
        if snap.sources is not None:
            self._show_sources(snap.sources)
        if snap.rows is not None:
            self.rows = snap.rows
            self._refilter()
        if snap.marked:
            self.window_.notify(f"{snap.marked:,} inbox entries marked forwarded.", "success")
        self._update_receiver_state()
        self._update_banner()

    def _show_sources(self, sources: list[SourceLine]) -> None:
        self.sources = sources
        self.urls.setPlainText("\n".join(
            f"{s.name} — {s.system}{', ' + s.hook if s.hook else ''}: {s.url}" for s in sources))
        current = self.source_filter.currentText()
        self.source_filter.blockSignals(True)
        self.source_filter.clear()
        self.source_filter.addItem("All sources")
        names = sorted({s.name for s in sources} | {r["source"] for r in self.rows})
        self.source_filter.addItems(names)
        if current in names:
            self.source_filter.setCurrentText(current)
        self.source_filter.blockSignals(False)

    # --- what is shown ---------------------------------------------------------------------

    @Slot()
    def _refilter(self, *_args: Any) -> None:
        source = self.source_filter.currentText()
        mode = self.kind_filter.currentIndex()
        rows = [r for r in self.rows if source == "All sources" or r["source"] == source]
        if mode == 1:
            rows = [r for r in rows if r["new"]]
        elif mode == 2:
            rows = [r for r in rows if not r["optout"]]
        elif mode == 3:
            rows = [r for r in rows if r["status"].startswith("forwarded")]
        rows = rows[::-1]  # newest first
        self.shown = rows
        self.model.set_columns({c: [r[c] for r in rows] for c in COLUMNS})
        if self.model.total_rows and self.model.total_rows == len(rows):
            self.table.resize_columns_to_sample()
        optouts = [r for r in self.rows if r["optout"]]
        new = sum(r["new"] for r in self.rows)
        decide = sum(r["status"].startswith("resubscribe") for r in self.rows)
        self.counts_label.setText(f"{counted(len(optouts), 'opt-out')} · {number(new)} new · "
                                  f"{counted(len(self.rows) - len(optouts), 'resubscribe')} "
                                  f"({number(decide)} to decide)")
        self.forward_button.setEnabled(new > 0)
        self.day_chart.set_counts(daily_counts([r["occurred"][:10] for r in optouts]))
        self.reason_chart.set_counts(reason_counts(self.rows))

    def _update_receiver_state(self) -> None:
        from optout_desk.ui import receiver_control

        local = receiver_control.current()
        if self._switch_task is None:
            self.receive_button.blockSignals(True)
            self.receive_button.setChecked(local is not None)
            self.receive_button.blockSignals(False)
        if local is not None:
            self.receiver_label.setText(
                f"Receiving on {local.base_url} (this computer only; a platform on the "
                "internet reaches it through a relay or an HTTPS reverse proxy).")
        elif self.heartbeat:
            self.receiver_label.setText("A receiver (`optout-desk receive`) is storing "
                                        "webhooks into this inbox.")
        else:
            self.receiver_label.setText("Not receiving on this computer.")

    def _update_banner(self) -> None:
        from optout_desk.ui import receiver_control

        running = receiver_control.current() is not None or self.heartbeat
        text = ""
        if not running and self.relays and not self.sources:
            pass  # webhooks go to the relays; Pull from relays fetches them: nothing is wrong
        elif not running:
            relay = ("press Pull from relays" if self.relays else
                     "pull from a relay (`optout-desk inbox pull`)")
            text = ("No receiver is running: webhooks sent now are not received here. Switch "
                    "on \u201cReceive webhooks on this computer\u201d, run `optout-desk receive`, "
                    f"or {relay}.")
        elif self.sources:
            quiet = _seconds_since(self.last_received)
            if quiet is None or quiet > QUIET_AFTER_S:
                since = "yet" if quiet is None else f"for {quiet / 3600:.0f} hours"
                text = (f"Nothing arrived {since}: check each platform's webhook settings "
                        "and that it can reach the URLs below.")
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    # --- actions ---------------------------------------------------------------------------

    @Slot(bool)
    def _switch_receiver(self, on: bool) -> None:
        from optout_desk.ui import receiver_control

        port = self.receiver_port

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> Any:
            if on:
                return receiver_control.start(port)
            receiver_control.stop()
            return None

        self.receive_button.setEnabled(False)
        self._switch_task = run_task(self, work, on_success=self._switched,
                                     on_failure=self._switch_failed, name="receiver on/off")

    def _switched(self, receiver: Any) -> None:
        self._switch_task = None
        self.receive_button.setEnabled(True)
        self.sources = []  # the URLs' base changed: read them again
        self.window_.notify(f"Receiving webhooks on {receiver.base_url}." if receiver else
                            "Stopped receiving webhooks on this computer.", "info")
        self._update_receiver_state()
        self.poll()

    def _switch_failed(self, exc: BaseException) -> None:
        self._switch_task = None
        self.receive_button.setEnabled(True)
        self._update_receiver_state()
        from optout_desk.core.errors import DeskError

        if isinstance(exc, DeskError):
            self.window_.notify(exc.message, "warning")
        else:
            self.window_.show_error(exc, "The webhook receiver could not start")

    def copy_urls(self) -> str:
        text = "\n".join(f"{s.name}: {s.url}" for s in self.sources)
        if not text:
            self.window_.notify("No webhook sources yet: add one first.", "info")
            return ""
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text + "\n")
        self.window_.notify(f"Copied {counted(len(self.sources), 'webhook URL')}. Each is a "
                            "secret: share it like a key.", "success")
        return text

    def add_source(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a webhook source",
                                        "Name (e.g. lox24-marketing):")
        if not ok or not name.strip():
            return
        system, ok = QInputDialog.getItem(self, "Add a webhook source", "Platform:",
                                          ["lox24", "checkmarket"], 0, False)
        if ok:
            self.create_source(name.strip(), system)

    def create_source(self, name: str, system: str) -> None:
        from optout_desk.workflows import inbox

        session_only = bool(getattr(self.window_.context, "demo", False))

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> Any:
            return inbox.add_source(name, system, session_only=session_only)

        def added(_result: Any) -> None:
            self.sources = []
            self.window_.notify(f"Added the {system} source {name!r}: copy its URL into the "
                                "platform's webhook settings.", "success")
            self.poll()

        self.task = run_task(self, work, on_success=added, on_failure=self._action_failed,
                             name="add source")

    def _action_failed(self, exc: BaseException) -> None:
        from optout_desk.core.errors import DeskError

        if isinstance(exc, DeskError):
            self.window_.notify(exc.message, "warning")
        else:
            self.window_.show_error(exc)

    def pull(self) -> None:
        """Pull every inbox relay into the inbox (a worker task with progress and Cancel)."""
        names = list(self.relays)
        if not names or self.panel.busy:
            return
        if self._background_pull is not None:  # one pull at a time; that one will say
            self._background_reports = True
            self.window_.notify("The relays are being pulled in the background already; "
                                "what that pull brings is said when it ends.", "info")
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> RelayPulls:
            return pull_relays(names, progress, cancel)

        def pulled(result: RelayPulls) -> None:
            self.pull_button.setEnabled(True)
            self.window_.notify(*result.message())
            self._background_problem = result.problem()  # said now: not again each minute
            self.poll()

        def failed(exc: BaseException) -> None:
            from optout_desk.core.errors import Cancelled

            self.pull_button.setEnabled(True)
            if isinstance(exc, Cancelled):  # each page came with its cursor: it stays
                self.window_.notify("Pull cancelled; what was pulled before stays in the "
                                    "inbox.", "info")
            else:
                self._action_failed(exc)
            self.poll()  # what was pulled before the failure or Cancel is shown

        self.pull_button.setEnabled(False)
        label = names[0] if len(names) == 1 else f"{len(names)} relays"
        self.task = self.panel.run(self, work, f"Pulling {label}…", on_success=pulled,
                                   on_failure=failed, name="pull relays")

    @Slot()
    def _pull_in_background(self) -> None:
        names = list(self.relays)
        if not names or self.panel.busy or self._background_pull is not None:
            return

        def work(_progress: ProgressCallback, cancel: CancelToken) -> RelayPulls:
            return pull_relays(names, lambda _step: None, cancel)

        def pulled(result: RelayPulls) -> None:
            self._background_pull = None
            problem = result.problem()
            if self._background_reports or result.new or \
                    (problem and problem != self._background_problem):
                self.window_.notify(*result.message())
            self._background_reports = False
            self._background_problem = problem
            if result.new:
                self.poll()

        def failed(exc: BaseException) -> None:
            self._background_pull = None
            self._background_reports = False
            log.warning("background relay pull failed: %s", type(exc).__name__)

        self._background_pull = run_task(self, work, on_success=pulled, on_failure=failed,
                                         name="relay pull (background)")

    def forward(self) -> None:
        """Hand the new opt-outs shown to the Submit page; they are marked forwarded per
        destination once the plan made from them completes."""
        from optout_desk.workflows import inbox

        rows = [self.shown[int(r)]["row_id"] for r in self.model.shown_data_rows()]

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> Any:
            return inbox.request_forward(rows)

        def ready(result: tuple[str, list[Any]]) -> None:
            tag, inputs = result
            self.window_.send_to_submit(inputs, tag)

        self.task = run_task(self, work, on_success=ready, on_failure=self._action_failed,
                             name="forward")

    # --- page protocol ---------------------------------------------------------------------

    def focus_search(self) -> None:
        self.table.focus_search()

    def copy_selection(self) -> None:
        self.table.copy_selection()

    def export_shown(self) -> None:
        self.table.export_shown()

    def fetch(self) -> None:
        """F5: pull the relays when there are any; read the local inbox again in any case."""
        if self.relays:
            self.pull()
        else:
            self.poll()

    def shutdown(self) -> None:
        self.timer.stop()
        self.relay_timer.stop()
        from optout_desk.ui import receiver_control

        receiver_control.stop()


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (datetime.now(UTC) - moment).total_seconds()

