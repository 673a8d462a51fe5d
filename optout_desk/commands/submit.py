"""`optout-desk submit --to CONN [--to CONN …] --from FILE|-`, `… --resume [--to CONN]`.

Builds a frozen plan per destination, prints the preview (and, for several destinations, the
destination matrix), asks once for confirmation (or takes --yes), journals the plans and sends
them — several destinations side by side, each with its own progress bar; --resume finishes
plans a crash, a failure or a cancel left behind (every unfinished destination, or the ones
named). A single CONNECTION positional is the same as one --to.
Ctrl-C once stops after the requests in flight (the plans stay resumable); twice stops at once.
Exit 0 only when every destination finished.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optout_desk.core.wording import counted, counted_of, kinds_counted

MAX_LISTED = 20  # identifiers listed by name in the terminal before "… and N more"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit opt-outs to one or more connections (previewed, journaled, resumable)",
        description="Submit opt-outs to one or more connections, exactly as previewed: a plan "
        "per destination, sent side by side. Every request is journaled, so an interrupted "
        "submission resumes with --resume.",
    )
    parser.add_argument("connection", metavar="CONNECTION", nargs="?",
                        help="the destination connection (the same as one --to)")
    parser.add_argument("--to", action="append", default=[], metavar="CONN",
                        help="a destination connection; repeat for several")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from", dest="source", metavar="FILE",
        help="a spreadsheet (.xlsx, .csv …) or a text file with one identifier per line; "
        "'-' reads lines from standard input",
    )
    source.add_argument("--resume", action="store_true",
                        help="finish this connection's interrupted or failed submissions")
    source.add_argument("--discard", type=int, metavar="PLAN",
                        help="give up an unfinished plan: its unsent batches are never sent")
    parser.add_argument("--column", metavar="C", action="append",
                        help="the spreadsheet column to read (header, letter or number); "
                        "repeat for more; default: detected by content")
    parser.add_argument("--push-column", metavar="C", action="append", default=[],
                        help="a spreadsheet column of push tokens (kept as written); repeat "
                        "for more")
    parser.add_argument("--sheet", metavar="NAME", help="the worksheet to read")
    parser.add_argument("--region", metavar="CC",
                        help="default country for phone numbers without +CC (e.g. BE)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="identifiers per request (default: the connection's setting)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the preview and exit without sending")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--receipt", type=Path, metavar="FILE",
                        help="write the per-identifier receipt here (.csv or .xlsx)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip re-fetching the list afterwards to confirm")
    parser.add_argument("--resend-unknown", action="store_true",
                        help="with --resume: also send batches a crash left without an answer "
                        "where the platform does not say repeats are harmless (check there "
                        "first)")
    parser.add_argument("--include-submitted", action="store_true",
                        help="also send identifiers an earlier plan already delivered to this "
                        "connection (by default they are left out)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from optout_desk.core.errors import BadInputError

    args.destinations = list(dict.fromkeys(([args.connection] if args.connection else [])
                                           + args.to))
    if args.resume:
        return _resume(args)
    if args.discard is not None:
        return _discard(args)
    if not args.destinations:
        raise BadInputError("Name the destination: `optout-desk submit --to CONNECTION --from "
                            "FILE` (repeat --to for several).")
    if len(args.destinations) > 1:
        return _submit_many(args)
    args.connection = args.destinations[0]
    return _submit_new(args)


def _discard(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import submit

    summary = submit.plan_summary(args.discard)
    if args.destinations and summary.connection not in args.destinations:
        raise BadInputError(f"Plan {summary.id} goes to {summary.connection}, not "
                            f"{', '.join(args.destinations)}; nothing was discarded.")
    _confirm_or_refuse(args, f"Discard plan {summary.id}: its {summary.remaining:,} unsent "
                             f"batches to {summary.destination_label} will never be sent?")
    submit.discard_plan(summary.id)
    out.print(f"Plan {summary.id} discarded; its {summary.acknowledged:,} acknowledged "
              "batches stay recorded in the history.")
    return 0


# -- a new submission ------------------------------------------------------------------------


def _submit_new(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import submit

    inputs, source_name, source_sha = read_inputs(args)
    plan = submit.prepare_plan(args.connection, inputs, batch_size=args.batch_size,
                               include_submitted=args.include_submitted)
    print_preview(plan)
    _refuse_overlap(plan)
    if args.dry_run:
        out.print("Dry run: nothing was sent.")
        return 0
    if not plan.batches:
        out.print("Nothing to submit.")
        return 0
    _confirm_or_refuse(args, f"Submit {counted(plan.total, 'opt-out')} to "
                             f"{plan.destination.label}?")
    plan_id = submit.save_plan(plan, source_file=source_name, source_sha256=source_sha)
    return _execute(args, plan_id)


def _submit_many(args: argparse.Namespace) -> int:
    """Several destinations: a plan each, one matrix, one question, side by side."""
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import submission

    inputs, source_name, source_sha = read_inputs(args)
    preview = submission.prepare_submission(
        args.destinations, inputs, source_file=source_name, source_sha256=source_sha,
        origin="file" if source_name != "standard input" else "pasted",
        batch_size=args.batch_size, include_submitted=args.include_submitted)
    print_matrix(preview)
    for destination in preview.destinations:
        _refuse_overlap(destination.plan)
    if args.dry_run:
        out.print("Dry run: nothing was sent.")
        return 0
    if not preview.total:
        out.print("Nothing to submit.")
        return 0
    _confirm_or_refuse(args, preview.confirmation())
    saved = submission.save_submission(preview)
    return _execute_many(args, saved.plan_ids, saved.id)


def print_matrix(preview: Any) -> None:
    """The destination matrix: per destination what it receives by kind, what it leaves out
    and why, its requests and the estimated time; routing by kind; warnings."""
    from rich.table import Table

    from optout_desk.commands._terminal import out
    from optout_desk.workflows.submission import format_duration, kind_label, left_out_summary

    kinds = sorted({k for d in preview.destinations for k in d.plan.counts} | {
        str(left.kind) for d in preview.destinations for left in d.plan.left_out
        if left.key is not None})
    out.print(f"{counted(preview.input_count, 'identifier')} to "
              f"{counted(len(preview.destinations), 'destination')}:")
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Destination")
    for kind in kinds:
        table.add_column(kind_label(kind).capitalize(), justify="right")
    for title in ("Requests", "Time", "Left out"):
        table.add_column(title, justify="right" if title != "Left out" else "left")
    for d in preview.destinations:
        table.add_row(
            f"{d.plan.destination.label} ({d.system_label})",
            *(f"{d.plan.counts.get(kind, 0):,}" if kind in d.routes else "—" for kind in kinds),
            f"{d.requests:,}", format_duration(d.estimated_seconds),
            left_out_summary(d) or "nothing")
    out.print(table)
    for kind in kinds:
        targets = [f"{d.connection} ({d.routes[kind]})" for d in preview.destinations
                   if kind in d.routes]
        out.print(f"  {kind_label(kind)} → {', '.join(targets) or 'nowhere'}")
    for d in preview.destinations:
        if d.plan.batches:
            out.print(f"  {d.connection}: plan hash {d.plan.short_hash}")
    for note in preview.warnings():
        out.print(f"Note: {note}")


def _execute_many(args: argparse.Namespace, plan_ids: dict[str, int],
                  submission_id: int) -> int:
    from optout_desk.commands._terminal import err, out, progress_bars
    from optout_desk.core.progress import CancelToken
    from optout_desk.workflows import submission

    cancel = CancelToken()
    bars = {name: f"{name} (plan {plan_id})" for name, plan_id in plan_ids.items()}
    with _stop_on_ctrl_c(cancel, err), progress_bars(bars) as reports:
        outcome = submission.execute_submission(
            plan_ids, submission_id=submission_id,
            progress=lambda name, p: reports[name](p), cancel=cancel,
            verify=not args.no_verify, receipt=args.receipt,
            resend_unknown=args.resend_unknown)
    worst = 0
    for run in outcome.runs:
        if run.outcome is not None:
            for line in run.outcome.summary_lines():
                out.print(line)
        else:
            out.print(f"{run.connection}: {run.error}")
        worst = max(worst, _exit_code(run.outcome) if run.outcome else 1)
    if outcome.receipt_path:
        out.print(f"Receipt: {outcome.receipt_path}")
    return worst


def _exit_code(outcome: Any) -> int:
    if outcome.error or outcome.outcome_unknown:
        return 1
    if outcome.cancelled:
        return 130
    return 0 if outcome.status == "completed" else 1


def _refuse_overlap(plan: Any) -> None:
    """A new plan must not race an unfinished one holding some of the same identifiers: the
    same opt-outs would go out twice."""
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows import submit

    overlaps = submit.overlapping_unfinished(plan)
    if not overlaps:
        return
    connection = plan.destination.connection
    old, count = overlaps[0]
    raise BadInputError(
        f"{count:,} of these identifiers are also in unfinished plan {old.id} to "
        f"{old.destination_label} (from {old.created_at[:16].replace('T', ' ')} UTC, "
        f"{counted_of(old.acknowledged, old.batch_count, 'batch', 'batches')} acknowledged), "
        "so they would be "
        f"sent twice. Finish it first with `optout-desk submit {connection} --resume`, or give "
        f"it up with `optout-desk submit {connection} --discard {old.id}`, then run this again "
        "(what it delivered is left out)."
    )


def read_inputs(args: argparse.Namespace) -> tuple[list[Any], str | None, str | None]:
    """The identifiers to submit, the source file's name and its SHA-256."""
    from optout_desk.core.plan import inputs_from_lines

    region = _region(args)
    if args.source == "-":
        data = sys.stdin.buffer.read()
        return inputs_from_lines(_decode(data).splitlines(), region=region), "standard input", \
            hashlib.sha256(data).hexdigest()
    path = Path(args.source).expanduser()
    from optout_desk.workflows.submit import SPREADSHEET_SUFFIXES, read_list_file

    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return _spreadsheet_inputs(path, args)
    data = read_list_file(path)  # a folder, a missing or a huge file: one sentence
    return (inputs_from_lines(_decode(data).splitlines(), region=region, source_file=path.name),
            path.name, hashlib.sha256(data).hexdigest())


def _decode(data: bytes) -> str:
    from optout_desk.core.errors import BadInputError

    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadInputError("The input is not UTF-8 text; save it as UTF-8 and try again.")


def _region(args: argparse.Namespace) -> str:
    from optout_desk.core.errors import BadInputError

    if args.region:
        region = str(args.region).strip().upper()
    else:
        try:
            from optout_desk.files.mapping import default_region

            region = default_region()
        except ImportError:
            region = "US"
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise BadInputError(f"'{args.region}' is not a country code; give one like BE or US.")
    return region


def _spreadsheet_inputs(path: Path, args: argparse.Namespace) -> tuple[list[Any], str, str]:
    from optout_desk.workflows.submit import inputs_from_spreadsheet

    region = _region(args) if args.region else None
    return inputs_from_spreadsheet(path, sheet=args.sheet, columns=args.column, region=region,
                                   push_columns=args.push_column)


def print_preview(plan: Any) -> None:
    """The preview: destination, counts per type, batches, a payload sample, the short hash,
    and what was left out and why."""
    import json

    from optout_desk.commands._terminal import out
    from optout_desk.connectors.registry import system_label
    from optout_desk.core.plan import LeftOutReason, left_out_phrases

    dest = plan.destination
    out.print(f"Destination: {dest.label} — {system_label(dest.system)} at {dest.host}")
    out.print(f"To submit:   {counted(plan.total, 'opt-out')} ({kinds_counted(plan.counts)}) in "
              f"{counted(len(plan.batches), 'batch', 'batches')} of up to {plan.batch_size:,}")
    out.print(f"Plan hash:   {plan.short_hash}")
    if plan.batches:
        out.print("Sample of batch 1: " + json.dumps(plan.payload_sample(), ensure_ascii=False))
    if plan.left_out:
        out.print(f"Left out:    {len(plan.left_out):,}")
        for phrase in left_out_phrases(plan.left_out):
            out.print(f"  {phrase}")
        invalid = [x for x in plan.left_out if x.reason is LeftOutReason.INVALID]
        for item in invalid[:5]:
            where = f"row {item.row_number}: " if item.row_number else ""
            out.print(f"    {where}{item.original!r} — {item.detail}")
        if len(invalid) > 5:
            out.print(f"    … and {len(invalid) - 5:,} more invalid (see the receipt)")


def _confirm_or_refuse(args: argparse.Namespace, question: str) -> None:
    from optout_desk.commands._terminal import confirm, stdin_is_terminal
    from optout_desk.core.errors import BadInputError, Cancelled

    if args.yes:
        return
    if not stdin_is_terminal() or args.source == "-":
        raise BadInputError(
            "Refusing to submit without confirmation: there is no terminal to ask on. "
            "Check the preview with --dry-run, then run again with --yes."
        )
    if not confirm(question):
        raise Cancelled("Not submitted; nothing was sent.")


# -- sending and resuming --------------------------------------------------------------------


def _execute(args: argparse.Namespace, plan_id: int) -> int:
    from optout_desk.commands._terminal import err, out, progress_bar
    from optout_desk.core.progress import CancelToken
    from optout_desk.workflows import submit

    cancel = CancelToken()
    with _stop_on_ctrl_c(cancel, err), progress_bar(f"Submitting plan {plan_id}") as report:
        outcome = submit.execute_plan(
            plan_id, progress=report, cancel=cancel, verify=not args.no_verify,
            receipt=args.receipt, resend_unknown=args.resend_unknown,
        )
    for line in outcome.summary_lines():
        out.print(line)
    if outcome.unconfirmed:
        out.print("Not yet visible on the platform:")
        for value in outcome.unconfirmed[:MAX_LISTED]:
            out.print(f"  {value}")
        if len(outcome.unconfirmed) > MAX_LISTED:
            out.print(f"  … and {len(outcome.unconfirmed) - MAX_LISTED:,} more (see the receipt)")
    return _exit_code(outcome)


@contextmanager
def _stop_on_ctrl_c(cancel: Any, console: Any) -> Iterator[None]:
    """First Ctrl-C: finish the batch in flight, then stop. Second: stop now."""
    if sys.platform == "win32" or not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        console.print("Stopping after the batch in flight… (Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _resume(args: argparse.Namespace) -> int:
    """Every unfinished plan of the named destinations (all when none is named): asked once,
    then the destinations side by side, each destination's plans one after the other."""
    from optout_desk.commands._terminal import out
    from optout_desk.store import connections
    from optout_desk.store.db import connect
    from optout_desk.workflows import submit

    db = connect()
    try:
        for name in args.destinations:
            connections.get(db, name)  # an unknown name is an error, not "nothing"
    finally:
        db.close()
    plans = [plan for plan in submit.find_unfinished()
             if not args.destinations or plan.connection in args.destinations]
    if not plans:
        where = f" for {', '.join(args.destinations)}" if args.destinations else ""
        out.print(f"Nothing to resume{where}: every submission is finished.")
        return 0
    for plan in plans:
        out.print(
            f"Plan {plan.id} ({plan.short_hash}) from {plan.created_at[:19].replace('T', ' ')} "
            f"UTC to {plan.destination_label}: "
            f"{counted_of(plan.acknowledged, plan.batch_count, 'batch', 'batches')} "
            f"acknowledged, {plan.remaining:,} to send"
            + (f" ({plan.message})" if plan.message else "") + "."
        )
    if len(plans) == 1:
        plan = plans[0]
        _confirm_or_refuse(args, f"Resume plan {plan.id}: send {plan.remaining:,} remaining "
                                 f"batches to {plan.destination_label}?")
        return _execute(args, plan.id)
    by_connection: dict[str, list[int]] = {}
    for plan in plans:
        by_connection.setdefault(plan.connection, []).append(plan.id)
    _confirm_or_refuse(args, f"Resume {len(plans)} plans to "
                             f"{', '.join(by_connection)}?")
    return _resume_side_by_side(args, by_connection)


def _resume_side_by_side(args: argparse.Namespace, by_connection: dict[str, list[int]]) -> int:
    import threading

    from optout_desk.commands._terminal import err, out, progress_bars
    from optout_desk.core.errors import DeskError
    from optout_desk.core.progress import CancelToken
    from optout_desk.workflows import submit

    cancel = CancelToken()
    codes: dict[int, int] = {}
    lines: dict[int, list[str]] = {}
    bars = {name: f"{name} (plan{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))})"
            for name, ids in by_connection.items()}
    with _stop_on_ctrl_c(cancel, err), progress_bars(bars) as reports:
        def work(name: str, plan_ids: list[int]) -> None:
            for plan_id in plan_ids:
                try:
                    outcome = submit.execute_plan(
                        plan_id, progress=reports[name], cancel=cancel,
                        verify=not args.no_verify, resend_unknown=args.resend_unknown)
                except DeskError as exc:
                    lines[plan_id], codes[plan_id] = [f"Plan {plan_id}: {exc.message}"], 1
                    return
                lines[plan_id] = outcome.summary_lines()
                codes[plan_id] = _exit_code(outcome)
                if codes[plan_id]:
                    return

        threads = [threading.Thread(target=work, args=(name, ids), name=f"resume-{name}")
                   for name, ids in by_connection.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for ids in by_connection.values():
        for plan_id in ids:
            for line in lines.get(plan_id, []):
                out.print(line)
    unfinished = [i for ids in by_connection.values() for i in ids if i not in codes]
    return max([*codes.values(), 1 if unfinished else 0])
