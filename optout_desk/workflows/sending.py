"""Sending a plan's payloads: as many at once as the destination takes, journaled around every
request (the clients pace themselves: requests per second is a connection setting).

The calling thread owns the journal: it commits a batch `sent` BEFORE handing its payload to a
worker thread, and `acknowledged` or `failed` when the worker's answer comes back. Workers only
talk HTTP. So the order "written down, then sent" holds whatever the concurrency, and SQLite is
only ever used from one thread.

Stopping: a failure that concerns the whole account or platform (refused keys, a missing role,
a platform down after retries) stops handing out new payloads; a refusal of one payload's
content (`PayloadRejectedError`: the platform named what is wrong with these values) fails that
payload and the others go on — unless the same refusal comes back CONSECUTIVE_REFUSALS times in
a row, which is the account's problem, not the values'. Cancel stops handing out new payloads;
those in flight finish and are recorded. Either way the plan stays resumable.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from optout_desk.connectors.base import Pacing, SendResult, SubmittingClient
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    MissingRoleError,
    PayloadRejectedError,
    RejectedRequestError,
)
from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken
from optout_desk.store import journal

log = logging.getLogger(__name__)

# The same payload refusal this many times in a row stops the run (the account is wrong, not
# every value: do not make 100,000 requests to learn it).
CONSECUTIVE_REFUSALS = 10
# A failure of these kinds will not go away by sending again: the run stops at once.
NON_RETRYABLE = (AuthenticationError, MissingRoleError, RejectedRequestError,
                 ConfigurationError)


@dataclass
class SendTally:
    sent: int = 0  # requests made by this run
    resent: int = 0  # of those, repeats of a payload whose outcome a crash left unknown
    acknowledged: int = 0
    records: int = 0  # identifiers in payloads acknowledged by this run
    failed: int = 0
    error: str = ""  # why the run stopped, when a failure stopped it
    cancelled: bool = False
    refusals: tuple[tuple[str, ...], int] = ((), 0)  # the last refusal's codes, in a row


def stop_reason(exc: ConnectorError, seq: int) -> str:
    if isinstance(exc, NON_RETRYABLE):
        return f"batch {seq} was refused: {exc.message}"
    # Retries ran out: the platform may or may not have applied it; a resume re-sends it when
    # the destination says that is harmless.
    return f"batch {seq} failed after retries: {exc.message}"


def send_batches(
    db: sqlite3.Connection,
    plan_id: int,
    todo: Sequence[journal.JournalBatch],
    client: SubmittingClient,
    pacing: Pacing,
    cancel: CancelToken,
    on_acknowledged: Callable[[journal.JournalBatch], None],
) -> SendTally:
    """Send `todo` in order, at most `pacing.concurrency` at once and `pacing.per_second` a
    second; journal each; `on_acknowledged(batch)` after each acknowledgement (progress)."""
    tally = SendTally()
    pending = iter(todo)
    in_flight: dict[Future[SendResult], journal.JournalBatch] = {}
    stopping = False
    workers = max(1, pacing.concurrency)
    pool = ThreadPoolExecutor(workers, thread_name_prefix=f"send-plan-{plan_id}")
    try:
        while True:
            while not stopping and len(in_flight) < workers:
                if cancel.cancelled:
                    tally.cancelled = stopping = True
                    break
                batch = next(pending, None)
                if batch is None:
                    break
                tally.resent += journal.mark_sent(db, plan_id, batch.seq)
                tally.sent += 1
                in_flight[pool.submit(client.send, batch.payload, cancel)] = batch
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                batch = in_flight.pop(future)
                if _record(db, plan_id, batch, future, tally):
                    on_acknowledged(batch)
                elif tally.error:
                    stopping = True
    finally:
        # Pages in flight finish (their answers are recorded above, unless an unexpected
        # error unwinds: then they stay `sent`, and a resume knows their outcome is unknown).
        pool.shutdown(wait=True, cancel_futures=True)
    return tally


def _record(db: sqlite3.Connection, plan_id: int, batch: journal.JournalBatch,
            future: Future[SendResult], tally: SendTally) -> bool:
    """Journal one answer; True when acknowledged."""
    try:
        result = future.result()
    except Cancelled:
        # Cancelled while waiting out a retry: no answer was accepted; a resume sends it.
        journal.mark_failed(db, plan_id, batch.seq, error="Cancelled while waiting to retry.")
        tally.failed += 1
        tally.cancelled = True
        return False
    except ConnectorError as exc:
        journal.mark_failed(
            db, plan_id, batch.seq, error=exc.message,
            http_status=getattr(exc, "http_status", None),
            body_status=getattr(exc, "body_status", None),
        )
        tally.failed += 1
        log.warning("plan %d batch %d failed: %s", plan_id, batch.seq, type(exc).__name__)
        if isinstance(exc, PayloadRejectedError):
            codes, times = tally.refusals
            tally.refusals = (exc.codes, times + 1 if exc.codes == codes else 1)
            if tally.refusals[1] >= CONSECUTIVE_REFUSALS and not tally.error:
                tally.error = (f"the last {tally.refusals[1]} requests were all refused the "
                               f"same way; stopped to check the connection: {exc.message}")
        elif not tally.error:
            tally.error = stop_reason(exc, batch.seq)
        return False
    message = result.message
    if result.warnings:
        message += " Warnings: " + "; ".join(result.warnings)
    journal.mark_acknowledged(
        db, plan_id, batch.seq, http_status=result.http_status,
        body_status=result.body_status, message=message, attempts=result.attempts,
    )
    tally.acknowledged += 1
    tally.records += batch.size
    tally.refusals = ((), 0)
    return True
