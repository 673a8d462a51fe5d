"""The page registry: what the sidebar lists, in order, and how each page is built.

A page is any QWidget made by `factory(host)`, where host is the window as a ui.host.PageHost:
everything a page may ask of the window. Pages are created lazily, the first time they are
shown. Optional methods a page may implement (the window calls them when present):

- `on_shown()`                      — the page became the current one
- `focus_search()`                  — Ctrl+F
- `fetch()`                         — F5
- `copy_selection()` / `export_shown()` — Ctrl+C / Ctrl+E
- `accepts_drop(path) -> bool` and `open_file(path)` — a file dropped on the window goes to the
  first page whose PageSpec lists its suffix in `accepts` (and whose accepts_drop, if any,
  agrees); the window shows that page and calls open_file(path).
- `choose_file()`                   — Ctrl+O (the window falls back to Reconcile's)
- `load_inputs(inputs, origin, against=None)` — the Submit page, via host.send_to_submit
- `shutdown()`                      — the window is closing

Pages not built yet are honest placeholders saying what will come.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from optout_desk.files.formats import SPREADSHEET_EXTENSIONS

if TYPE_CHECKING:
    from optout_desk.ui.main_window import MainWindow

# What a dropped file may be to open it on the Reconcile page: the tables the reader opens
# (a .txt may as well be a list of identifiers, so it is opened from a page, not dropped).
SPREADSHEET_SUFFIXES = SPREADSHEET_EXTENSIONS


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    icon: str  # a QStyle.StandardPixmap name, e.g. "SP_DriveNetIcon"
    factory: Callable[[MainWindow], QWidget]
    accepts: tuple[str, ...] = field(default=())  # file suffixes this page opens when dropped


class PlaceholderPage(QWidget):
    """A page that is not built yet, saying what will come instead of pretending."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        heading = QLabel(f"<h2>{title}</h2>")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body = QLabel(text)
        body.setWordWrap(True)
        body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(heading)
        layout.addWidget(body)
        layout.addStretch(2)
        self.text = text


def _placeholder(title: str, text: str) -> Callable[[MainWindow], QWidget]:
    def factory(window: MainWindow) -> QWidget:
        return PlaceholderPage(title, text)

    return factory


def _page_or_placeholder(
    module: str, class_name: str, title: str, text: str
) -> Callable[[MainWindow], QWidget]:
    """The real page once its module exists (later issues add them), else a placeholder.

    Only a missing module means "not built yet": an error inside an existing page module
    propagates, it is not hidden behind a placeholder.
    """

    def factory(window: MainWindow) -> QWidget:
        name = f"optout_desk.ui.pages.{module}"
        if importlib.util.find_spec(name) is None:
            return PlaceholderPage(title, text)
        page_class = getattr(importlib.import_module(name), class_name)
        page: QWidget = page_class(window)
        return page

    return factory


_connections = _page_or_placeholder(
    "connections", "ConnectionsPage", "Connections",
    "Add the platforms you work with; their keys go to the system keyring.",
)
_optouts = _page_or_placeholder(
    "optouts", "OptOutsPage", "Opt-outs",
    "Fetch a platform's opt-out list into a fast, searchable table.",
)
_reconcile = _page_or_placeholder(
    "reconcile", "ReconcilePage", "Reconcile",
    "Reconcile arrives with the spreadsheet import: drop your CRM export here to see which "
    "opt-outs to submit, which are missing from the CRM, and why.",
)
_submit = _page_or_placeholder(
    "submit", "SubmitPage", "Submit",
    "Submit arrives with the journaled bulk submission: preview the exact opt-outs, send them "
    "in batches, resume after a crash, and verify by re-fetching.",
)
_inbox = _page_or_placeholder(
    "inbox", "InboxPage", "Inbox",
    "Opt-outs pushed by CheckMarket and LOX24 webhooks land here, including resubscribes for "
    "a person to decide about.",
)
_history = _page_or_placeholder(
    "history", "HistoryPage", "History",
    "History arrives with the submission journal: every fetch, reconcile and submit run, who "
    "ran it and when, kept as evidence.",
)


PAGES: list[PageSpec] = [
    PageSpec("connections", "Connections", "SP_DriveNetIcon", _connections),
    PageSpec("optouts", "Opt-outs", "SP_FileDialogDetailedView", _optouts),
    PageSpec("reconcile", "Reconcile", "SP_BrowserReload", _reconcile, SPREADSHEET_SUFFIXES),
    PageSpec("submit", "Submit", "SP_ArrowUp", _submit),
    PageSpec("inbox", "Inbox", "SP_DirHomeIcon", _inbox),
    PageSpec("history", "History", "SP_FileDialogContentsView", _history),
]


def page_spec(key: str) -> PageSpec:
    for spec in PAGES:
        if spec.key == key:
            return spec
    raise KeyError(key)
