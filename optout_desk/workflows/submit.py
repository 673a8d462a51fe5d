"""Guarded bulk submission: plan, journal, send batch by batch, verify, receipt, history.

The one irreversible thing the desk does, so every step leaves a record first:
1. `prepare_plan` freezes the identifiers into a Plan (core/plan.py) for the preview.
2. `save_plan` writes it to the journal; nothing is sent before that.
3. `execute_plan` claims the plan, re-checks it against its hash, and sends its unacknowledged
   batches one at a time, in order: each batch is committed `sent` before its POST and
   `acknowledged` or `failed` after it. A non-retryable failure stops the run and says why;
   Cancel stops after the batch in flight. Either way the plan stays resumable.
4. After the last batch the destination's list is re-fetched incrementally and each identifier
   is marked confirmed or not yet visible; a receipt is written and the run goes into history.

A resume is just `execute_plan` again: acknowledged batches are never sent twice; a batch that
was `sent` when the process died is sent again (the only repeat) and counted.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from optout_desk import paths
from optout_desk.connectors.checkmarket import CheckMarketClient
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MissingRoleError,
    RejectedRequestError,
)
from optout_desk.core.errors import BadInputError, DeskError
from optout_desk.core.identifiers import normalise_email, phone_normaliser
from optout_desk.core.plan import Destination, Plan, PlanInput, build_plan
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.files.formats import SPREADSHEET_EXTENSIONS
from optout_desk.files.lists import read_list_file as read_list_file  # for the CLI and GUI
from optout_desk.store import cache, connections, history, journal
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500  # CheckMarketSettings' default; a connection setting overrides it
RECEIPT_COLUMNS = (
    "identifier", "kind", "sent_as", "source_file", "row_number", "batch", "outcome",
    "platform_message", "confirmed",
)
# A failure of these kinds will not go away by sending again: the run stops at once.
NON_RETRYABLE = (AuthenticationError, MissingRoleError, RejectedRequestError)


class SubmitError(DeskError):
    """A plan cannot be sent (unknown, already completed, altered, being sent elsewhere)."""


@dataclass(frozen=True)
class SubmitOutcome:
    """What a run of `execute_plan` did, for the CLI summary, the GUI and tests."""

    plan_id: int
    plan_hash: str
    connection: str
    destination_label: str
    status: str                    # journal status after the run: completed|failed|pending
    total: int                     # identifiers in the plan
    batches: int                   # batches in the plan
    acknowledged: int              # batches acknowledged (in this run and earlier ones)
    failed: int
    remaining: int                 # batches still without an acknowledgement
    sent_this_run: int             # POSTs made by this run
    resent_after_interruption: int  # of those, repeats of a batch in flight at a crash
    submitted: int                 # identifiers in acknowledged batches
    cancelled: bool = False
    error: str = ""                # why the run stopped, when it failed
    verified: bool = False
    confirmed: int = 0
    unconfirmed: list[str] = field(default_factory=list)  # shown to the user, never logged
    verification_error: str = ""
    receipt_path: str | None = None
    run_id: int | None = None

    @property
    def short_hash(self) -> str:
        return self.plan_hash[:12]

    @property
    def resumable(self) -> bool:
        return self.status != journal.COMPLETED and self.remaining > 0

    def summary_lines(self) -> list[str]:
        """The outcome in plain sentences (no identifiers except the unconfirmed list's size)."""
        lines = [
            f"Plan {self.plan_id} ({self.short_hash}) to {self.destination_label}: "
            f"{self.acknowledged:,} of {self.batches:,} batches acknowledged, "
            f"{self.submitted:,} of {self.total:,} opt-outs submitted."
        ]
        if self.resent_after_interruption:
            n = self.resent_after_interruption
            lines.append(
                f"{n:,} batch{'es were' if n > 1 else ' was'} re-sent after an interruption; "
                "opt-outs are idempotent on CheckMarket."
            )
        if self.error:
            lines.append(f"Stopped: {self.error}")
        if self.cancelled:
            lines.append("Cancelled after the batch in flight.")
        if self.resumable:
            lines.append(
                f"{self.remaining:,} batch{'es' if self.remaining != 1 else ''} still to send: "
                f"resume with `optout-desk submit {self.connection} --resume`."
            )
        if self.verified:
            lines.append(
                f"Verified by re-fetching: {self.confirmed:,} confirmed, "
                f"{len(self.unconfirmed):,} not yet visible."
            )
        elif self.verification_error:
            lines.append(f"Not verified: {self.verification_error}")
        if self.receipt_path:
            lines.append(f"Receipt: {self.receipt_path}")
        return lines


# -- planning --------------------------------------------------------------------------------


# Files read through the spreadsheet import (columns detected); anything else is plain text,
# one identifier per line. One definition for the reader, the CLI and the GUI.
SPREADSHEET_SUFFIXES = SPREADSHEET_EXTENSIONS


def inputs_from_spreadsheet(
    path: Path, *, sheet: str | None = None, columns: Sequence[str] | None = None,
    region: str | None = None, progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[list[PlanInput], str, str]:
    """Every email and phone of a spreadsheet's detected (or named) columns, with its row
    number for the receipt: (inputs, source name, the file's SHA-256)."""
    from optout_desk.core.identifiers import cell_text
    from optout_desk.files.mapping import check_region, detect_columns, resolve_column
    from optout_desk.files.spreadsheet import read_table

    table = read_table(path, sheet=sheet, progress=progress, cancel=cancel)
    mapping = detect_columns(table)
    emails, phones = list(mapping.email_columns), list(mapping.phone_columns)
    if columns:
        chosen = [resolve_column(table, spec) for spec in columns]
        emails = [c for c in chosen if c in mapping.email_columns or _looks_like_email(table, c)]
        phones = [c for c in chosen if c not in emails]
    if not emails and not phones:
        raise BadInputError(
            f"No email or phone column was found in {path.name}; name one "
            "(--column on the command line)."
        )
    phone = phone_normaliser(check_region(region or mapping.region))
    inputs: list[PlanInput] = []
    for row, number in zip(table.rows, table.row_numbers, strict=True):
        for column in emails:
            text = cell_text(row[column] if column < len(row) else None)
            if text.strip():
                inputs.append(PlanInput(normalise_email(text), path.name, number))
        for column in phones:
            value = row[column] if column < len(row) else None
            text = cell_text(value)
            if text.strip():
                cell = value if isinstance(value, (str, int, float)) else text
                inputs.append(PlanInput(phone(cell), path.name, number))
    return inputs, path.name, table.sha256


def _looks_like_email(table: Any, column: int) -> bool:
    values = [r[column] for r in table.rows[:200] if column < len(r) and r[column] is not None]
    return sum("@" in str(v) for v in values) * 2 > len(values) > 0


def destination_for(profile: ConnectionProfile) -> Destination:
    host = urlsplit(profile.base_url).netloc or profile.base_url
    return Destination(profile.name, profile.system, host, profile.region)


def batch_size_for(profile: ConnectionProfile, override: int | None = None) -> int:
    size = override if override is not None else profile.settings.get("batch_size")
    if size is None:
        return DEFAULT_BATCH_SIZE
    try:
        value = int(size)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 100_000:
        raise BadInputError(f"The batch size must be between 1 and 100,000 (not {size}).")
    return value


def cached_keys(db: sqlite3.Connection, profile: ConnectionProfile, region: str = "US") -> set[str]:
    """The normalised keys of every email and phone on the connection's cached list."""
    assert profile.id is not None
    columns = cache.load_columns(db, profile.id, "")
    keys: set[str] = set()
    for text in columns.get("Email", []):
        if text:
            key = normalise_email(str(text)).key
            if key:
                keys.add(key)
    phone = phone_normaliser(region)
    for text in columns.get("Phone", []):
        if text:
            key = phone(str(text)).key
            if key:
                keys.add(key)
    return keys


def prepare_plan(
    connection: str, inputs: Iterable[PlanInput], *, batch_size: int | None = None
) -> Plan:
    """Freeze `inputs` into a plan for `connection`, leaving out what is already on its cached
    list. Nothing is stored or sent."""
    db = connect()
    try:
        profile = connections.get(db, connection)
        already = cached_keys(db, profile)
    finally:
        db.close()
    return build_plan(
        inputs, destination=destination_for(profile),
        batch_size=batch_size_for(profile, batch_size), already_on_destination=already,
    )


def save_plan(plan: Plan, *, source_file: str | None = None,
              source_sha256: str | None = None) -> int:
    """Journal the previewed plan (status pending); returns its id. Call once confirmed."""
    if not plan.batches:
        raise BadInputError("The plan sends nothing: every identifier was left out.")
    db = connect()
    try:
        plan_id = journal.save_plan(db, plan, source_file=source_file,
                                    source_sha256=source_sha256)
    finally:
        db.close()
    log.info("journaled plan %d (%s): %d identifiers in %d batches to %s", plan_id,
             plan.short_hash, plan.total, len(plan.batches), plan.destination.connection)
    return plan_id


# -- sending ---------------------------------------------------------------------------------


def execute_plan(
    plan_id: int,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    verify: bool = True,
    receipt: Path | None = None,
    open_client: Callable[[str], CheckMarketClient] | None = None,
) -> SubmitOutcome:
    """Send the plan's unacknowledged batches, verify, write the receipt, record the run.

    `open_client(connection)` makes the client (default: the connection's stored profile and
    secrets); benches and tests pass their own.
    """

    started = history.utc_now()
    db = connect()
    try:
        try:
            journal.check_batches_match(db, plan_id)
            journal.claim(db, plan_id)
        except journal.JournalError as exc:
            raise SubmitError(str(exc)) from None
        before = journal.summary(db, plan_id)
        todo = journal.unacknowledged_batches(db, plan_id)
        sent = resent = 0
        error = ""
        cancelled = False
        try:
            client = (open_client or _open_client)(before.connection)
        except DeskError as exc:
            journal.set_status(db, plan_id, journal.FAILED, exc.message)
            _record_run(db, plan_id, started, "failed", exc.message, None)
            raise
        done = before.acknowledged
        records = _submitted(db, plan_id)
        progress(Progress(done, before.batch_count, "batches", records=records))
        try:
            with client:
                for batch in todo:
                    if cancel.cancelled:
                        cancelled = True
                        break
                    resent += journal.mark_sent(db, plan_id, batch.seq)
                    sent += 1
                    try:
                        response = client.submit_optouts(
                            batch.payload.get("EmailAddresses", []),
                            batch.payload.get("PhoneNumbers", []),
                        )
                    except ConnectorError as exc:
                        journal.mark_failed(
                            db, plan_id, batch.seq, error=exc.message,
                            http_status=getattr(exc, "http_status", None),
                            body_status=getattr(exc, "body_status", None),
                        )
                        error = _stop_reason(exc, batch.seq)
                        log.warning("plan %d batch %d failed: %s", plan_id, batch.seq,
                                    type(exc).__name__)
                        break
                    journal.mark_acknowledged(
                        db, plan_id, batch.seq, http_status=response.http_status,
                        body_status=response.body_status, message=response.message,
                        attempts=response.attempts,
                    )
                    done += 1
                    records += batch.size
                    progress(Progress(done, before.batch_count, "batches", records=records))
        except BaseException:
            # Not a platform answer (a bug, Ctrl-C): the batch in flight stays `sent`, so a
            # resume repeats it; the plan is left resumable.
            journal.set_status(db, plan_id, journal.FAILED,
                               "Interrupted while sending; resume to finish.")
            raise
        after = journal.summary(db, plan_id)
        if error:
            status, message = journal.FAILED, error
        elif after.remaining:
            status, message = journal.PENDING, "Cancelled; resume to send the rest."
        else:
            status, message = journal.COMPLETED, ""
        journal.set_status(db, plan_id, status, message)
        log.info("plan %d: %d batches sent (%d repeats after an interruption), status %s",
                 plan_id, sent, resent, status)

        confirmed, verified, verification_error = 0, False, ""
        unconfirmed: list[str] = []
        if status == journal.COMPLETED and verify:
            confirmed, unconfirmed, verification_error = _verify(db, plan_id, before.connection,
                                                                 cancel)
            verified = not verification_error
        receipt_path = _write_receipt_safely(db, plan_id, receipt)
        outcome = "ok" if status == journal.COMPLETED else ("failed" if error else "cancelled")
        counts = {
            "plan_id": plan_id, "identifiers": after.total, "batches": after.batch_count,
            "submitted": _submitted(db, plan_id), "batches_sent": sent,
            "batches_resent": resent, "batches_failed": after.failed,
            "batches_remaining": after.remaining,
        }
        if verified:
            counts.update(confirmed=confirmed, unconfirmed=len(unconfirmed))
        run_id = _record_run(db, plan_id, started, outcome, message, receipt_path, counts)
        return SubmitOutcome(
            plan_id=plan_id, plan_hash=after.hash, connection=after.connection,
            destination_label=after.destination_label, status=status, total=after.total,
            batches=after.batch_count, acknowledged=after.acknowledged, failed=after.failed,
            remaining=after.remaining, sent_this_run=sent, resent_after_interruption=resent,
            submitted=counts["submitted"], cancelled=cancelled and not error, error=error,
            verified=verified, confirmed=confirmed, unconfirmed=unconfirmed,
            verification_error=verification_error,
            receipt_path=str(receipt_path) if receipt_path else None, run_id=run_id,
        )
    finally:
        db.close()


def _open_client(connection: str) -> CheckMarketClient:
    from optout_desk.workflows.connections import open_connection_client

    return open_connection_client(connection)[1]


def _submitted(db: sqlite3.Connection, plan_id: int) -> int:
    row = db.execute(
        "SELECT COALESCE(SUM(size), 0) FROM batches WHERE plan_id = ? AND state = 'acknowledged'",
        (plan_id,),
    ).fetchone()
    return int(row[0])


def _stop_reason(exc: ConnectorError, seq: int) -> str:
    if isinstance(exc, NON_RETRYABLE):
        return f"batch {seq} was refused: {exc.message}"
    # Retries ran out: the platform may or may not have applied it; a resume re-sends it,
    # which is harmless because opt-outs are idempotent.
    return f"batch {seq} failed after retries: {exc.message}"


def _verify(db: sqlite3.Connection, plan_id: int, connection: str,
            cancel: CancelToken) -> tuple[int, list[str], str]:
    """Re-fetch incrementally and mark each sent identifier confirmed or not yet visible."""
    from optout_desk.workflows.sync import sync_optouts

    try:
        sync_optouts(connection, cancel=cancel)
        profile = connections.get(db, connection)
        visible = cached_keys(db, profile)
    except DeskError as exc:
        return 0, [], exc.message
    confirmed = journal.set_confirmed(db, plan_id, visible)
    unconfirmed = journal.unconfirmed_values(db, plan_id)
    log.info("plan %d verified: %d confirmed, %d not yet visible", plan_id, confirmed,
             len(unconfirmed))
    return confirmed, unconfirmed, ""


def verify_plan(plan_id: int, *, cancel: CancelToken = NEVER_CANCELLED) -> SubmitOutcome:
    """Verify (again) a plan sent earlier, e.g. when the platform was slow to list them."""
    db = connect()
    try:
        summary = journal.summary(db, plan_id)
        confirmed, unconfirmed, problem = _verify(db, plan_id, summary.connection, cancel)
        return _outcome_from_journal(db, plan_id, confirmed=confirmed, unconfirmed=unconfirmed,
                                     verified=not problem, verification_error=problem)
    finally:
        db.close()


def _outcome_from_journal(db: sqlite3.Connection, plan_id: int, **extra: Any) -> SubmitOutcome:
    s = journal.summary(db, plan_id)
    return SubmitOutcome(
        plan_id=plan_id, plan_hash=s.hash, connection=s.connection,
        destination_label=s.destination_label, status=s.status, total=s.total,
        batches=s.batch_count, acknowledged=s.acknowledged, failed=s.failed,
        remaining=s.remaining, sent_this_run=0, resent_after_interruption=0,
        submitted=_submitted(db, plan_id), **extra,
    )


# -- resume, discard, retry ------------------------------------------------------------------


def find_unfinished(connection: str | None = None) -> list[journal.PlanSummary]:
    """Plans with batches still to send (interrupted, cancelled, stopped by a failure)."""
    db = connect()
    try:
        return journal.unfinished(db, connection)
    finally:
        db.close()


def plan_summary(plan_id: int) -> journal.PlanSummary:
    db = connect()
    try:
        return journal.summary(db, plan_id)
    except journal.JournalError as exc:
        raise SubmitError(str(exc)) from None
    finally:
        db.close()


def load_plan(plan_id: int) -> Plan:
    """A journaled plan (for Review), checked against its hash."""
    db = connect()
    try:
        return journal.load_plan(db, plan_id)
    except journal.JournalError as exc:
        raise SubmitError(str(exc)) from None
    finally:
        db.close()


def discard_plan(plan_id: int) -> None:
    """Give up a plan: its unsent batches will never be sent. Acknowledged ones stay recorded."""
    db = connect()
    try:
        s = journal.summary(db, plan_id)
        if s.status == journal.RUNNING and s.runner_pid and journal.process_alive(s.runner_pid):
            from os import getpid

            if s.runner_pid != getpid():
                raise SubmitError(f"Plan {plan_id} is being sent by another process; "
                                  "it cannot be discarded now.")
        journal.set_status(db, plan_id, journal.DISCARDED, "Discarded by the user.")
    except journal.JournalError as exc:
        raise SubmitError(str(exc)) from None
    finally:
        db.close()
    log.info("plan %d discarded", plan_id)


def retry_failed_plan(plan_id: int) -> Plan:
    """A new plan of just the failed batches' identifiers (same destination and batch size).
    The old plan is marked discarded once the new one is saved by the caller."""
    db = connect()
    try:
        old = journal.load_plan(db, plan_id)
        failed = journal.failed_items(db, plan_id)
    except journal.JournalError as exc:
        raise SubmitError(str(exc)) from None
    finally:
        db.close()
    if not failed:
        raise BadInputError(f"Plan {plan_id} has no failed batches to retry.")
    from optout_desk.core.identifiers import Identifier

    inputs = [
        PlanInput(Identifier(item.kind, item.original, item.key, basis="from a failed batch"),
                  item.source_file, item.row_number)
        for item in failed
    ]
    return build_plan(inputs, destination=old.destination, batch_size=old.batch_size)


# -- receipts and history --------------------------------------------------------------------


def receipt_rows(plan_id: int) -> list[tuple[Any, ...]]:
    db = connect()
    try:
        return _receipt_table(db, plan_id)
    finally:
        db.close()


def _receipt_table(db: sqlite3.Connection, plan_id: int) -> list[tuple[Any, ...]]:
    return [
        (r.identifier, r.kind, r.sent_as, r.source_file or "", r.row_number, r.batch, r.outcome,
         r.message, "" if r.confirmed is None else ("yes" if r.confirmed else "no"))
        for r in journal.receipt_rows(db, plan_id)
    ]


def write_receipt(plan_id: int, path: Path) -> int:
    """Write the plan's per-identifier receipt to `path` (.csv or .xlsx); returns rows."""
    db = connect()
    try:
        return _write_table(path, RECEIPT_COLUMNS, _receipt_table(db, plan_id))
    finally:
        db.close()


def default_receipt_path(plan_id: int, connection: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", connection)
    return paths.exports_dir() / f"submit-{safe}-plan{plan_id}-{stamp}.csv"


def _write_receipt_safely(db: sqlite3.Connection, plan_id: int,
                          requested: Path | None) -> Path | None:
    """Write the receipt; failing to write it must not hide what was sent (the journal keeps
    everything and `history --export-receipt` can write it again)."""
    path = requested or default_receipt_path(plan_id, journal.summary(db, plan_id).connection)
    try:
        _write_table(path, RECEIPT_COLUMNS, _receipt_table(db, plan_id))
    except (OSError, DeskError) as exc:
        log.warning("receipt for plan %d not written: %s", plan_id, type(exc).__name__)
        return None
    return path


def _write_table(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Through files/export.export_rows: atomic and formula-neutralised."""
    from optout_desk.files.export import export_rows

    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInputError(f"Cannot write {path.name}: a receipt must end in .csv or .xlsx.")
    return export_rows(path, headers, rows)


def _record_run(db: sqlite3.Connection, plan_id: int, started: str, outcome: str, message: str,
                receipt_path: Path | None, counts: dict[str, int] | None = None) -> int | None:
    """History is evidence, but failing to write it must not hide the submission's outcome."""
    try:
        meta = journal.plan_meta(db, plan_id)
        return history.record_run(
            db, kind="submit", connection=meta["destination"]["connection"],
            source_file=meta.get("source_file"), source_sha256=meta.get("source_sha256"),
            counts=counts or {"plan_id": plan_id}, outcome=outcome, message=message,
            receipt_path=str(receipt_path) if receipt_path else None, started_at=started,
        )
    except (sqlite3.Error, journal.JournalError):
        log.exception("could not record the submit run of plan %d", plan_id)
        return None


def export_run_receipt(run_id: int, output: Path) -> int:
    """Write a history run's receipt to `output`: a submit run's is rebuilt from the journal;
    another run's receipt file is copied."""
    import shutil

    db = connect()
    try:
        run = history.get_run(db, run_id)
        if run is None:
            raise BadInputError(f"There is no run {run_id} in the history.")
        plan_id = run.counts.get("plan_id")
        if run.kind == "submit" and plan_id is not None:
            return _write_table(output, RECEIPT_COLUMNS, _receipt_table(db, plan_id))
    finally:
        db.close()
    if not run.receipt_path or not Path(run.receipt_path).exists():
        raise BadInputError(f"Run {run_id} has no receipt file to export.")
    source = Path(run.receipt_path)
    if source.suffix.lower() != output.suffix.lower():
        raise BadInputError(
            f"Run {run_id}'s receipt is a {source.suffix} file; give an output ending in "
            f"{source.suffix}."
        )
    shutil.copyfile(source, output)
    return sum(1 for _ in source.open("rb")) - 1 if source.suffix.lower() == ".csv" else 0
