"""Guarded bulk submission: plan, journal, send batch by batch, verify, receipt, history.

The one irreversible thing the desk does, so every step leaves a record first:
1. `prepare_plan` freezes the identifiers into a Plan (core/plan.py) for the preview.
2. `save_plan` writes it to the journal; nothing is sent before that.
3. `execute_plan` takes the destination's lock (store/locks.py: one sender per connection,
   across processes), claims the plan, re-checks it against its hash, and sends its
   unacknowledged payloads at the destination's concurrency and pacing (workflows/sending.py):
   each is committed `sent` before its request and `acknowledged` or `failed` after it. A
   failure of the account or platform stops the run and says why; Cancel stops after the
   payloads in flight. Either way the plan stays resumable.
4. After the last payload the destination is asked again — its list re-fetched incrementally,
   or the identifiers looked up — and each identifier is marked confirmed or not yet visible; a
   receipt is written and the run goes into history.

A resume is just `execute_plan` again: acknowledged payloads are never sent twice; a payload
that was `sent` when the process died is sent again only when its connector says that is
harmless (counted as a repeat), else it is left for the operator to check.

What a destination takes and how it formats it comes from its connector (connectors/registry);
nothing here names a platform's fields.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from optout_desk import paths
from optout_desk.connectors import registry
from optout_desk.connectors.base import Capability, Client
from optout_desk.core.errors import BadInputError, DeskError
from optout_desk.core.plan import Destination, Plan, PlanInput, build_plan
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.wording import counted_of
from optout_desk.files.formats import SPREADSHEET_EXTENSIONS
from optout_desk.files.lists import read_list_file as read_list_file  # for the CLI and GUI
from optout_desk.store import connections, history, journal, locks
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import sending
from optout_desk.workflows.destinations import known_optout_keys, look_up

log = logging.getLogger(__name__)

# A receipt's columns as an operator reads them (CSV and xlsx alike).
RECEIPT_HEADERS = (
    "Identifier", "Kind", "Sent as", "Source file", "Row", "Request", "Outcome",
    "Platform message", "Confirmed",
)
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
    outcome_unknown: int = 0       # batches sent before a crash, not safe to send again
    cancelled: bool = False
    error: str = ""                # why the run stopped, when it failed
    verified: bool = False
    confirmed: int = 0
    unconfirmed: list[str] = field(default_factory=list)  # shown to the user, never logged
    verification_error: str = ""
    verified_by: str = "re-fetching"  # or "looking them up again"
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
            f"{counted_of(self.acknowledged, self.batches, 'batch', 'batches')} acknowledged, "
            f"{counted_of(self.submitted, self.total, 'opt-out')} submitted."
        ]
        if self.resent_after_interruption:
            n = self.resent_after_interruption
            lines.append(
                f"{n:,} batch{'es were' if n > 1 else ' was'} re-sent after an interruption "
                "(the destination ignores opt-outs it already holds)."
            )
        if self.outcome_unknown:
            n = self.outcome_unknown
            lines.append(
                f"{n:,} batch{'es were' if n > 1 else ' was'} sent just before an interruption "
                "and may or may not have arrived; sending again is not known to be harmless "
                "on this platform, so check there, then resume with --resend-unknown to send "
                f"{'them' if n > 1 else 'it'} anyway."
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
                f"Verified by {self.verified_by}: {self.confirmed:,} confirmed, "
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
    region: str | None = None, push_columns: Sequence[str] = (),
    progress: ProgressCallback = no_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[list[PlanInput], str, str]:
    """A spreadsheet's opt-outs for Submit, through the one import workflow (detected or named
    columns, each row's number for the receipt): (inputs, source name, the file's SHA-256)."""
    from optout_desk.workflows import importing

    return importing.inputs_from_spreadsheet(
        path, sheet=sheet, columns=columns, region=region, push_columns=push_columns,
        progress=progress, cancel=cancel)


def destination_for(profile: ConnectionProfile) -> Destination:
    host = urlsplit(profile.base_url).netloc or profile.base_url
    return Destination(profile.name, profile.system, host, profile.region)


def _with_batch_size(profile: ConnectionProfile, override: int | None) -> dict[str, Any]:
    settings = dict(profile.settings)
    if override is not None:
        if not 1 <= override <= 100_000:
            raise BadInputError(
                f"The batch size must be between 1 and 100,000 (not {override}).")
        spec = registry.system_info(profile.system).setting("batch_size")
        if spec is None:
            raise BadInputError(
                f"{registry.system_label(profile.system)} takes no batch size: each request "
                "carries what the platform allows.")
        settings["batch_size"] = override
    return settings


def prepare_plan(
    connection: str, inputs: Iterable[PlanInput], *, batch_size: int | None = None,
    include_submitted: bool = False,
) -> Plan:
    """Freeze `inputs` into a plan for `connection`, formatted and batched as its system takes
    them, leaving out what the destination is known to hold already (its cached list, or its
    look-up answers) and — unless `include_submitted` — what an earlier plan to it already
    delivered. Nothing is stored or sent; no key is needed."""
    inputs = list(inputs)
    db = connect()
    try:
        profile = connections.get(db, connection)
        settings = _with_batch_size(profile, batch_size)
        payload_format = registry.payload_format(profile.system, settings)
        known = known_optout_keys(db, profile)
        delivered: dict[str, str] = {}
        if not include_submitted:
            keys = (i.identifier.key for i in inputs if i.identifier.key is not None)
            for key, (plan_id, when) in journal.acknowledged_keys(db, connection, keys).items():
                if key not in known.keys:
                    delivered[key] = (f"already sent to {connection} by plan {plan_id} "
                                      f"({when[:16].replace('T', ' ')} UTC, acknowledged)")
    finally:
        db.close()
    return build_plan(
        inputs, destination=destination_for(profile), payload_format=payload_format,
        already_on_destination=known.keys, already_detail=known.detail,
        already_submitted=delivered,
    )


def overlapping_unfinished(plan: Plan) -> list[tuple[journal.PlanSummary, int]]:
    """Unfinished plans to the same destination that would send some of `plan`'s identifiers
    too, with how many: a new plan must not race an old one (resume or discard it first)."""
    keys = {item.key for _, item in plan.items()}
    db = connect()
    try:
        found = []
        for summary in journal.unfinished(db, plan.destination.connection):
            overlap = len(keys & journal.unsent_keys(db, summary.id))
            if overlap:
                found.append((summary, overlap))
        return found
    finally:
        db.close()


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


def connection_lock_name(connection: str) -> str:
    return f"Sending to {connection}"


def execute_plan(
    plan_id: int,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    verify: bool = True,
    receipt: Path | None = None,
    open_client: Callable[[str], Client] | None = None,
    resend_unknown: bool = False,
    write_receipt: bool = True,
    record_history: bool = True,
) -> SubmitOutcome:
    """Send the plan's unacknowledged payloads, verify, write the receipt, record the run.

    Only one run sends to a connection at a time, across processes: a second is refused with
    the name of the run holding it (SubmitError). `open_client(connection)` makes the client
    (default: the connection's stored profile and secrets); benches and tests pass their own.
    `resend_unknown` also sends payloads a crash left without an answer where the destination
    does not say resending is harmless (the operator checked the platform). A submission to
    several destinations writes one receipt and one history run for all of them
    (workflows/submission.py), so it turns `write_receipt` and `record_history` off.
    """
    db = connect()
    try:
        try:
            connection = journal.summary(db, plan_id).connection
        except journal.JournalError as exc:
            raise SubmitError(str(exc)) from None
    finally:
        db.close()
    try:
        with locks.hold(connection_lock_name(connection), f"plan {plan_id}"):
            return _execute_locked(plan_id, progress, cancel, verify, receipt, open_client,
                                   resend_unknown, write_receipt, record_history)
    except locks.LockHeldError as exc:
        raise SubmitError(
            f"Another run is sending to {connection}: {locks.describe(exc.holder)}. Wait for "
            f"it to finish (or stop it), then resume with `optout-desk submit {connection} "
            "--resume`; nothing was sent by this one."
        ) from None


def _execute_locked(plan_id: int, progress: ProgressCallback, cancel: CancelToken,
                    verify: bool, receipt: Path | None,
                    open_client: Callable[[str], Client] | None,
                    resend_unknown: bool, write_receipt: bool,
                    record_history: bool) -> SubmitOutcome:
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
        unknown = [b for b in todo if b.state == journal.BATCH_SENT
                   and not b.payload.resend_safe and not resend_unknown]
        todo = [b for b in todo if b not in unknown]
        try:
            profile = connections.get(db, before.connection)
            client = (open_client or _open_client)(before.connection)
            submitter = registry.as_submitter(client, profile.system)
            pacing = registry.pacing(profile.system, profile.settings)
        except DeskError as exc:
            journal.set_status(db, plan_id, journal.FAILED, exc.message)
            if record_history:
                _record_run(db, plan_id, started, "failed", exc.message, None)
            raise
        done = before.acknowledged
        records = _submitted(db, plan_id)
        progress(Progress(done, before.batch_count, "batches", records=records))

        def acknowledged(batch: journal.JournalBatch) -> None:
            nonlocal done, records
            done += 1
            records += batch.size
            progress(Progress(done, before.batch_count, "batches", records=records))

        try:
            with closing(client):
                tally = sending.send_batches(db, plan_id, todo, submitter, pacing, cancel,
                                             acknowledged)
        except BaseException:
            # Not a platform answer (a bug, Ctrl-C): the payloads in flight stay `sent`, so a
            # resume knows their outcome is unknown; the plan is left resumable.
            journal.set_status(db, plan_id, journal.FAILED,
                               "Interrupted while sending; resume to finish.")
            raise
        after = journal.summary(db, plan_id)
        error = tally.error
        if error:
            status, message = journal.FAILED, error
        elif unknown:
            status = journal.FAILED
            message = (f"{len(unknown):,} batch(es) were sent before an interruption without "
                       "an answer; check them on the platform, then resume with "
                       "--resend-unknown.")
        elif after.remaining:
            status, message = journal.PENDING, (
                "Cancelled; resume to send the rest." if tally.cancelled
                else "Some batches failed; resume to send them again.")
        else:
            status, message = journal.COMPLETED, ""
        journal.set_status(db, plan_id, status, message)
        log.info("plan %d: %d batches sent (%d repeats after an interruption, %d left "
                 "unknown), status %s", plan_id, tally.sent, tally.resent, len(unknown), status)

        confirmed, verified, verification_error = 0, False, ""
        unconfirmed: list[str] = []
        if status == journal.COMPLETED and verify:
            confirmed, unconfirmed, verification_error = _verify(db, plan_id, profile, cancel)
            verified = not verification_error
        receipt_path = _write_receipt_safely(db, plan_id, receipt) if write_receipt else None
        outcome = "ok" if status == journal.COMPLETED else ("failed" if error else "cancelled")
        counts = {
            "plan_id": plan_id, "identifiers": after.total, "batches": after.batch_count,
            "submitted": _submitted(db, plan_id), "batches_sent": tally.sent,
            "batches_resent": tally.resent, "batches_failed": after.failed,
            "batches_remaining": after.remaining, "batches_unknown": len(unknown),
        }
        if verified:
            counts.update(confirmed=confirmed, unconfirmed=len(unconfirmed))
        run_id = (_record_run(db, plan_id, started, outcome, message, receipt_path, counts)
                  if record_history else None)
        return SubmitOutcome(
            plan_id=plan_id, plan_hash=after.hash, connection=after.connection,
            destination_label=after.destination_label, status=status, total=after.total,
            batches=after.batch_count, acknowledged=after.acknowledged, failed=after.failed,
            remaining=after.remaining, sent_this_run=tally.sent,
            resent_after_interruption=tally.resent, submitted=counts["submitted"],
            outcome_unknown=len(unknown),
            cancelled=tally.cancelled and not error, error=error,
            verified=verified, confirmed=confirmed, unconfirmed=unconfirmed,
            verification_error=verification_error,
            verified_by=("re-fetching" if registry.system_info(profile.system).can(
                Capability.LIST) else "looking them up again"),
            receipt_path=str(receipt_path) if receipt_path else None, run_id=run_id,
        )
    finally:
        db.close()


def _open_client(connection: str) -> Client:
    from optout_desk.workflows.connections import open_connection_client

    return open_connection_client(connection)[1]


def _submitted(db: sqlite3.Connection, plan_id: int) -> int:
    row = db.execute(
        "SELECT COALESCE(SUM(size), 0) FROM batches WHERE plan_id = ? AND state = 'acknowledged'",
        (plan_id,),
    ).fetchone()
    return int(row[0])


def _verify(db: sqlite3.Connection, plan_id: int, profile: ConnectionProfile,
            cancel: CancelToken) -> tuple[int, list[str], str]:
    """Ask the destination again — re-fetch its list incrementally, or look the sent
    identifiers up — and mark each sent identifier confirmed or not yet visible."""
    from optout_desk.workflows.sync import sync_optouts

    info = registry.system_info(profile.system)
    try:
        if info.can(Capability.LIST):
            sync_optouts(profile.name, cancel=cancel)
            visible = set(known_optout_keys(db, profile).keys)
        elif info.can(Capability.LOOKUP):
            sent = journal.acknowledged_items(db, plan_id)
            answers = look_up(profile.name, [(item.kind, item.value) for item in sent],
                              refresh=True, cancel=cancel).answers
            visible = {item.key for item in sent
                       if (answer := answers.get((item.kind, item.value))) is not None
                       and answer.opted_out}
        else:
            return 0, [], (f"{info.label} offers no list or look-up to confirm with; its "
                           "acknowledgements in the receipt are the evidence.")
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
        profile = connections.get(db, summary.connection)
        confirmed, unconfirmed, problem = _verify(db, plan_id, profile, cancel)
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
    """Give up a plan: its unsent batches will never be sent. Acknowledged ones stay recorded.
    Refused while a run is sending to its connection."""
    db = connect()
    try:
        s = journal.summary(db, plan_id)
        holder = locks.is_held(connection_lock_name(s.connection))
        if holder is not None:
            raise SubmitError(f"Plan {plan_id} cannot be discarded now: "
                              f"{locks.describe(holder)} is sending to {s.connection}.")
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
    db = connect()
    try:
        profile = connections.get(db, old.destination.connection)
    finally:
        db.close()
    settings = {**profile.settings, "batch_size": old.batch_size} if registry.system_info(
        profile.system).setting("batch_size") else profile.settings
    return build_plan(inputs, destination=old.destination,
                      payload_format=registry.payload_format(profile.system, settings))


# -- receipts and history --------------------------------------------------------------------


def receipt_rows(plan_id: int) -> list[tuple[Any, ...]]:
    db = connect()
    try:
        return receipt_table(db, plan_id)
    finally:
        db.close()


def submitted_count(plan_id: int) -> int:
    """Identifiers in the plan's acknowledged batches."""
    db = connect()
    try:
        return _submitted(db, plan_id)
    finally:
        db.close()


def receipt_table(db: sqlite3.Connection, plan_id: int) -> list[tuple[Any, ...]]:
    """The plan's receipt rows in RECEIPT_HEADERS order (values as shown to the operator)."""
    return [
        (r.identifier, r.kind, r.sent_as, r.source_file or "", r.row_number, r.batch, r.outcome,
         r.message, "" if r.confirmed is None else ("yes" if r.confirmed else "no"))
        for r in journal.receipt_rows(db, plan_id)
    ]


def write_receipt(plan_id: int, path: Path) -> int:
    """Write the plan's per-identifier receipt to `path` (.csv or .xlsx); returns rows."""
    db = connect()
    try:
        return _write_table(path, RECEIPT_HEADERS, receipt_table(db, plan_id))
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
        _write_table(path, RECEIPT_HEADERS, receipt_table(db, plan_id))
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
            return _write_table(output, RECEIPT_HEADERS, receipt_table(db, plan_id))
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
