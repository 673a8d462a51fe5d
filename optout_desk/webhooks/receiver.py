"""The webhook receiver: a Starlette app that stores each delivery before it answers 2xx.

Routes:
- `POST /hooks/<token>`: a delivery to one inbox source (hooks.py: stored with
  synchronous=FULL before the 2xx, deduplicated; 400/404/408/413 for what cannot be used). It
  is the hot path, so ReceiverApp hands it to its plain ASGI endpoint before Starlette's
  routing; every other request, a GET to a hook URL included (405), goes through Starlette.
- `GET /api/v1/events?after=CURSOR&limit=N`: the relay's pull API, behind a bearer token (only
  its hash is stored, setting api_token_hash). Events created or re-delivered after the cursor,
  oldest first, and the cursor to ask with next; with the total, the newest cursor (last_seq)
  and the database's relay_id, so a puller can tell a page is whole and that its cursor
  belongs to this store.
- `GET /healthz`: "ok", for a reverse proxy or a service manager.

Logs name the source, never a token (and, as everywhere, never an email or phone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from optout_desk.core.records import STORABLE_INTEGERS
from optout_desk.store import inbox
from optout_desk.store.db import connect
from optout_desk.webhooks.directory import DIRECTORY_TTL_S, ReceiverStats, SourceDirectory
from optout_desk.webhooks.hooks import (
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    NOT_FOUND,
    EventRecorder,
    HandshakeHandler,
    HookEndpoint,
    hook_token,
)
from optout_desk.webhooks.writer import GroupCommitWriter

log = logging.getLogger(__name__)

# Re-exported: where they were before the hook endpoint had its own module.
__all__ = ["BODY_TIMEOUT_S", "DIRECTORY_TTL_S", "MAX_BODY_BYTES", "HandshakeHandler",
           "ReceiverApp", "ReceiverStats", "SourceDirectory", "create_app", "describe"]

MAX_PAGE = 1000
MAX_CURSOR = STORABLE_INTEGERS[-1]  # a larger one cannot be compared with a seq
DEFAULT_PAGE = 500
HEARTBEAT_S = 15.0


def _not_found() -> Response:
    return Response(NOT_FOUND, status_code=404, media_type="application/json")


def create_app(writer: GroupCommitWriter, event_store: EventRecorder, *,
               db_path: Path | None = None,
               on_handshake: HandshakeHandler | None = None,
               heartbeat: dict[str, Any] | None = None) -> ReceiverApp:
    """The ASGI app over a started writer (its few writes: heartbeat, webhook states) and
    event store (every delivery); the runner owns both. `heartbeat` (the
    receiver's URL and pid) is written to the inbox settings every HEARTBEAT_S, so the
    desktop can tell a receiver is running in another process."""
    directory = SourceDirectory(db_path)
    stats = ReceiverStats()
    hooks = HookEndpoint(writer, event_store, directory, stats, on_handshake)

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
        if not 0 <= after <= MAX_CURSOR or not 1 <= limit <= MAX_PAGE:
            return JSONResponse({"error": f"after must be from 0 to {MAX_CURSOR} and limit "
                                 f"from 1 to {MAX_PAGE}."}, status_code=400)
        changes = await asyncio.to_thread(_changes, db_path, after, limit + 1)
        entries = changes.entries[:limit]
        return JSONResponse({
            "events": [inbox.entry_to_json(entry) for entry in entries],
            "next_after": entries[-1].seq if entries else after,
            "more": len(changes.entries) > limit,
            "total": changes.total,
            "last_seq": changes.last_seq,
            "relay_id": changes.relay_id,
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
            # ReceiverApp sends a hook URL's POSTs straight to `hooks`: Starlette sees only
            # the other methods, and answers them 405 as before.
            Route("/hooks/{token}", hooks, methods=["POST"]),
            Route("/api/v1/events", events, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.stats = stats
    return ReceiverApp(hooks, app)


class ReceiverApp:
    """The receiver's ASGI app: `POST /hooks/<token>` straight to the hook endpoint, every
    other request (and the lifespan) to the Starlette app."""

    def __init__(self, hooks: HookEndpoint, app: Starlette) -> None:
        self.hooks, self.app, self.state = hooks, app, app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and \
                hook_token(scope["path"]) is not None:
            await self.hooks(scope, receive, send)
        else:
            await self.app(scope, receive, send)


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


@dataclass(frozen=True)
class _Changes:
    entries: list[inbox.Entry]
    total: int
    last_seq: int
    relay_id: str


def _changes(db_path: Path | None, after: int, limit: int) -> _Changes:
    """The page, the total and the newest cursor from one snapshot (one read transaction), so
    a client can check that the pages it got add up to the total."""
    conn = connect(db_path)
    try:
        # Made (once) before the snapshot: a write inside a read transaction could fail on
        # a concurrent commit.
        relay_id = inbox.relay_id(conn)
        conn.execute("BEGIN")
        try:
            return _Changes(inbox.changes_after(conn, after, limit), inbox.count_events(conn),
                            inbox.last_seq(conn), relay_id)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def describe(app: Any) -> ReceiverStats:
    """The app's counters (for the runner's summary line and tests)."""
    stats: ReceiverStats = app.state.stats
    return stats
