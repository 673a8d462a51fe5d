"""One opt-out list, every destination: a submission fanned out to several connections.

A submission is one input list and one plan per destination, each planned, frozen, hashed and
journaled on its own (workflows/submit.py), so resume, verify and retry work per destination
exactly as they do for one. What it adds:

- `prepare_submission`: a plan per chosen destination, with what each will receive by kind,
  what it leaves out and why, its requests and the time its pacing needs — the matrix the
  preview shows;
- `save_submission`: the submission row and every plan, in one go, before anything is sent;
- `execute_submission`: the destinations side by side, each at its own concurrency and pacing,
  each with its own progress and cancel; a destination that fails (keys revoked, platform
  down) does not stop the others;
- `status_matrix` and `write_submission_receipt`: identifier × destination outcomes, and one
  receipt workbook with a Summary sheet and a sheet per destination.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optout_desk.connectors import registry
from optout_desk.connectors.base import Capability, Pacing
from optout_desk.core.errors import BadInputError, DeskError
from optout_desk.core.plan import LeftOutReason, Plan, PlanInput, left_out_phrases
from optout_desk.core.progress import NEVER_CANCELLED, AnyCancelled, CancelToken, Progress
from optout_desk.core.wording import KIND_NOUNS, counted, kinds_counted
from optout_desk.store import connections, history, journal, submissions
from optout_desk.store.db import connect
from optout_desk.workflows import submit

log = logging.getLogger(__name__)

def kind_label(kind: str) -> str:
    """"emails" for "email": how the matrix names a kind of identifier."""
    return KIND_NOUNS.get(kind, (kind, kind))[1]


# A preview's guess of one request's time when nothing better is known.
ASSUMED_LATENCY_S = 0.15


@dataclass(frozen=True)
class DestinationPreview:
    """One row of the destination matrix."""

    plan: Plan
    system_label: str
    pacing: Pacing
    routes: dict[str, str]  # kind -> where it goes on the platform ("email channel")
    compared_against: bool  # the identifiers were reconciled against this connection
    knows: str = "cached list"  # how its holdings are known: "look-up answers", "" (cannot)

    @property
    def connection(self) -> str:
        return self.plan.destination.connection

    @property
    def requests(self) -> int:
        return len(self.plan.batches)

    @property
    def estimated_seconds(self) -> float:
        return self.pacing.seconds_for(self.requests, ASSUMED_LATENCY_S)

    def describe(self) -> str:
        """"acme: 1,208 emails, 511 phones in 4 requests (about 1 s)"."""
        return (f"{self.plan.destination.label}: {kinds_counted(self.plan.counts)} in "
                f"{counted(self.requests, 'request')} ({estimate(self.estimated_seconds)})")


@dataclass(frozen=True)
class SubmissionPreview:
    destinations: list[DestinationPreview]
    input_count: int
    source_file: str | None = None
    source_sha256: str | None = None
    origin: str = ""
    compared_with: str | None = None  # the connection the identifiers were reconciled against

    @property
    def total(self) -> int:
        return sum(d.plan.total for d in self.destinations)

    def confirmation(self) -> str:
        """The one question naming every destination and its count."""
        parts = [f"{d.plan.total:,} to {d.plan.destination.label}" for d in self.destinations
                 if d.plan.batches]
        return "Send " + _joined(parts) + "?"

    def warnings(self) -> list[str]:
        """What the operator should know before confirming."""
        notes = []
        if self.compared_with:
            others = [d.connection for d in self.destinations
                      if d.plan.batches and not d.compared_against]
            if others:
                notes.append(
                    f"The identifiers were compared with {self.compared_with} only: for "
                    f"{_joined(others)} the preview leaves out what each is known to hold "
                    "(its cached list or look-up answers), nothing more.")
        for d in self.destinations:
            if d.plan.batches and not d.knows:
                notes.append(f"{d.connection} ({d.system_label}) cannot tell what it already "
                             "holds, so nothing is left out as already there.")
        return notes


def estimate(seconds: float) -> str:
    """"about 5 min", or "under a second"."""
    text = format_duration(seconds)
    return text if seconds < 1 else f"about {text}"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _joined(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def prepare_submission(
    destinations: Sequence[str], inputs: Sequence[PlanInput], *,
    source_file: str | None = None, source_sha256: str | None = None, origin: str = "",
    compared_with: str | None = None, batch_size: int | None = None,
    include_submitted: bool = False,
) -> SubmissionPreview:
    """A plan per destination for the same `inputs`; nothing is stored or sent."""
    names = list(dict.fromkeys(destinations))
    if not names:
        raise BadInputError("Choose at least one destination.")
    previews = []
    for name in names:
        plan = submit.prepare_plan(name, inputs, batch_size=batch_size,
                                   include_submitted=include_submitted)
        db = connect()
        try:
            profile = connections.get(db, name)
        finally:
            db.close()
        info = registry.system_info(profile.system)
        knows = ("cached list" if info.can(Capability.LIST) else
                 "look-up answers" if info.can(Capability.LOOKUP) else "")
        previews.append(DestinationPreview(
            plan=plan, system_label=info.label,
            pacing=registry.pacing(profile.system, profile.settings),
            routes={str(route.kind): route.label for route in info.routes.routes},
            compared_against=name == compared_with, knows=knows,
        ))
    return SubmissionPreview(previews, len(inputs), source_file, source_sha256, origin,
                             compared_with)


def left_out_summary(preview: DestinationPreview) -> str:
    """"648 phones it does not take, 12 already on the destination's opt-out list"; where the
    destination can only be asked, a reminder that it was not (or cannot be)."""
    parts = left_out_phrases(preview.plan.left_out)
    if not any(item.reason is LeftOutReason.ALREADY_ON_DESTINATION
               for item in preview.plan.left_out):
        if preview.knows == "look-up answers":
            parts.append("none known as already there (Check these identifiers asks it)")
        elif preview.knows == "":
            parts.append("it cannot tell what it already holds")
    return ", ".join(parts)


@dataclass(frozen=True)
class SavedSubmission:
    id: int
    plan_ids: dict[str, int]  # connection -> plan id


def save_submission(preview: SubmissionPreview) -> SavedSubmission:
    """Journal every destination's plan under one submission; nothing is sent. Destinations
    whose plan sends nothing get no plan."""
    sending = [d for d in preview.destinations if d.plan.batches]
    if not sending:
        raise BadInputError("The submission sends nothing: every identifier was left out for "
                            "every destination.")
    db = connect()
    try:
        submission_id = submissions.create(
            db, origin=preview.origin, source_file=preview.source_file,
            source_sha256=preview.source_sha256, input_count=preview.input_count)
        plan_ids = {}
        for d in sending:
            plan_ids[d.connection] = journal.save_plan(
                db, d.plan, source_file=preview.source_file,
                source_sha256=preview.source_sha256, submission_id=submission_id)
    finally:
        db.close()
    log.info("journaled submission %d: %d plans", submission_id, len(plan_ids))
    return SavedSubmission(submission_id, plan_ids)


@dataclass
class DestinationRun:
    """How one destination of a running submission ends."""

    connection: str
    plan_id: int
    outcome: submit.SubmitOutcome | None = None
    error: str = ""  # the run could not start or stopped unexpectedly

    @property
    def finished(self) -> bool:
        return self.outcome is not None and self.outcome.status == journal.COMPLETED

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.outcome is None:
            return "not started"
        if self.outcome.status == journal.COMPLETED:
            return "completed"
        return "cancelled" if self.outcome.cancelled else "failed"


@dataclass
class SubmissionOutcome:
    submission_id: int | None
    runs: list[DestinationRun] = field(default_factory=list)
    receipt_path: str | None = None
    run_id: int | None = None

    @property
    def all_finished(self) -> bool:
        return all(run.finished for run in self.runs)


ProgressFor = Callable[[str, Progress], None]


def execute_submission(
    plan_ids: Mapping[str, int],
    *,
    submission_id: int | None,
    progress: ProgressFor | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    cancel_each: Mapping[str, CancelToken] | None = None,
    verify: bool = True,
    receipt: Path | None = None,
    open_client: Callable[[str], Any] | None = None,
    resend_unknown: bool = False,
) -> SubmissionOutcome:
    """Send every destination's plan side by side and wait for all; one destination's failure
    does not stop the others. `cancel` stops them all, `cancel_each[connection]` one. Plans
    made outside a submission (`submission_id` None: an older single-destination plan being
    resumed) keep their own receipt and history run."""
    grouped = submission_id is not None
    started = history.utc_now()
    runs = [DestinationRun(connection, plan_id) for connection, plan_id in plan_ids.items()]
    threads = []
    for run in runs:
        token = _either(cancel, (cancel_each or {}).get(run.connection))

        def report(p: Progress, name: str = run.connection) -> None:
            if progress is not None:
                progress(name, p)

        def work(run: DestinationRun = run, token: CancelToken = token,
                 report: Callable[[Progress], None] = report) -> None:
            try:
                run.outcome = submit.execute_plan(
                    run.plan_id, progress=report, cancel=token, verify=verify,
                    open_client=open_client, resend_unknown=resend_unknown,
                    write_receipt=not grouped, record_history=not grouped)
            except DeskError as exc:
                run.error = exc.message
            except Exception as exc:  # a bug must not take the other destinations with it
                log.exception("destination %s of submission %d", run.connection, submission_id)
                run.error = f"An unexpected error stopped this destination ({type(exc).__name__})."

        thread = threading.Thread(target=work, name=f"submit-{run.connection}")
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    outcome = SubmissionOutcome(submission_id, runs)
    if submission_id is None:
        return outcome
    path = receipt or default_receipt_path(submission_id)
    try:
        write_submission_receipt(submission_id, path)
        outcome.receipt_path = str(path)
    except (OSError, DeskError) as exc:
        log.warning("receipt of submission %d not written: %s", submission_id,
                    type(exc).__name__)
    outcome.run_id = _record(outcome, started)
    return outcome


def _either(first: CancelToken, second: CancelToken | None) -> CancelToken:
    return first if second is None else AnyCancelled(first, second)


def _record(outcome: SubmissionOutcome, started: str) -> int | None:
    """One history run for the submission, with every destination's outcome."""
    assert outcome.submission_id is not None
    db = connect()
    try:
        row = submissions.get(db, outcome.submission_id)
        counts: dict[str, int] = {"submission_id": outcome.submission_id,
                                  "destinations": len(outcome.runs)}
        lines = []
        for run in outcome.runs:
            o = run.outcome
            counts[f"{run.connection}: submitted"] = o.submitted if o else 0
            counts[f"{run.connection}: identifiers"] = o.total if o else 0
            why = run.error or (o.error if o else "")
            lines.append(f"{run.connection}: {run.status}" + (f" ({why})" if why else ""))
        result = "ok" if outcome.all_finished else (
            "cancelled" if all(r.status in ("completed", "cancelled") for r in outcome.runs)
            else "failed")
        return history.record_run(
            db, kind="submit", connection=", ".join(r.connection for r in outcome.runs),
            source_file=row.source_file if row else None,
            source_sha256=row.source_sha256 if row else None, counts=counts, outcome=result,
            message="; ".join(lines), receipt_path=outcome.receipt_path, started_at=started)
    except Exception:
        log.exception("could not record submission %d", outcome.submission_id)
        return None
    finally:
        db.close()


def default_receipt_path(submission_id: int) -> Path:
    from datetime import UTC, datetime

    from optout_desk import paths

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return paths.exports_dir() / f"submission-{submission_id}-{stamp}.xlsx"


# -- outcomes ---------------------------------------------------------------------------------

MATRIX_SENT = "sent"
MATRIX_CONFIRMED = "sent, confirmed"
MATRIX_NOT_VISIBLE = "sent, not yet visible"


def status_matrix(submission_id: int) -> tuple[list[str], list[list[str]]]:
    """(destinations, rows): one row per distinct input identifier — its original text, its
    kind, then its status on each destination ("sent, confirmed", "left out: …", "failed:
    the platform's message", "not sent"). A retry of a destination's failed identifiers is a
    later plan of the same submission: its statuses replace the failed ones."""
    db = connect()
    try:
        plans = submissions.plans_of(db, submission_id)
        if not plans:
            raise BadInputError(f"There is no submission {submission_id}.")
        names = list(dict.fromkeys(p.connection for p in plans))
        by_identifier: dict[tuple[str, str], dict[str, str]] = {}
        for summary in plans:  # oldest first: a retry overwrites what it retried
            for row in journal.receipt_rows(db, summary.id):
                cells = by_identifier.setdefault((row.identifier, row.kind), {})
                cells[summary.connection] = _cell(row)
    finally:
        db.close()
    rows = [[identifier, kind, *(cells.get(name, "not planned") for name in names)]
            for (identifier, kind), cells in by_identifier.items()]
    return names, rows


def retry_failed(plan_id: int) -> tuple[Plan, int | None]:
    """A new plan of the failed identifiers of one destination's plan, in the same submission
    (the old plan is discarded once the new one is saved)."""
    plan = submit.retry_failed_plan(plan_id)
    return plan, submit.plan_summary(plan_id).submission_id


def save_retry(plan: Plan, replaces: int, submission_id: int | None) -> int:
    """Journal a retry plan under the same submission and discard the plan it replaces."""
    db = connect()
    try:
        new_id = journal.save_plan(db, plan, submission_id=submission_id)
    finally:
        db.close()
    submit.discard_plan(replaces)
    return new_id


def _cell(row: journal.ReceiptRow) -> str:
    if row.batch is None:
        return row.outcome + (f" ({row.message})" if row.message else "")
    if row.outcome == "submitted":
        if row.confirmed is None:
            return MATRIX_SENT
        return MATRIX_CONFIRMED if row.confirmed else MATRIX_NOT_VISIBLE
    if row.outcome == "failed":
        return f"failed: {row.message}" if row.message else "failed"
    return row.outcome


def write_submission_receipt(submission_id: int, path: Path) -> Path:
    """One workbook (.xlsx): Summary (who, when, source file and SHA-256, each destination
    with its plan hash and counts), Outcomes (identifier × destination), then a sheet per
    destination with its per-identifier receipt. A .csv path gets the outcome matrix only."""
    from optout_desk.files.export import SheetSpec, export_rows, write_workbook

    names, matrix = status_matrix(submission_id)
    headers = ["Identifier", "Kind", *names]
    if path.suffix.lower() == ".csv":
        export_rows(path, headers, matrix)
        return path
    if path.suffix.lower() != ".xlsx":
        raise BadInputError(f"Cannot write {path.name}: a receipt must end in .xlsx or .csv.")
    db = connect()
    try:
        row = submissions.get(db, submission_id)
        plans = submissions.plans_of(db, submission_id)
        per_plan = {p.id: submit.receipt_table(db, p.id) for p in plans}
    finally:
        db.close()
    summary: list[list[object]] = [
        ["Submission", submission_id],
        ["Created (UTC)", (row.created_at if row else "")[:19].replace("T", " ")],
        ["By (OS user)", row.os_user if row else ""],
        ["Source", row.source_file or row.origin if row else ""],
        ["Source SHA-256", row.source_sha256 or "" if row else ""],
        ["Identifiers given", row.input_count if row else ""],
        [],
        ["Destination", "System", "Plan", "Plan hash", "Status", "Identifiers",
         "Submitted", "Requests", "Acknowledged", "Failed"],
    ]
    for p in plans:
        summary.append([p.destination_label, registry.system_label(p.system), p.id, p.hash,
                        p.status, p.total, submit.submitted_count(p.id), p.batch_count,
                        p.acknowledged, p.failed])
    sheets = [SheetSpec("Summary", ["Item", "Value"], summary),
              SheetSpec("Outcomes", headers, matrix)]
    used: set[str] = set()
    for p in plans:
        # Sheet names must be unique (31 characters at most): a retry's plan gets its id.
        name = p.connection[:31] if p.connection[:31] not in used else (
            f"{p.connection[:20]} plan {p.id}")
        used.add(name)
        sheets.append(SheetSpec(name, list(submit.RECEIPT_HEADERS), per_plan[p.id]))
    write_workbook(path, sheets)
    return path
