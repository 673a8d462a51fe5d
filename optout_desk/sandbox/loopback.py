"""Serve any simulated service (sandbox/service.py) on 127.0.0.1, the way sandbox/server.py
serves CheckMarket: one thread per connection, keep-alive HTTP/1.1, a free port unless one is
given, stopped cleanly."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from optout_desk.sandbox.server import _Server
from optout_desk.sandbox.service import SimulatedService


class LoopbackServer:
    """`start()` listens and serves `state` on a background thread; `stop()` ends both."""

    def __init__(self, state: SimulatedService, *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "simulator") -> None:
        self.state = state
        self.host = host
        self.requested_port = port
        self.name = name
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """http://host:port (no trailing "/"); "" until started."""
        return f"http://{self.host}:{self.port}" if self._server is not None else ""

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server((self.host, self.requested_port), self.state)
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.1}, name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
