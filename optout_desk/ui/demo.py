"""Demo mode (`optout-desk --demo`): the sandbox in-process, with ready demo connections.

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

SYSTEM = "checkmarket"


@dataclass(frozen=True)
class DemoSandbox:
    connection: str
    records: int
    seed: int


DEMO_SANDBOXES = (
    DemoSandbox("demo-eu", records=5000, seed=7),
    DemoSandbox("demo-us", records=1200, seed=8),
)
DEMO_LATENCY_MS = 5.0


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
    sandboxes: list[Any]
    connections: list[str]
    spreadsheet: Path | None = None  # a demo CRM export to reconcile against the first one
    inbox: Any = None  # ui/inbox_demo.InboxDemo: a local receiver and a trickle of webhooks


def start_demo(_progress: ProgressCallback, cancel: CancelToken) -> DemoStarted:
    """Start the sandboxes and point the demo connections at them (runs in a worker thread)."""
    from optout_desk.sandbox.server import Sandbox, SandboxConfig

    started: list[Any] = []
    names: list[str] = []
    try:
        for demo in DEMO_SANDBOXES:
            cancel.raise_if_cancelled()
            sandbox = Sandbox(SandboxConfig(records=demo.records, seed=demo.seed,
                                            latency_ms=DEMO_LATENCY_MS)).start()
            started.append(sandbox)
            _ensure_connection(demo.connection, sandbox)
            names.append(demo.connection)
    except BaseException:
        for sandbox in started:
            sandbox.stop()
        raise
    log.info("demo mode: %d sandbox(es) running", len(started))
    return DemoStarted(started, names, _write_spreadsheet(started[0]) if started else None,
                       _start_inbox(started[0], names[0]) if started else None)


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


def _ensure_connection(name: str, sandbox: Any) -> None:
    from optout_desk import secrets
    from optout_desk.store import connections as store_connections
    from optout_desk.store.db import connect
    from optout_desk.workflows.connections import add_connection

    keys = {"MASTER_KEY": sandbox.master_key, "KEY": sandbox.key}
    conn = connect()
    try:
        existing = {p.name: p for p in store_connections.list_all(conn)}
        if name in existing:
            profile = existing[name]
            profile.base_url = sandbox.base_url
            store_connections.update(conn, profile)
            for field, value in keys.items():
                secrets.store_secret(name, field, value, session_only=True)
            return
    finally:
        conn.close()
    add_connection(name, SYSTEM, base_url=sandbox.base_url, secrets=keys, session_only=True)


def stop_demo(started: DemoStarted | None) -> None:
    if started is None:
        return
    if started.inbox is not None:
        started.inbox.stop()
    for sandbox in started.sandboxes:
        try:
            sandbox.stop()
        except Exception:  # stopping must not turn a clean quit into a crash
            log.exception("stopping a demo sandbox failed")
