"""The webhook receiver: a Starlette app that stores each delivery before it answers 2xx.

Routes:
- `POST /hooks/<token>`: a delivery to one inbox source. The token is hashed and compared in
  constant time with every source's stored hash; an unknown one gets the same 404 as any
  unknown path. The body is read as a stream and refused with 413 as soon as it passes 1 MB
  (a Content-Length above that is refused before reading), or 408 when it does not arrive in
  time; a slow client holds up only its own request (the server is asynchronous). A body the
  parser refuses gets 400 with the reason and nothing is stored. An event is committed through
  the group-commit writer (synchronous=FULL) before the 2xx: "stored" (new) or "duplicate"
  (one more delivery of an event already there), with its delivery count.
- `GET /api/v1/events?after=CURSOR&limit=N`: the relay's pull API, behind a bearer token (only
  its hash is stored, setting api_token_hash). Events created or re-delivered after the cursor,
  oldest first, and the cursor to ask with next.
- `GET /healthz`: "ok", for a reverse proxy or a service manager.

Logs name the source, never a token (and, as everywhere, never an email or phone).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optout_desk.store import inbox
from optout_desk.store.db import connect
from optout_desk.webhooks import payloads
from optout_desk.webhooks.writer import GroupCommitWriter

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
BODY_TIMEOUT_S = 30.0
DIRECTORY_TTL_S = 1.0
MAX_PAGE = 1000
DEFAULT_PAGE = 500
HEARTBEAT_S = 15.0

# Activates a CheckMarket webhook from its handshake; returns (hook state, message). Runs on a
# worker thread after the handshake was acknowledged.
HandshakeHandler = Callable[[inbox.Source, payloads.Handshake], tuple[str, str]]


class _TooLarge(Exception):
    pass


def _not_found() -> JSONResponse:
    return JSONResponse({"error": "Not found."}, status_code=404)


class SourceDirectory:
    """The sources and the API token hash, re-read from the database at most once a second
    (so `inbox add` in another process works without a restart). Used on the event loop's
    thread only."""

    def __init__(self, db_path: Path | None) -> None:
        self._db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self._sources: list[inbox.Source] = []
        self._api_hash: str | None = None
        self._read_at = -1e9

    def _refresh(self) -> None:
        if time.monotonic() - self._read_at < DIRECTORY_TTL_S:
            return
        if self._conn is None:
            self._conn = connect(self._db_path)
        self._sources = inbox.list_sources(self._conn)
        self._api_hash = inbox.get_setting(self._conn, inbox.API_TOKEN_HASH)
        self._read_at = time.monotonic()

    def lookup(self, token: str) -> inbox.Source | None:
        self._refresh()
        presented = inbox.hash_token(token)
        found = None
        for source in self._sources:  # every hash is compared: no early exit to time
            if hmac.compare_digest(source.token_hash, presented):
                found = source
        return found

    def api_token_ok(self, token: str) -> bool:
        self._refresh()
        expected = self._api_hash or ""
        return bool(expected) and hmac.compare_digest(expected, inbox.hash_token(token))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class ReceiverStats:
    stored: int = 0
    duplicates: int = 0
    refused: int = 0


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge()
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(BODY_TIMEOUT_S):
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLarge()
            chunks.append(chunk)
    return b"".join(chunks)


def create_app(writer: GroupCommitWriter, *, db_path: Path | None = None,
               on_handshake: HandshakeHandler | None = None,
               heartbeat: dict[str, Any] | None = None) -> Starlette:
    """The ASGI app over a started writer (the runner owns both). `heartbeat` (the
    receiver's URL and pid) is written to the inbox settings every HEARTBEAT_S, so the
    desktop can tell a receiver is running in another process."""
    directory = SourceDirectory(db_path)
    stats = ReceiverStats()

    async def hook(request: Request) -> Response:
        source = directory.lookup(request.path_params["token"])
        if source is None:
            log.info("refused a delivery to an unknown hook URL")
            return _not_found()
        try:
            body = await _read_body(request)
        except _TooLarge:
            stats.refused += 1
            log.info("source %s: refused a body over %d bytes", source.name, MAX_BODY_BYTES)
            return JSONResponse(
                {"error": f"The body is larger than {MAX_BODY_BYTES:,} bytes."},
                status_code=413, headers={"Connection": "close"})
        except TimeoutError:
            stats.refused += 1
            log.info("source %s: the body did not arrive within %g s", source.name,
                     BODY_TIMEOUT_S)
            return JSONResponse({"error": "The body did not arrive in time."},
                                status_code=408, headers={"Connection": "close"})
        except ClientDisconnect:
            return Response(status_code=400)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            parsed = payloads.parse(source.system, source.name, body, headers)
        except payloads.PayloadError as exc:
            stats.refused += 1
            log.info("source %s: refused a delivery: %s", source.name, exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=400)
        if isinstance(parsed, payloads.Ignored):
            log.info("source %s: ignored a %s event", source.name, parsed.event[:60])
            return JSONResponse({"status": "ignored", "event": parsed.event})
        if isinstance(parsed, payloads.Handshake):
            return await _handshake(source, parsed)
        received = inbox.utc_now()
        event = parsed
        try:
            recorded = await writer.run(lambda conn: inbox.record(conn, event, received))
        except Exception as exc:
            log.error("source %s: a delivery could not be stored: %s", source.name,
                      type(exc).__name__)
            return JSONResponse({"error": "The event could not be stored; send it again."},
                                status_code=503)
        if recorded.created:
            stats.stored += 1
        else:
            stats.duplicates += 1
        log.debug("source %s: %s %s (deliveries %d)", source.name, event.event,
                  "stored" if recorded.created else "duplicate", recorded.deliveries)
        return JSONResponse({"status": "stored" if recorded.created else "duplicate",
                             "deliveries": recorded.deliveries})

    async def _handshake(source: inbox.Source, shake: payloads.Handshake) -> Response:
        name, webhook_id = source.name, shake.webhook_id
        message = ("Webhook.Created received; activating." if on_handshake else
                   "Webhook.Created received; this receiver has no way to activate it.")
        try:
            await writer.run(lambda conn: inbox.set_hook(
                conn, name, state=inbox.HOOK_REGISTERED, message=message,
                webhook_id=webhook_id))
        except Exception as exc:
            log.error("source %s: the handshake could not be stored: %s", name,
                      type(exc).__name__)
            return JSONResponse({"error": "The handshake could not be stored."},
                                status_code=503)
        log.info("source %s: Webhook.Created for webhook %d", name, webhook_id)
        task = BackgroundTask(_activate, source, shake) if on_handshake else None
        return JSONResponse({"status": "handshake received", "webhook_id": webhook_id},
                            background=task)

    async def _activate(source: inbox.Source, shake: payloads.Handshake) -> None:
        assert on_handshake is not None
        try:
            state, message = await asyncio.to_thread(on_handshake, source, shake)
        except Exception as exc:  # the handler reports its own failures; this is a bug
            log.exception("source %s: activation crashed", source.name)
            state, message = inbox.HOOK_FAILED, f"Activation failed ({type(exc).__name__})."
        name, webhook_id = source.name, shake.webhook_id
        await writer.run(lambda conn: inbox.set_hook(conn, name, state=state, message=message,
                                                     webhook_id=webhook_id))
        log.info("source %s: webhook %d is now %s", name, webhook_id, state)

    async def events(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or \
                not directory.api_token_ok(token.strip()):
            log.info("refused a pull request without a valid token")
            return JSONResponse({"error": "A valid bearer token is required."},
                                status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="optout-desk"'})
        try:
            after = int(request.query_params.get("after", "0"))
            limit = int(request.query_params.get("limit", str(DEFAULT_PAGE)))
        except ValueError:
            return JSONResponse({"error": "after and limit must be whole numbers."},
                                status_code=400)
        if after < 0 or not 1 <= limit <= MAX_PAGE:
            return JSONResponse({"error": f"after must be 0 or more and limit from 1 to "
                                 f"{MAX_PAGE}."}, status_code=400)
        entries, total = await asyncio.to_thread(_changes, db_path, after, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return JSONResponse({
            "events": [inbox.entry_to_json(entry) for entry in entries],
            "next_after": entries[-1].seq if entries else after,
            "more": more,
            "total": total,
        })

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(_request: Request, _exc: Exception) -> Response:
        return _not_found()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        beat = asyncio.create_task(_heartbeat(writer, heartbeat)) if heartbeat else None
        try:
            yield
        finally:
            if beat is not None:
                beat.cancel()
            directory.close()

    app = Starlette(
        routes=[
            Route("/hooks/{token}", hook, methods=["POST"]),
            Route("/api/v1/events", events, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.stats = stats
    return app


async def _http_error(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _not_found()
    return JSONResponse({"error": "The request cannot be served."}, status_code=status)


def _beat(text: str) -> Callable[[sqlite3.Connection], None]:
    return lambda conn: inbox.set_setting(conn, inbox.HEARTBEAT, text)


async def _heartbeat(writer: GroupCommitWriter, what: dict[str, Any]) -> None:
    while True:
        try:
            await writer.run(_beat(json.dumps({**what, "at": time.time()})))
        except Exception as exc:  # a missed beat only makes the banner show
            log.warning("receiver heartbeat not written: %s", type(exc).__name__)
        await asyncio.sleep(HEARTBEAT_S)


def _changes(db_path: Path | None, after: int, limit: int) -> tuple[list[inbox.Entry], int]:
    conn = connect(db_path)
    try:
        return inbox.changes_after(conn, after, limit), inbox.count_events(conn)
    finally:
        conn.close()


def describe(app: Any) -> ReceiverStats:
    """The app's counters (for the runner's summary line and tests)."""
    stats: ReceiverStats = app.state.stats
    return stats
