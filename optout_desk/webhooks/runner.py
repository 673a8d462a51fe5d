"""Running the receiver on uvicorn: in the foreground (`optout-desk receive`, stops cleanly on
SIGTERM or Ctrl+C, uvicorn's own signal handling), or on a thread (the desktop's "Receive
webhooks on this computer", demo mode, tests).

The listening socket is bound here, before uvicorn starts, so a port in use is a clear error
(uvicorn would log and exit the process). uvicorn's access log is off: its lines carry the
request path, and a hook's path is its secret. The event store's child process and the
group-commit writer start before the first request and stop after the last answer went out.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from optout_desk import paths
from optout_desk.core.errors import BadInputError
from optout_desk.store import inbox
from optout_desk.webhooks.event_store import EventStore
from optout_desk.webhooks.receiver import HandshakeHandler, create_app
from optout_desk.webhooks.writer import GroupCommitWriter

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ReceiverOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str | None = None  # how the platforms reach it (a reverse proxy's https URL)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def default_handshake_handler() -> HandshakeHandler:
    from optout_desk.workflows.inbox import activate_from_handshake

    return activate_from_handshake


def _note_stop(signum: int, _frame: object) -> None:
    log.info("webhook receiver stopping on signal %d", signum)


class Receiver:
    def __init__(self, options: ReceiverOptions | None = None, *, db_path: Path | None = None,
                 on_handshake: HandshakeHandler | None = None) -> None:
        self.options = options or ReceiverOptions()
        # Pinned now: every connection the receiver opens (writer, source directory, pull
        # API) uses the same database, whatever the process's data folder becomes later.
        self._db_path = db_path or paths.database_path()
        self._on_handshake = on_handshake or default_handshake_handler()
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._writer: GroupCommitWriter | None = None
        self._events: EventStore | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app: Any = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def local_url(self) -> str:
        scheme = "https" if self.options.ssl_certfile else "http"
        host = self.options.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"{scheme}://{shown}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where the platforms post: the public URL when given, else the local one."""
        return (self.options.public_url or self.local_url).rstrip("/")

    # -- life cycle ------------------------------------------------------------------------

    def _prepare(self) -> uvicorn.Server:
        options = self.options
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((options.host, options.port))
        except OSError as exc:
            sock.close()
            raise BadInputError(
                f"Cannot listen on {options.host}:{options.port} ({exc.strerror or exc}). "
                "Choose another --port (0 picks a free one) or stop what uses it.") from None
        sock.set_inheritable(True)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        try:
            writer = self._writer = GroupCommitWriter(self._db_path).start()
            events = self._events = EventStore(self._db_path).start()
        except Exception:  # the database cannot be written: nothing stays open
            self._finish()
            raise
        heartbeat = {"url": self.base_url, "pid": os.getpid()}
        self.app = create_app(writer, events, db_path=self._db_path,
                              on_handshake=self._on_handshake, heartbeat=heartbeat)
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="on",
            ssl_certfile=options.ssl_certfile, ssl_keyfile=options.ssl_keyfile,
            timeout_keep_alive=15, timeout_graceful_shutdown=10, limit_concurrency=2000,
            server_header=False, date_header=False,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def serve(self, on_listening: Callable[[], None] | None = None) -> None:
        """Serve in the foreground until SIGTERM or Ctrl+C (main thread). `on_listening` runs
        once the port is bound, before the first request is served."""
        server = self._prepare()
        assert self._socket is not None
        if on_listening is not None:
            on_listening()
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for
        # the handler that was there before it: with this one, a stop is a clean exit 0
        # (not a death by SIGTERM or a KeyboardInterrupt) and the writer is closed properly.
        stopping = {sig: signal.signal(sig, _note_stop) for sig in (signal.SIGINT,
                                                                    signal.SIGTERM)}
        try:
            server.run(sockets=[self._socket])
        finally:
            for sig, handler in stopping.items():
                signal.signal(sig, handler)
            self._finish()

    def start(self) -> Receiver:
        """Serve on a background thread; returns once it accepts connections."""
        server = self._prepare()
        sock = self._socket
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The webhook receiver did not start.")
            time.sleep(0.01)
        log.info("webhook receiver listening on %s", self.local_url)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(15)
            self._thread = None
        self._finish()

    def _finish(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            events.stop()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:  # tell the desktop nothing is receiving any more
                writer.run_sync(lambda conn: inbox.set_setting(conn, inbox.HEARTBEAT, "{}"),
                                timeout=5)
            except Exception:
                log.warning("could not clear the receiver heartbeat")
            writer.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._server = None
        log.info("webhook receiver stopped")
