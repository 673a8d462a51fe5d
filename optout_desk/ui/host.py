"""What a page may ask of the window it lives in: the narrow `PageHost` protocol, and `Changes`,
the one object whose signals say that something pages show has changed.

Pages take a PageHost (the MainWindow is one; a test can pass a small fake) instead of the
whole window, and never probe it with getattr. Whoever changes what other pages show emits the
matching signal on `host.changes` once the change is stored:

- `cacheChanged(connection)` — a connection's cached opt-out list changed (a fetch, a
  submission's verify that re-fetched, a removed connection); "" means "any connection";
- `historyChanged()` — a run was recorded in the history (fetch, reconcile, submit, a failed
  read);
- `plansChanged()` — a submission plan was journaled, resumed, finished or discarded;
- `connectionsChanged()` — a connection was added, edited or removed, or demo connections
  appeared.

Every page that shows one of these connects to the signal and refreshes (or marks itself stale
and refreshes when next shown), so no page has to know which other page made the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, QSettings, Signal

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from optout_desk.core.plan import PlanInput
    from optout_desk.ui.save_paths import SavePaths


@dataclass
class AppContext:
    """What the pages need to know about this run of the app."""

    demo: bool = False
    sandbox: Any = None  # optout_desk.sandbox.server.Sandbox in demo mode, once started
    demo_connections: list[str] = field(default_factory=list)
    temporary_data_dir: Path | None = None  # demo's throwaway data folder, removed on quit


class Changes(QObject):
    """The change signals every page listens to (see the module docstring)."""

    cacheChanged = Signal(str)
    historyChanged = Signal()
    plansChanged = Signal()
    connectionsChanged = Signal()


@runtime_checkable
class PageHost(Protocol):
    """Everything a page may use of its window (isinstance() checks that a widget's window
    is one: a dialog's is not)."""

    context: AppContext
    changes: Changes
    settings: QSettings
    exports: SavePaths  # where save dialogs start; demo exports the quit would delete

    def notify(self, text: str, level: str = "info") -> None:
        """Tier 1: a non-modal message (info, success, warning, error) in the message bar."""

    def show_error(self, exc: BaseException, title: str = "The operation failed") -> Any:
        """Tier 2: a failed operation, as a dialog with Copy details."""

    def show_page(self, key: str) -> QWidget:
        """Make the page `key` current (building it on first use) and return it."""

    def send_to_submit(self, inputs: list[PlanInput], origin: str,
                       against: str | None = None) -> None:
        """Hand identifiers to the Submit page; `against` names the connection they were
        reconciled against (so Submit can preselect it and say so)."""

    def last_connection(self) -> str:
        """The connection the operator worked with last (shared by the pages)."""

    def set_last_connection(self, name: str) -> None: ...
