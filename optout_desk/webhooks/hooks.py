"""`POST /hooks/<token>`: one delivery to one inbox source, as a plain ASGI endpoint.

This is the receiver's hot path, so it speaks ASGI directly (Starlette's request, routing and
response objects cost more than everything else a delivery needs together; Starlette still
serves every other route, see receiver.py). What it does, in order:

- the token is looked up by its hash (directory.py, constant-time comparison); an unknown one
  gets the same 404 as any unknown path, before a byte of the body is read;
- the body is read as it arrives: a Content-Length over MAX_BODY_BYTES is refused with 413 at
  once, a body that grows past it while being read is refused with 413 then (nothing more is
  read), one that does not arrive within BODY_TIMEOUT_S gets 408; a slow client holds up only
  its own request (the server is asynchronous);
- a body the parser refuses gets 400 with the reason, and nothing is stored;
- an event is committed by the event store (event_store.py, synchronous=FULL) before the 2xx:
  "stored" (new) or "duplicate" (one more delivery of an event already there), with its
  delivery count; if it cannot be stored the answer is 503 and the platform sends it again.

Logs name the source, never a token (nor an email or a phone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from optout_desk.store import inbox
from optout_desk.webhooks import payloads
from optout_desk.webhooks.directory import ReceiverStats, SourceDirectory
from optout_desk.webhooks.writer import GroupCommitWriter

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
BODY_TIMEOUT_S = 30.0
PREFIX = "/hooks/"
NOT_FOUND = b'{"error":"Not found."}'

# Activates a CheckMarket webhook from its handshake; returns (hook state, message). Runs on a
# worker thread after the handshake was acknowledged.
HandshakeHandler = Callable[[inbox.Source, payloads.Handshake], tuple[str, str]]
# What the endpoint does once the answer went out (CheckMarket's activation), if anything.
_Then = Callable[[], Awaitable[None]] | None


def hook_token(path: str) -> str | None:
    """The token of a `/hooks/<token>` path (what Starlette's `/hooks/{token}` matches)."""
    if path.startswith(PREFIX):
        token = path[len(PREFIX):]
        if token and "/" not in token:
            return token
    return None


class EventRecorder(Protocol):
    """Stores one delivery, returning once it is committed (event_store.EventStore)."""

    async def record(self, row: inbox.EventRow) -> inbox.Recorded: ...


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class _Headers(Mapping[str, str]):
    """The request's headers by lower-case name (the last one of a repeated name), decoded
    only when the parser asks (LOX24 never does)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        wanted = name.lower().encode("latin-1")
        found = None
        for key, value in self._raw:
            if key == wanted:
                found = value
        if found is None:
            raise KeyError(name)
        return found.decode("latin-1")

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.decode("latin-1") for key, _value in self._raw))

    def __len__(self) -> int:
        return len({key for key, _value in self._raw})


async def answer(send: Send, status: int, body: bytes, *, close: bool = False,
                 content_type: bytes = b"application/json") -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if close:  # the rest of the request is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


class BodyDeadlines:
    """When each request still reading its body must have it all (BODY_TIMEOUT_S after it
    started): one task looks every SWEEP_S and cancels the late ones, which then answer 408.
    A timer per request (asyncio.timeout) would cost more than the rest of reading a small
    body; this costs a dict entry. A late body is noticed up to SWEEP_S after its deadline."""

    SWEEP_S = 1.0

    def __init__(self, timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def read(self, receive: Receive, declared: int | None) -> bytes:
        """The whole body: _TooLarge past MAX_BODY_BYTES (declared or while reading),
        TimeoutError when late, _Disconnected when the client went away."""
        if declared is not None and declared > MAX_BODY_BYTES:
            raise _TooLarge()
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._reading[task] = loop.time() + self.timeout_s
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            # The sweeper's cancel lands here: it only cancels a task waiting in receive().
            if task in self._late:
                self._late.discard(task)
                task.uncancel()
                raise TimeoutError() from None
            raise
        finally:
            del self._reading[task]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _sweep(self) -> None:
        try:
            while self._reading:
                await asyncio.sleep(self.SWEEP_S)
                now = asyncio.get_running_loop().time()
                for task, deadline in list(self._reading.items()):
                    if deadline <= now and task not in self._late:
                        self._late.add(task)
                        task.cancel()
        finally:
            self._sweeper = None


class HookEndpoint:
    """The ASGI app for `POST /hooks/<token>` (the token is read from the path)."""

    def __init__(self, writer: GroupCommitWriter, events: EventRecorder,
                 directory: SourceDirectory, stats: ReceiverStats,
                 on_handshake: HandshakeHandler | None = None) -> None:
        self._writer = writer  # the handshake's writes
        self._events = events
        self._directory = directory
        self._stats = stats
        self._on_handshake = on_handshake
        self.deadlines = BodyDeadlines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = hook_token(scope["path"])
        source = self._directory.lookup(token) if token is not None else None
        if source is None:
            log.info("refused a delivery to an unknown hook URL")
            await answer(send, 404, NOT_FOUND)
            return
        try:
            status, body, close, then = await self._deliver(source, scope, receive)
        except Exception as exc:  # a bug: the sender gets a 500 and sends again
            log.error("source %s: a delivery failed: %s", source.name, type(exc).__name__)
            status, body, close, then = 500, b'{"error":"The request cannot be served."}', \
                False, None
        await answer(send, status, body, close=close)
        if then is not None:  # after the answer went out (CheckMarket's activation)
            await then()

    async def _deliver(self, source: inbox.Source, scope: Scope,
                       receive: Receive) -> tuple[int, bytes, bool, _Then]:
        """(status, body, close the connection, what to do once the answer is sent)"""
        stats = self._stats
        headers = scope["headers"]
        try:
            body = await self.deadlines.read(receive, _declared_length(headers))
        except _TooLarge:
            stats.refused += 1
            log.info("source %s: refused a body over %d bytes", source.name, MAX_BODY_BYTES)
            return 413, orjson.dumps(
                {"error": f"The body is larger than {MAX_BODY_BYTES:,} bytes."}), True, None
        except TimeoutError:
            stats.refused += 1
            log.info("source %s: the body did not arrive within %g s", source.name,
                     BODY_TIMEOUT_S)
            return 408, b'{"error":"The body did not arrive in time."}', True, None
        except _Disconnected:  # nobody is listening; uvicorn drops the answer
            return 400, b'{"error":"The client went away."}', True, None
        try:
            parsed = payloads.parse(source.system, source.name, body, _Headers(headers))
        except payloads.PayloadError as exc:
            stats.refused += 1
            log.info("source %s: refused a delivery: %s", source.name, exc.reason)
            return 400, orjson.dumps({"error": exc.reason}), False, None
        if isinstance(parsed, payloads.Ignored):
            log.info("source %s: ignored a %s event", source.name, parsed.event[:60])
            return 200, orjson.dumps({"status": "ignored", "event": parsed.event}), False, None
        if isinstance(parsed, payloads.Handshake):
            return await self._handshake(source, parsed)
        try:
            recorded = await self._events.record(inbox.event_row(parsed))
        except Exception as exc:
            log.error("source %s: a delivery could not be stored: %s", source.name,
                      type(exc).__name__)
            return 503, b'{"error":"The event could not be stored; send it again."}', \
                False, None
        if recorded.created:
            stats.stored += 1
        else:
            stats.duplicates += 1
        log.debug("source %s: %s %s (deliveries %d)", source.name, parsed.event,
                  "stored" if recorded.created else "duplicate", recorded.deliveries)
        return 200, b'{"status":"%s","deliveries":%d}' % (
            b"stored" if recorded.created else b"duplicate", recorded.deliveries), False, None

    async def _handshake(self, source: inbox.Source, shake: payloads.Handshake
                         ) -> tuple[int, bytes, bool, _Then]:
        name, webhook_id = source.name, shake.webhook_id
        message = ("Webhook.Created received; activating." if self._on_handshake else
                   "Webhook.Created received; this receiver has no way to activate it.")
        try:
            await self._writer.run(lambda conn: inbox.set_hook(
                conn, name, state=inbox.HOOK_REGISTERED, message=message,
                webhook_id=webhook_id))
        except Exception as exc:
            log.error("source %s: the handshake could not be stored: %s", name,
                      type(exc).__name__)
            return 503, b'{"error":"The handshake could not be stored."}', False, None
        log.info("source %s: Webhook.Created for webhook %d", name, webhook_id)
        then = partial(self._activate, source, shake) if self._on_handshake else None
        return 200, orjson.dumps({"status": "handshake received", "webhook_id": webhook_id}), \
            False, then

    async def _activate(self, source: inbox.Source, shake: payloads.Handshake) -> None:
        assert self._on_handshake is not None
        try:
            state, message = await asyncio.to_thread(self._on_handshake, source, shake)
        except Exception as exc:  # the handler reports its own failures; this is a bug
            log.exception("source %s: activation crashed", source.name)
            state, message = inbox.HOOK_FAILED, f"Activation failed ({type(exc).__name__})."
        name, webhook_id = source.name, shake.webhook_id
        try:
            await self._writer.run(lambda conn: inbox.set_hook(
                conn, name, state=state, message=message, webhook_id=webhook_id))
        except Exception as exc:  # the receiver is stopping: the state stays "registered"
            log.error("source %s: webhook %d's state could not be stored: %s", name,
                      webhook_id, type(exc).__name__)
            return
        log.info("source %s: webhook %d is now %s", name, webhook_id, state)
