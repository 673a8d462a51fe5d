"""The Connections page: add, edit, remove and test connections, and see where each key lives.

Every keyring call (storing, reading where a secret lives, the backend's status) runs in a
background task: a locked Secret Service can block on D-Bus for a long time. When there is no
keyring backend or it is locked, the page says so in a banner; with no backend at all the
connection dialog itself offers "this session only" (the one message about it), and a store
that fails anyway offers the choices (this session only / unlock and retry) — never a
plaintext file. In demo mode the demo keys are meant to live in memory: a quiet line says so
instead of the warning banner. Remove asks first, with Cancel as the default answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.ui.dialogs.connection import (
    CUSTOM_REGION,
    RETRY,
    SESSION_ONLY,
    ConnectionDialog,
    ConnectionInput,
    KeyringChoice,
)
from optout_desk.ui.formatting import counted
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import report_failure, run_task

log = logging.getLogger(__name__)

COLUMNS = ("Name", "System", "Address", "Keys", "Check")


@dataclass(frozen=True)
class ConnectionRow:
    name: str
    system: str
    system_label: str
    region: str
    base_url: str
    keys: str  # "Master key: stored in Secret Service; Key: stored in Secret Service"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Listing:
    rows: list[ConnectionRow]
    backend_state: str  # "ok" | "none" | "locked"
    backend_message: str


def load_listing(_progress: ProgressCallback, _cancel: CancelToken) -> Listing:
    """Profiles from the database and, per secret, where it lives (keyring calls: worker only)."""
    from optout_desk import secrets
    from optout_desk.connectors.registry import SYSTEMS
    from optout_desk.store import connections as store_connections
    from optout_desk.store.db import connect

    conn = connect()
    try:
        profiles = store_connections.list_all(conn)
    finally:
        conn.close()
    status = secrets.backend_status()
    rows = []
    for profile in profiles:
        info = SYSTEMS.get(profile.system)
        fields = tuple(info.secret_fields) if info else ()
        labels = tuple(info.secret_labels) if info else ()
        places = [secrets.describe_location(profile.name, field) for field in fields]
        keys = ("All keys: " + places[0] if len(set(places)) == 1 and len(places) > 1 else
                "; ".join(f"{label}: {place}"
                          for label, place in zip(labels, places, strict=True)))
        rows.append(ConnectionRow(profile.name, profile.system, info.label if info else
                                  profile.system, profile.region, profile.base_url, keys,
                                  dict(profile.settings)))
    return Listing(rows, status.state, status.message)


class ConnectionsPage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.rows: list[ConnectionRow] = []
        self.checks: dict[str, str] = {}
        self.backend_state = "unknown"
        self._listing_task: Any = None
        self._busy: set[str] = set()

        heading = QLabel("<h2>Connections</h2>")
        intro = QLabel("The platforms the desk talks to. Keys are kept in the system keyring, "
                       "never in a file."
                       + (" Demo mode: the demo connections' keys are held in memory for this "
                          "session only." if host.context.demo else ""))
        intro.setWordWrap(True)
        self.intro = intro

        self.banner = QFrame()
        self.banner.setObjectName("keyringBanner")
        self.banner.setStyleSheet(
            "#keyringBanner { background: rgba(240, 170, 0, 60); border-radius: 4px; }")
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.retry_button = QPushButton("Unlock and retry")
        self.retry_button.clicked.connect(self.refresh)
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.addWidget(self.banner_text, 1)
        banner_layout.addWidget(self.retry_button)
        self.banner.hide()

        self.model = ColumnarTableModel(COLUMNS, search_columns=("Name",))
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.view.doubleClicked.connect(self.edit_selected)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)

        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Ask the platform whether these keys work")
        self.add_button.clicked.connect(self.add_connection)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.test_button.clicked.connect(self.test_selected)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.edit_button, self.remove_button, self.test_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.empty_label = QLabel("No connections yet. Choose Add… to connect a platform.")
        self.empty_label.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.view, 1)

        host.changes.connectionsChanged.connect(self.refresh)
        self._selection_changed()
        self.refresh()

    # --- listing ---------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        if self._listing_task is not None:
            self._listing_task.cancel()
        self._listing_task = run_task(self, load_listing, on_success=self._listed,
                                      name="list connections")

    def _listed(self, listing: Listing) -> None:
        self._listing_task = None
        selected = self.selected_name() or self.host.last_connection()
        self.rows = listing.rows
        self.backend_state = listing.backend_state
        self._show_backend(listing.backend_state, listing.backend_message)
        self.model.set_columns({
            "Name": [r.name for r in self.rows],
            "System": [r.system_label for r in self.rows],
            "Address": [r.base_url if r.region in ("", CUSTOM_REGION)
                        else f"{r.region.upper()} · {r.base_url}" for r in self.rows],
            "Keys": [r.keys for r in self.rows],
            "Check": [self.checks.get(r.name, "") for r in self.rows],
        })
        self.empty_label.setVisible(not self.rows)
        self.select(selected)
        self._selection_changed()

    def _show_backend(self, state: str, message: str) -> None:
        if state == "ok" or (self.host.context.demo and state == "none"):
            self.banner.hide()  # demo keys are session-only by design: nothing to warn about
            return
        if state == "locked":
            text = (message or "The system keyring is locked.") + (
                " Unlock it and retry, or enter keys for this session only when you add or "
                "edit a connection.")
            self.retry_button.setText("Unlock and retry")
        else:
            text = (message or "There is no system keyring on this computer. Keys can be used "
                    "for this session only (entered again next time), or from environment "
                    "variables for automation.") + " They are never written to a file."
            self.retry_button.setText("Retry")
        self.banner_text.setText(text)
        self.banner.show()

    def select(self, name: str) -> None:
        for row, item in enumerate(self.rows):
            if item.name == name:
                self.view.selectRow(row)
                return

    def selected_name(self) -> str:
        selection = self.view.selectionModel()
        rows = selection.selectedRows() if selection is not None else []
        if not rows:
            return ""
        position = self.model.data_row(rows[0].row())
        return self.rows[position].name if position < len(self.rows) else ""

    @Slot()
    def _selection_changed(self, *_args: Any) -> None:
        name = self.selected_name()
        for button in (self.edit_button, self.remove_button, self.test_button):
            button.setEnabled(bool(name) and name not in self._busy)
        if name:
            self.host.set_last_connection(name)

    # --- add / edit ------------------------------------------------------------------------

    def _keyring_note(self) -> str:
        if self.backend_state == "none":
            return "There is no system keyring: the keys will be kept for this session only."
        if self.backend_state == "locked":
            return "The keyring is locked: unlock it, or keep the keys for this session only."
        return ""

    @Slot()
    def add_connection(self) -> None:
        value = ConnectionDialog.ask(self, None, self._keyring_note(),
                                     session_only_choice=self.backend_state == "none")
        if value is not None:
            self._save(value, session_only=value.session_only)

    @Slot()
    def edit_selected(self, *_args: Any) -> None:
        name = self.selected_name()
        row = next((r for r in self.rows if r.name == name), None)
        if row is None:
            return
        existing = ConnectionInput(
            name=row.name, system=row.system, region=row.region or CUSTOM_REGION,
            custom_url=row.base_url if row.region in ("", CUSTOM_REGION) else "",
            original_name=row.name, settings=dict(row.settings))
        value = ConnectionDialog.ask(self, existing, self._keyring_note(),
                                     session_only_choice=self.backend_state == "none")
        if value is not None:
            self._save(value, session_only=value.session_only)

    def _save(self, value: ConnectionInput, session_only: bool) -> None:
        def work(_progress: ProgressCallback, _cancel: CancelToken
                 ) -> tuple[str, int | None, str | None]:
            from optout_desk.workflows import connections as flows

            base_url = value.custom_url if value.region == CUSTOM_REGION else None
            region = None if value.region == CUSTOM_REGION else value.region
            if value.original_name is None:
                flows.add_connection(value.name, value.system, region=region, base_url=base_url,
                                     secrets=value.secrets, session_only=session_only,
                                     settings=value.settings)
                return value.name, None, None
            edited = flows.edit_connection(value.original_name, region=region,
                                           base_url=base_url, secrets=value.secrets or None,
                                           session_only=session_only, settings=value.settings)
            return value.name, edited.dropped, edited.why

        run_task(self, work,
                 on_success=lambda saved: self._saved(*saved, session_only=session_only),
                 on_failure=lambda exc: self._save_failed(value, exc), name="save connection")

    def _saved(self, name: str, dropped: int | None = None, why: str | None = None, *,
               session_only: bool = False) -> None:
        from optout_desk.ui.formatting import counted
        from optout_desk.workflows.connections import NEW_KEYS

        self.checks.pop(name, None)
        self.host.set_last_connection(name)
        text = f"Connection {name} saved" + (
            "; its keys are held for this session only." if session_only else ".")
        if dropped:
            changed = ("Its keys changed (they may be another account's), so the list cached "
                       "with the old keys" if why == NEW_KEYS else
                       "Its address changed, so the list cached from the old one")
            text += f" {changed} ({counted(dropped, 'opt-out')}) was dropped: fetch it again."
        self.host.notify(text, "success" if not dropped else "info")
        self.host.changes.connectionsChanged.emit()
        if dropped is not None:
            self.host.changes.cacheChanged.emit(name)

    def _save_failed(self, value: ConnectionInput, exc: BaseException) -> None:
        from optout_desk import secrets

        if isinstance(exc, secrets.NoKeyringError | secrets.KeyringLockedError):
            locked = isinstance(exc, secrets.KeyringLockedError)
            choice = KeyringChoice.ask(self, exc.message, locked)
            if choice == SESSION_ONLY:
                self._save(value, session_only=True)
            elif choice == RETRY:
                self._save(value, session_only=False)
            else:
                self.host.notify("Nothing was saved.", "info")
                self.refresh()  # the keyring's state may have changed: the banner follows
            return
        report_failure(self, exc, "The connection could not be saved")

    # --- remove ----------------------------------------------------------------------------

    @classmethod
    def remove_box(cls, parent: QWidget, name: str) -> tuple[QMessageBox, QPushButton]:
        """The question, with Cancel as the default answer, and its Remove button."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Remove the connection")
        box.setText(f"Remove {name}, its cached opt-out list and its stored keys? The platform "
                    "itself is not changed.")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        return box, remove

    @classmethod
    def confirm_remove(cls, parent: QWidget, name: str) -> bool:
        box, remove = cls.remove_box(parent, name)
        box.exec()
        return box.clickedButton() is remove

    @Slot()
    def remove_selected(self) -> None:
        name = self.selected_name()
        if not name or not self.confirm_remove(self, name):
            return

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> str:
            from optout_desk.workflows.connections import remove_connection

            remove_connection(name)
            return name

        run_task(self, work, on_success=self._removed, on_failure=self._failed,
                 name="remove connection")

    def _removed(self, name: str) -> None:
        self.checks.pop(name, None)
        if self.host.last_connection() == name:
            self.host.set_last_connection("")
        self.host.notify(f"Connection {name} removed.", "success")
        self.host.changes.connectionsChanged.emit()
        self.host.changes.cacheChanged.emit(name)  # its cached list is gone

    # --- test ------------------------------------------------------------------------------

    @Slot()
    def test_selected(self) -> None:
        name = self.selected_name()
        if not name:
            return
        self._busy.add(name)
        self._set_check(name, "testing…")
        self._selection_changed()

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> Any:
            from optout_desk.workflows.connections import test_connection

            return test_connection(name)

        run_task(self, work, on_success=lambda check: self._tested(name, check),
                 on_failure=lambda exc: self._test_failed(name, exc), name="test connection")

    def _tested(self, name: str, check: Any) -> None:
        self._busy.discard(name)
        if check.ok:
            total = getattr(check, "total_optouts", None)
            summary = "works" + (f" · {counted(total, 'opt-out')}" if isinstance(total, int)
                                 else "")
            self._set_check(name, summary)
            self.host.notify(check.message or f"{name} works.", "success")
        else:
            self._set_check(name, "failed")
            self.host.notify(check.message, "warning")
        self._selection_changed()

    def _test_failed(self, name: str, exc: BaseException) -> None:
        self._busy.discard(name)
        self._set_check(name, "failed")
        self._selection_changed()
        self._failed(exc)

    def _set_check(self, name: str, text: str) -> None:
        self.checks[name] = text
        for row, item in enumerate(self.rows):
            if item.name == name:
                self.model.set_value(row, "Check", text)

    def _failed(self, exc: BaseException) -> None:
        report_failure(self, exc)
