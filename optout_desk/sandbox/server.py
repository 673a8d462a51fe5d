"""A real HTTP server on loopback that plays CheckMarket API v3 (see sandbox/checkmarket.py).

Used by `optout-desk --demo`, `optout-desk sandbox`, the integration tests and the benchmarks.
Each connection gets its own thread (keep-alive HTTP/1.1), so latency added per request does not
serialise concurrent clients.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from optout_desk.sandbox.checkmarket import ALL_ROLES, CheckMarketState
from optout_desk.sandbox.service import SimulatedService


@dataclass
class SandboxConfig:
    records: int = 500
    seed: int = 1
    latency_ms: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    surveys: int = 5
    max_page_size: int = 1000  # $top above this -> 400 with a body error
    # Links.Next on another host alias, as the vendor sample does; "{port}" is replaced by the
    # port the sandbox listens on, e.g. "http://localhost:{port}/".
    next_link_base: str | None = None
    throttle_per_minute: int | None = None  # per key; excess -> 429 + ThrottleException body
    throttle_window_s: float = 60.0  # the "minute" (tests shorten it)
    master_key: str | None = None  # demo keys; random when None
    key: str | None = None
    # Worse-than-documented platforms (sandbox/checkmarket.py's docstring); all off by default.
    page_cap: int | None = None  # serve at most this many rows per page, whatever $top says
    limit_echoes_top: bool = False  # with page_cap: Meta.Limit lies, echoing the $top asked
    short_page_at: int | None = None  # the answer at this $skip is short (Meta unchanged)
    short_page_rows: int = 0  # ...and holds this many rows
    drip_s: float = 0.0  # write every answer one byte at a time, this many seconds apart
    arrivals: int = 0  # opt-outs that arrive while a client pages
    arrivals_per_request: int = 1
    posted_optouts: str = "distinct"  # or contact-zero/-none/-huge (one batch timestamp)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server_version = "CheckMarketSandbox/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.state.handle(self.command, self.path, headers, body)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.drip_s > 0:
            self._drip(reply.body, reply.drip_s)
        else:
            self.wfile.write(reply.body)

    def _drip(self, body: bytes, seconds: float) -> None:
        """One byte at a time: each read of a client gets data in time, the answer never ends
        in time. Stops when the client hangs up."""
        try:
            for index in range(len(body)):
                self.wfile.write(body[index:index + 1])
                time.sleep(seconds)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the state keeps a request log; stderr noise would fail strict test runs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: SimulatedService) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up mid-answer is normal for a test server: stay quiet."""


class Sandbox:
    """The simulator: `with Sandbox(SandboxConfig(records=250)) as sb: sb.base_url …`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        c = self.config
        self.state = CheckMarketState(
            records=c.records, seed=c.seed, surveys=c.surveys, max_page_size=c.max_page_size,
            throttle_per_minute=c.throttle_per_minute, throttle_window_s=c.throttle_window_s,
            latency_ms=c.latency_ms, page_cap=c.page_cap, limit_echoes_top=c.limit_echoes_top,
            short_page_at=c.short_page_at, short_page_rows=c.short_page_rows, drip_s=c.drip_s,
            arrivals=c.arrivals, arrivals_per_request=c.arrivals_per_request,
            posted_optouts=c.posted_optouts,
        )
        self.master_key = c.master_key or "sbx-master-" + secrets.token_hex(8)
        self.key = c.key or "sbx-key-" + secrets.token_hex(8)
        self.state.add_key(self.master_key, self.key, set(ALL_ROLES))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.port = 0

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        server = _Server((self.config.host, self.config.port), self.state)
        self._server = server
        self.port = int(server.server_address[1])
        self.base_url = f"http://{self.config.host}:{self.port}/"
        self.state.base_url = self.base_url
        if self.config.next_link_base:
            self.state.next_link_base = self.config.next_link_base.replace(
                "{port}", str(self.port))
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.1}, name=f"sandbox-{self.port}", daemon=True)
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

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(base_url={self.base_url!r}, records={self.config.records})"
