"""An overall deadline per HTTP request, and cancel that reaches a request while it waits.

httpx only has per-operation timeouts: a server that sends one byte every few seconds keeps a
request alive forever, and a blocked read does not notice the user's Cancel. So every socket
the default transport opens is wrapped (`DeadlineBackend`, an httpcore network backend): each
read and write waits in slices of at most POLL_S, and between slices checks the deadline and
the cancel token of the request running on this thread (`watching`). Past the deadline a read
fails as a timeout (the session reports it as PlatformTimeoutError); a cancel raises Cancelled.
Either way httpcore closes the connection, so no half-read answer is reused.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpcore

from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken

# How long one read or write waits before the deadline and the cancel are looked at again.
POLL_S = 0.1

@dataclass
class RequestClock:
    """The request running on a thread: when it must be over, and its cancel token."""

    deadline: float  # time.monotonic()
    cancel: CancelToken
    expired: bool = False  # set once the deadline cut the request short

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.cancel.cancelled:
            raise Cancelled()
        if self.remaining() <= 0:
            self.expired = True
            raise httpcore.ReadTimeout("the overall deadline passed")


_current = threading.local()


@contextlib.contextmanager
def watching(seconds: float, cancel: CancelToken) -> Iterator[RequestClock]:
    """Every socket read and write of this thread, for the block's duration, ends by
    `seconds` from now and notices `cancel` within POLL_S."""
    clock = RequestClock(time.monotonic() + seconds, cancel)
    previous = getattr(_current, "clock", None)
    _current.clock = clock
    try:
        yield clock
    finally:
        _current.clock = previous


def _clock() -> RequestClock | None:
    return typing.cast("RequestClock | None", getattr(_current, "clock", None))


class _Stream(httpcore.NetworkStream):
    """A socket stream whose reads and writes wait in slices (see the module docstring)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        clock = _clock()
        if clock is None:
            return self._inner.read(max_bytes, timeout)
        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            clock.check()
            try:
                return self._inner.read(max_bytes, _slice(clock, give_up))
            except httpcore.ReadTimeout:
                if give_up is not None and time.monotonic() >= give_up:
                    raise  # the per-read timeout itself

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        clock = _clock()
        if clock is not None:
            # One bounded call, not slices: a timed-out send leaves unknown how much went out.
            clock.check()
            left = max(0.001, clock.remaining())
            timeout = left if timeout is None else min(timeout, left)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


def _slice(clock: RequestClock, give_up: float | None) -> float:
    """The next wait: POLL_S, or less when the deadline or the per-read timeout is nearer."""
    now = time.monotonic()
    ends = [clock.deadline - now, POLL_S]
    if give_up is not None:
        ends.append(give_up - now)
    return max(0.001, min(ends))


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with every stream wrapped in `_Stream`; a connect waits no
    longer than the request's deadline leaves."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None,
                    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _bounded(timeout), local_address,
                                               socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None,
                            ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _bounded(timeout),
                                                       socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _bounded(timeout: float | None) -> float | None:
    clock = _clock()
    if clock is None:
        return timeout
    clock.check()
    left = max(0.001, clock.remaining())
    return left if timeout is None else min(timeout, left)


def install(transport: object) -> bool:
    """Put DeadlineBackend under an httpx.HTTPTransport's connection pool. httpx does not
    expose the backend, so this reaches into its pool (httpx 0.27-0.29 keep it at
    `_pool._network_backend`); False when the transport is not built that way, so the caller
    can say the deadline is missing instead of silently going without."""
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = DeadlineBackend(pool._network_backend)
    return True
