"""Fetch a connection's opt-out list into the local cache.

The first fetch of a scope is full; later ones are incremental, asking the platform only for
opt-outs since the cached watermark (minus an overlap, see store.cache.incremental_since). A
scope cached under an older record-key scheme is fetched in full once (store.cache:
`needs_full_fetch`). Everything fetched is applied to the cache in one transaction at the very
end, so a cancelled, failed or incomplete fetch (the connector's rows do not add up to the
platform's count: IncompleteFetchError) leaves the cached list exactly as it was. Every run
goes into the history.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

from optout_desk.connectors import registry
from optout_desk.connectors.errors import IncompleteFetchError
from optout_desk.core.errors import BadInputError, Cancelled, DeskError
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.records import canonical_timestamp
from optout_desk.store import cache, connections, history
from optout_desk.store.db import connect
from optout_desk.workflows.connections import open_connection_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    connection: str
    scope: str
    full: bool
    fetched: int
    added: int
    total: int
    pages: int
    watermark: str | None
    synced_at: str
    seconds: float = 0.0


def scope_for(survey_id: int | None) -> str:
    """The cache scope of a list: "" for the account-wide list, else the survey id."""
    return "" if survey_id is None else str(survey_id)


def sync_optouts(
    connection: str,
    *,
    full: bool = False,
    since: str | None = None,
    survey_id: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> SyncResult:
    """Fetch `connection`'s opt-outs into the cache and return what changed.

    `since` (a date or timestamp) asks only for opt-outs from then on and merges them; `full`
    re-fetches everything and replaces the cached list; neither means incremental from the
    watermark (full on the first fetch).
    """
    if full and since:
        raise BadInputError("Choose either a full fetch or a start date, not both.")
    since_ts = _parse_since(since) if since else None
    scope = scope_for(survey_id)
    db = connect()
    started = time.monotonic()
    try:
        profile = connections.get(db, connection)
        assert profile.id is not None
        state = cache.sync_state(db, profile.id, scope)
        if full or (since_ts is None and (state.last_synced_at is None
                                          or state.needs_full_fetch)):
            ask_since, replace = None, True
            if state.needs_full_fetch and not full:
                log.info("fetch %s scope=%r: cached under an older key scheme; fetching in full",
                         connection, scope)
        elif since_ts is not None:
            ask_since, replace = since_ts, False
        else:
            ask_since, replace = cache.incremental_since(state), False
        pages = 0

        def count_pages(report: Progress) -> None:
            nonlocal pages
            pages = report.done
            progress(report)

        _, client = open_connection_client(connection)
        try:
            with closing(client):
                records = registry.as_lister(client, profile.system).list_optouts(
                    since=ask_since, survey_id=survey_id, progress=count_pages, cancel=cancel
                )
        except IncompleteFetchError as exc:
            raise exc.left_unchanged(state.count) from None
        # Last chance to cancel: after this line the cache changes, all at once.
        cancel.raise_if_cancelled()
        synced_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        applied = cache.apply_fetch(
            db, profile.id, scope, records, replace=replace, synced_at=synced_at
        )
        result = SyncResult(
            connection=connection, scope=scope, full=replace, fetched=len(records),
            added=applied.added, total=applied.total, pages=pages,
            watermark=cache.sync_state(db, profile.id, scope).watermark, synced_at=synced_at,
            seconds=time.monotonic() - started,
        )
        log.info(
            "fetch %s scope=%r full=%s: %d fetched, %d new, %d cached, %d pages, %.1f s",
            connection, scope, replace, result.fetched, result.added, result.total, pages,
            result.seconds,
        )
        _record(db, connection, "ok", "", {
            "fetched": result.fetched, "added": result.added, "total": result.total,
            "pages": pages,
        })
        return result
    except Cancelled:
        _record(db, connection, "cancelled", "Cancelled; the cached list was left unchanged.", {})
        raise
    except DeskError as exc:
        _record(db, connection, "failed", exc.message, {})
        raise
    finally:
        db.close()


def _parse_since(text: str) -> str:
    try:
        return canonical_timestamp(text)
    except ValueError:
        raise BadInputError(
            f"'{text}' is not a date; give it as YYYY-MM-DD (for example 2026-01-31)."
        ) from None


def _record(
    db: sqlite3.Connection, connection: str, outcome: str, message: str, counts: dict[str, int]
) -> None:
    """History is evidence, but failing to write it must not hide the fetch's own outcome."""
    try:
        history.record_run(
            db, kind="fetch", connection=connection, source_file=None, source_sha256=None,
            counts=counts, outcome=outcome, message=message,
        )
    except Exception:
        log.exception("could not record the fetch in the history")
