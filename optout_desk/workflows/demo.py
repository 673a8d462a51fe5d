"""The demo: every simulated platform on loopback, and a demo connection to each.

Used by the desktop app's demo mode (`optout-desk --demo`, keys for this session only) and by
`optout-desk sandbox --demo` (keys in the keyring, so other commands can use them while the
sandbox runs). A demo connection that already exists is pointed at the new ports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from optout_desk.core.progress import NEVER_CANCELLED, CancelToken

log = logging.getLogger(__name__)

DEMO_LATENCY_MS = 5.0


@dataclass(frozen=True)
class DemoConnection:
    name: str
    system: str
    base_url: str
    secrets: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoServices:
    """What runs: the suite (CheckMarket, myKaarma, Dynamic Yield), more CheckMarket
    sandboxes, and the connections made for them."""

    suite: Any
    extra: list[Any]
    connections: list[DemoConnection]

    @property
    def checkmarket(self) -> Any:
        return self.suite.checkmarket

    def stop(self) -> None:
        for sandbox in self.extra:
            try:
                sandbox.stop()
            except Exception:  # stopping must not turn a clean quit into a crash
                log.exception("stopping a demo sandbox failed")
        try:
            self.suite.stop()
        except Exception:
            log.exception("stopping the demo simulators failed")


def start_services(*, checkmarket_records: int = 5000, seed: int = 7,
                   second_checkmarket: int | None = 1200, latency_ms: float = DEMO_LATENCY_MS,
                   cancel: CancelToken = NEVER_CANCELLED) -> DemoServices:
    """Start every simulator with demo data; the connections that reach them (not saved)."""
    from optout_desk.sandbox.server import Sandbox, SandboxConfig
    from optout_desk.sandbox.suite import SandboxSuite

    suite = SandboxSuite(checkmarket=Sandbox(SandboxConfig(
        records=checkmarket_records, seed=seed, latency_ms=latency_ms)), seed=seed,
        latency_ms=latency_ms)
    suite.start()
    extra: list[Any] = []
    try:
        cancel.raise_if_cancelled()
        cm, mk, dy = suite.checkmarket, suite.mykaarma, suite.dynamic_yield
        found = [
            DemoConnection("demo-eu", "checkmarket", cm.base_url,
                           {"MASTER_KEY": cm.master_key, "KEY": cm.key}),
        ]
        if second_checkmarket is not None:
            other = Sandbox(SandboxConfig(records=second_checkmarket, seed=seed + 1,
                                          latency_ms=latency_ms)).start()
            extra.append(other)
            found.append(DemoConnection("demo-us", "checkmarket", other.base_url,
                                        {"MASTER_KEY": other.master_key, "KEY": other.key}))
        found += [
            DemoConnection("demo-mykaarma", "mykaarma", mk.base_url,
                           {"USERNAME": mk.username, "PASSWORD": mk.password},
                           {"department_uuid": mk.department_uuid,
                            "entries_per_request": 50, "lookup_batch_size": 200}),
            DemoConnection("demo-dy", "dynamic-yield", dy.eu_url, {"API_KEY": dy.eu_key},
                           {"concurrency": 8}),
        ]
    except BaseException:
        for sandbox in extra:
            sandbox.stop()
        suite.stop()
        raise
    log.info("demo: %d simulators running", 3 + len(extra))
    return DemoServices(suite, extra, found)


def ensure_connection(demo: DemoConnection, *, session_only: bool) -> None:
    """Add the demo connection, or point an existing one at the demo's new address and keys."""
    from optout_desk import secrets
    from optout_desk.store import connections as store_connections
    from optout_desk.store.db import connect
    from optout_desk.workflows.connections import add_connection

    conn = connect()
    try:
        existing = {p.name: p for p in store_connections.list_all(conn)}
        profile = existing.get(demo.name)
        if profile is not None:
            profile.base_url = demo.base_url
            profile.region = ""
            profile.settings = {**profile.settings, **demo.settings}
            store_connections.update(conn, profile)
    finally:
        conn.close()
    if profile is not None:
        for secret_field, value in demo.secrets.items():
            secrets.store_secret(demo.name, secret_field, value, session_only=session_only)
        return
    add_connection(demo.name, demo.system, base_url=demo.base_url, secrets=demo.secrets,
                   settings=demo.settings, session_only=session_only)


def environment_lines(connections: list[DemoConnection]) -> list[str]:
    """`export OPTOUT_DESK_SECRET_…=…` lines for shells without a keyring."""
    from optout_desk.secrets import env_var_name

    return [f"export {env_var_name(c.name, f)}={value}" for c in connections
            for f, value in c.secrets.items()]
