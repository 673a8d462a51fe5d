"""What every simulated service shares: the `handle` protocol the loopback server calls, and the
bookkeeping around one request (latency, injected faults, the request log, requests in flight).

The CheckMarket simulator predates this module and keeps its own copy of the same ideas; the
myKaarma and Dynamic Yield simulators build on `ServiceBase`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import orjson

from optout_desk.sandbox.checkmarket import Reply, RequestLogEntry


class SimulatedService(Protocol):
    """A simulator's state as the HTTP server sees it: one call per request, on the request's
    own thread. `target` is the request line's path with query; header names are lower-case."""

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> Reply: ...


def dumps(value: object) -> bytes:
    # orjson: compact UTF-8 like json.dumps(ensure_ascii=False, separators=(",", ":")), and
    # several times faster on a 500-item look-up answer, which benchmarks pay per batch.
    return orjson.dumps(value)


def json_reply(status: int, value: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, dumps(value), headers=dict(headers or {}))


@dataclass(slots=True)
class Fault:
    kind: str
    remaining: int
    path_prefix: str
    retry_after_s: float


class ServiceBase:
    """Latency, faults, the request log and a count of requests in flight, for a subclass that
    implements `_answer` (and `_fault_reply` for the fault kinds it names in FAULT_KINDS)."""

    FAULT_KINDS: tuple[str, ...] = ()

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._in_flight = 0
        self.latency_ms = latency_ms
        self.max_in_flight = 0  # the most requests handled at the same moment since reset
        self.request_log: list[RequestLogEntry] = []
        self.base_url = ""  # set by the server once it listens

    # -- switches and inspection ---------------------------------------------------------

    def inject_faults(self, kind: str, count: int, path_prefix: str = "",
                      retry_after_s: float = 0.2) -> None:
        """Answer the next `count` requests whose path (no leading "/") starts with
        `path_prefix` with fault `kind`; `retry_after_s` is the Retry-After of "429"."""
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(self.FAULT_KINDS)}")
        with self._lock:
            self._faults.append(Fault(kind, count, path_prefix.lstrip("/"), retry_after_s))

    def set_latency(self, ms: float) -> None:
        self.latency_ms = ms

    def reset_in_flight(self) -> None:
        with self._lock:
            self.max_in_flight = self._in_flight

    def requests_to(self, path_prefix: str) -> list[RequestLogEntry]:
        with self._lock:
            return [e for e in self.request_log if e.path.startswith(path_prefix.lstrip("/"))]

    # -- one request ---------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        arrived = time.monotonic()
        path, _, query = target.partition("?")
        path = path.lstrip("/")
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency_ms > 0:
                time.sleep(self.latency_ms / 1000)  # on the request's own thread
            fault = self._take_fault(path)
            try:
                if fault is not None:
                    reply = self._fault_reply(fault, path)
                else:
                    reply = self._answer(method, path, query, headers, body)
            except Exception as exc:  # a simulator bug must still answer like a server would
                reply = json_reply(500, {"message": f"Sandbox error: {type(exc).__name__}"})
        finally:
            with self._lock:
                self._in_flight -= 1
        entry = RequestLogEntry(method, path, query, 0 if reply.drop else reply.status,
                                headers.get("host", ""), arrived, self._log_key(headers))
        with self._lock:
            self.request_log.append(entry)
        return reply

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    return fault
            return None

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Reply:
        raise NotImplementedError

    def _fault_reply(self, fault: Fault, path: str) -> Reply:
        raise NotImplementedError

    def _log_key(self, headers: dict[str, str]) -> str:
        """Who sent the request, for the simulator's own log ("" when nobody said)."""
        return ""


def common_fault(fault: Fault) -> Reply | None:
    """The fault kinds every simulator answers the same way: 500, 503, drop, 429."""
    if fault.kind == "drop":
        return Reply(0, drop=True)
    if fault.kind == "429":
        return json_reply(429, {"message": "Too many requests."},
                          {"Retry-After": f"{fault.retry_after_s:g}"})
    if fault.kind in ("500", "503"):
        text = ("The service is temporarily unavailable." if fault.kind == "503"
                else "An unexpected error occurred.")
        return json_reply(int(fault.kind), {"message": text})
    return None
