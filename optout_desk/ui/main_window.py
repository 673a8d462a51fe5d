"""The main window: a sidebar of pages (ui/pages PAGES), a message bar, and the PageHost every
page is given (ui/host.py): `notify` (non-modal message), `show_error` (dialog with Copy
details), `show_page`, `send_to_submit`, the last connection, the AppContext, the settings, and
`changes`, the one object of change signals (cache, history, plans, connections).

Pages are built lazily, the first time they are shown. Files dropped on the window go to the
first page whose PageSpec lists the file's suffix in `accepts` (and whose optional
`accepts_drop(path)` agrees): the window shows that page and calls its `open_file(path)`.
Window-wide shortcuts (F5, Ctrl+E, Ctrl+1..6) call the current page's optional methods listed in
ui/pages/__init__.py; Ctrl+F and Ctrl+C are handled by each DataTable.

Window geometry and state, the last page and the last connection are kept in a QSettings INI
file at paths.settings_path(), so tests (OPTOUT_DESK_HOME) and demo runs stay isolated.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from optout_desk import __version__, paths
from optout_desk.ui import tasks
from optout_desk.ui.errors import ErrorDialog
from optout_desk.ui.host import AppContext, Changes
from optout_desk.ui.pages import PAGES, SPREADSHEET_SUFFIXES, PageSpec
from optout_desk.ui.save_paths import SavePaths, documents_folder
from optout_desk.ui.widgets.message_bar import MessageBar

log = logging.getLogger(__name__)

TASK_WAIT_AT_CLOSE_MS = 5000


__all__ = ["AppContext", "MainWindow", "open_settings"]


def open_settings() -> QSettings:
    return QSettings(str(paths.settings_path()), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    """The window, and the PageHost (ui/host.py) of every page in it."""

    pageShown = Signal(str)

    def __init__(self, context: AppContext | None = None) -> None:
        super().__init__()
        self.context = context or AppContext()
        self.changes = Changes(self)
        self._update_title("")
        self.setAcceptDrops(True)
        self.settings = open_settings()
        self.exports = SavePaths(self.settings, self.context.temporary_data_dir)
        self._pages: dict[str, QWidget] = {}
        self._closing = False

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFrameShape(QListWidget.Shape.NoFrame)
        self.sidebar.setFixedWidth(170)
        for spec in PAGES:
            item = QListWidgetItem(self._icon(spec), spec.title)
            item.setData(Qt.ItemDataRole.UserRole, spec.key)
            item.setSizeHint(QSize(150, 34))
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._sidebar_row_changed)

        self.stack = QStackedWidget()
        for _spec in PAGES:
            self.stack.addWidget(QWidget())  # replaced by the real page on first show

        self.demo_badge = QLabel("Demo data")
        self.demo_badge.setObjectName("demoBadge")
        self.demo_badge.setToolTip(
            "Everything here comes from the built-in sandbox; nothing reaches a real platform."
        )
        self.demo_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.demo_badge.setStyleSheet(
            "#demoBadge { background: #d97706; color: white; font-weight: bold;"
            " border-radius: 4px; padding: 4px 8px; margin: 8px; }"
        )
        self.demo_badge.setVisible(self.context.demo)

        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.sidebar, 1)
        side.addWidget(self.demo_badge)
        side_widget = QWidget()
        side_widget.setLayout(side)

        right = QVBoxLayout()
        right.setContentsMargins(8, 8, 8, 8)
        right.addWidget(self.stack, 1)
        right_widget = QWidget()
        right_widget.setLayout(right)
        # The message bar floats over the top of the page instead of pushing it down, so a
        # message appearing never moves the control under the pointer.
        self.message_bar = MessageBar(right_widget)
        self.message_bar.shown.connect(self._place_message_bar)
        right_widget.installEventFilter(self)
        self._right = right_widget

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(side_widget)
        layout.addWidget(right_widget, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.resize(1280, 800)
        self._restore_geometry()

    # --- construction ----------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._right and event.type() == QEvent.Type.Resize:
            self._place_message_bar()
        return super().eventFilter(watched, event)

    @Slot()
    def _place_message_bar(self) -> None:
        width = max(200, self._right.width() - 16)
        height = self.message_bar.heightForWidth(width)
        self.message_bar.setGeometry(8, 8, width, max(height, self.message_bar.sizeHint().height()))
        self.message_bar.raise_()

    def _icon(self, spec: PageSpec) -> Any:
        pixmap = getattr(QStyle.StandardPixmap, spec.icon, QStyle.StandardPixmap.SP_FileIcon)
        return self.style().standardIcon(pixmap)

    def _update_title(self, page_title: str) -> None:
        # The platform adds the application's display name ("… — Opt-out Desk") itself: the
        # title names only the page, so the name is never shown twice.
        demo = " (demo data)" if self.context.demo else ""
        self.setWindowTitle(f"{page_title}{demo}" if page_title else demo.strip(" ()"))

    def _build_menus(self) -> None:
        menu_bar = self.menuBar()
        file_menu = menu_bar.addMenu("&File")
        open_action = QAction("&Open a spreadsheet…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self.choose_file)
        file_menu.addAction(open_action)
        self._add_action(file_menu, "&Fetch opt-outs", QKeySequence(Qt.Key.Key_F5), "fetch")
        self._add_action(file_menu, "&Export the rows shown…", QKeySequence("Ctrl+E"),
                         "export_shown")
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        go_menu = menu_bar.addMenu("&Go")
        for number, spec in enumerate(PAGES, start=1):
            action = QAction(spec.title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setData(spec.key)
            action.triggered.connect(self._go_action)
            go_menu.addAction(action)

        help_menu = menu_bar.addMenu("&Help")
        about = QAction("&About Opt-out Desk", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def _add_action(self, menu: Any, text: str, keys: QKeySequence, method: str) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        action.setData(method)
        action.triggered.connect(self._page_action)
        menu.addAction(action)
        return action

    # --- pages -----------------------------------------------------------------------------

    @property
    def current_key(self) -> str:
        return PAGES[max(self.sidebar.currentRow(), 0)].key

    def page(self, key: str) -> QWidget:
        """The page for `key`, built on first use."""
        if key not in self._pages:
            position = [s.key for s in PAGES].index(key)
            widget = PAGES[position].factory(self)
            widget.setObjectName(f"page-{key}")
            old = self.stack.widget(position)
            if old is not None:
                self.stack.removeWidget(old)
                old.deleteLater()
            self.stack.insertWidget(position, widget)
            self._pages[key] = widget
        return self._pages[key]

    def built_pages(self) -> dict[str, QWidget]:
        return dict(self._pages)

    def current_page(self) -> QWidget:
        return self.page(self.current_key)

    def show_page(self, key: str) -> QWidget:
        position = [s.key for s in PAGES].index(key)
        if self.sidebar.currentRow() != position:
            self.sidebar.setCurrentRow(position)  # -> _sidebar_row_changed
        else:
            self._sidebar_row_changed(position)
        return self._pages[key]

    @Slot(int)
    def _sidebar_row_changed(self, row: int) -> None:
        if row < 0:
            return
        key = PAGES[row].key
        page = self.page(key)
        self.stack.setCurrentWidget(page)
        self._update_title(PAGES[row].title)
        self.settings.setValue("window/last_page", key)
        on_shown = getattr(page, "on_shown", None)
        if on_shown is not None:
            on_shown()
        self.pageShown.emit(key)

    @Slot()
    def _go_action(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.show_page(str(action.data()))

    @Slot()
    def _page_action(self) -> None:
        action = self.sender()
        if not isinstance(action, QAction):
            return
        method = getattr(self.current_page(), str(action.data()), None)
        if method is not None:
            method()

    @property
    def connectionsChanged(self) -> Any:  # older listeners; pages use changes.connectionsChanged
        return self.changes.connectionsChanged

    def send_to_submit(self, inputs: list[Any], origin: str,
                       against: str | None = None) -> None:
        """Open the Submit page with these PlanInputs (from Reconcile, the Inbox…); `against`
        is the connection they were reconciled against (ticked first there)."""
        page = self.show_page("submit")
        load = getattr(page, "load_inputs", None)
        if load is not None:
            load(inputs, origin, against)
        else:
            self.notify("The Submit page is not built yet; nothing was sent.", "warning")

    @Slot()
    def choose_file(self) -> None:
        """Ctrl+O: the current page opens a file if it can, else Reconcile does."""
        page = self.current_page()
        chooser = getattr(page, "choose_file", None)
        if chooser is None:
            chooser = getattr(self.show_page("reconcile"), "choose_file", None)
        if chooser is not None:
            chooser()

    # --- last connection (shared by pages) -------------------------------------------------

    def last_connection(self) -> str:
        return str(self.settings.value("state/last_connection", "") or "")

    def set_last_connection(self, name: str) -> None:
        self.settings.setValue("state/last_connection", name)

    # --- messages and errors ---------------------------------------------------------------

    def notify(self, text: str, level: str = "info") -> None:
        """Tier 1: a non-modal message for an expected problem or a result."""
        log.info("notify %s: %s", level, text)
        self.message_bar.show_message(text, level)

    def show_error(self, exc: BaseException, title: str = "The operation failed") -> ErrorDialog:
        """Tier 2: a failed operation, as a dialog with Copy details."""
        if not isinstance(exc, Exception) or type(exc).__module__.startswith("optout_desk"):
            log.info("error dialog: %s", type(exc).__name__)
        else:
            log.error("error dialog for an unexpected exception",
                      exc_info=(type(exc), exc, exc.__traceback__))
        return ErrorDialog.show_exception(self, exc, title)

    @Slot()
    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Opt-out Desk",
            f"<h3>Opt-out Desk {__version__}</h3>"
            "<p>Keeps opt-outs in sync across survey, email and SMS platforms and your CRM.</p>"
            f"<p>Data folder: {paths.data_dir()}</p>",
        )

    # --- drag and drop ---------------------------------------------------------------------

    def page_for_file(self, path: Path) -> str | None:
        suffix = path.suffix.lower()
        for spec in PAGES:
            if suffix in spec.accepts:
                page = self._pages.get(spec.key)
                check = getattr(page, "accepts_drop", None) if page is not None else None
                if check is None or check(path):
                    return spec.key
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and self.page_for_file(Path(u.toLocalFile())) for u in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and self.open_file(Path(url.toLocalFile())):
                event.acceptProposedAction()
                return
        event.ignore()

    def open_file(self, path: Path) -> bool:
        key = self.page_for_file(path)
        if key is None:
            kinds = ", ".join(SPREADSHEET_SUFFIXES)
            self.notify(f"Opt-out Desk cannot open {path.name}: drop a spreadsheet or text "
                        f"file ({kinds}).", "warning")
            return False
        page = self.show_page(key)
        opener = getattr(page, "open_file", None)
        if opener is None:
            self.notify(f"The {key} page cannot open files yet.", "warning")
            return False
        opener(path)
        return True

    # --- state -----------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def restore_last_page(self) -> None:
        key = str(self.settings.value("window/last_page", "") or "")
        keys = [s.key for s in PAGES]
        self.show_page(key if key in keys else ("optouts" if self.context.demo else
                                                "connections"))

    @classmethod
    def ask_about_demo_exports(cls, parent: QWidget, files: list[Path]) -> str:
        """"move", "delete" or "cancel" for exports in the demo's temporary folder (tests
        patch this)."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Exported files would be deleted")
        names = "\n".join(f"• {path.name}" for path in files[:8])
        more = f"\n… and {len(files) - 8} more" if len(files) > 8 else ""
        box.setText(f"{len(files)} exported file{'s are' if len(files) != 1 else ' is'} in the "
                    "demo's temporary folder, which is deleted when the desk quits:\n"
                    f"{names}{more}")
        move = box.addButton(f"Move to {documents_folder().name} and quit",
                             QMessageBox.ButtonRole.AcceptRole)
        delete = box.addButton("Quit and delete them", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(move)
        box.exec()
        clicked = box.clickedButton()
        return "move" if clicked is move else "delete" if clicked is delete else "cancel"

    def closeEvent(self, event: QCloseEvent) -> None:
        at_risk = self.exports.at_risk() if self.context.temporary_data_dir else []
        if at_risk:
            answer = self.ask_about_demo_exports(self, at_risk)
            if answer == "cancel":
                event.ignore()
                return
            if answer == "move":
                moved = self.exports.rescue()
                log.info("moved %d demo export(s) to the documents folder", len(moved))
        self._closing = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        for page in self._pages.values():
            shutdown = getattr(page, "shutdown", None)
            if shutdown is not None:
                shutdown()
        tasks.cancel_all_and_wait(TASK_WAIT_AT_CLOSE_MS)
        super().closeEvent(event)
