"""Demo mode (`optout-desk --demo`): every simulated platform in-process (workflows/demo.py:
two CheckMarket accounts, myKaarma and Dynamic Yield), with ready demo connections.

Where demo data lives: unless the user named a data folder (`--data-dir` or OPTOUT_DESK_HOME),
the demo runs in a temporary data folder that is deleted on quit, so it never adds "demo-…"
connections or cached lists to the operator's real database. If a folder was named, the demo
uses it (the user asked for it) and updates the demo connections there to the new sandbox port.
Demo keys are held in memory only (secrets.store_secret(session_only=True)). A demo CRM export
(`demo/demo-crm-export.xlsx` in the data folder) is listed under Reconcile's recent files.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from optout_desk import paths
from optout_desk.core.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

def user_named_data_dir() -> bool:
    """True when --data-dir or OPTOUT_DESK_HOME chose the data folder (not the default)."""
    default = Path(platformdirs.user_data_dir(paths.APP_NAME, appauthor=False))
    return paths.data_dir().resolve() != default.resolve()


def use_temporary_data_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="optout-desk-demo-"))
    paths.set_data_dir(folder)
    return folder


def remove_temporary_data_dir(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class DemoStarted:
    services: Any  # workflows.demo.DemoServices
    connections: list[str]
    spreadsheet: Path | None = None  # a demo CRM export to reconcile against the first one
    inbox: Any = None  # ui/inbox_demo.InboxDemo: a local receiver and a trickle of webhooks

    @property
    def sandboxes(self) -> list[Any]:
        return [self.services.checkmarket, *self.services.extra]


def start_demo(_progress: ProgressCallback, cancel: CancelToken) -> DemoStarted:
    """Start every simulator and point the demo connections at them (a worker thread): two
    CheckMarket accounts, myKaarma and Dynamic Yield."""
    from optout_desk.workflows import demo

    services = demo.start_services(cancel=cancel)
    try:
        for connection in services.connections:
            cancel.raise_if_cancelled()
            demo.ensure_connection(connection, session_only=True)
    except BaseException:
        services.stop()
        raise
    return DemoStarted(services, [c.name for c in services.connections],
                       _write_spreadsheet(services.checkmarket),
                       _start_inbox(services.checkmarket, services.connections[0].name))


def _start_inbox(sandbox: Any, connection: str) -> Any:
    from optout_desk.ui.inbox_demo import start_inbox_demo

    try:
        return start_inbox_demo(sandbox, connection)
    except Exception:  # the rest of the demo works without it
        log.warning("the demo inbox could not start", exc_info=True)
        return None


def _write_spreadsheet(sandbox: Any) -> Path | None:
    """The demo CRM export in the data folder, so Reconcile has something to open."""
    from optout_desk.sandbox.crm import FILE_NAME, write_demo_crm

    try:
        return write_demo_crm(paths.data_dir() / "demo" / FILE_NAME, sandbox.state.optouts())
    except OSError:  # the demo still works without it
        log.warning("the demo spreadsheet could not be written", exc_info=True)
        return None


def stop_demo(started: DemoStarted | None) -> None:
    if started is None:
        return
    if started.inbox is not None:
        started.inbox.stop()
    started.services.stop()
