"""`optout-desk submit CONNECTION --from FILE|-` and `optout-desk submit CONNECTION --resume`.

Builds the frozen plan, prints its preview, asks for confirmation (or takes --yes), journals it
and sends it batch by batch; --resume finishes plans a crash, a failure or a cancel left behind.
Ctrl-C once stops after the batch in flight (the plan stays resumable); twice stops at once.
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

MAX_LISTED = 20  # identifiers listed by name in the terminal before "… and N more"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit opt-outs to a connection (previewed, journaled, resumable)",
        description="Submit opt-outs to a connection in batches, exactly as previewed. Every "
        "batch is journaled, so an interrupted submission resumes with --resume.",
    )
    parser.add_argument("connection", metavar="CONNECTION", help="the destination connection")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from", dest="source", metavar="FILE",
        help="a spreadsheet (.xlsx, .csv …) or a text file with one identifier per line; "
        "'-' reads lines from standard input",
    )
    source.add_argument("--resume", action="store_true",
                        help="finish this connection's interrupted or failed submissions")
    parser.add_argument("--column", metavar="C", action="append",
                        help="the spreadsheet column to read (header, letter or number); "
                        "repeat for more; default: detected by content")
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return _resume(args)
    return _submit_new(args)


# -- a new submission ------------------------------------------------------------------------


def _submit_new(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.workflows import submit

    inputs, source_name, source_sha = read_inputs(args)
    plan = submit.prepare_plan(args.connection, inputs, batch_size=args.batch_size)
    print_preview(plan)
    if args.dry_run:
        out.print("Dry run: nothing was sent.")
        return 0
    if not plan.batches:
        out.print("Nothing to submit.")
        return 0
    _confirm_or_refuse(args, f"Submit {plan.total:,} opt-outs to {plan.destination.label}?")
    plan_id = submit.save_plan(plan, source_file=source_name, source_sha256=source_sha)
    return _execute(args, plan_id)


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
    return inputs_from_spreadsheet(path, sheet=args.sheet, columns=args.column, region=region)


def print_preview(plan: Any) -> None:
    """The preview: destination, counts per type, batches, a payload sample, the short hash,
    and what was left out and why."""
    import json

    from optout_desk.commands._terminal import out
    from optout_desk.connectors.registry import system_label
    from optout_desk.core.plan import REASON_LABELS, LeftOutReason

    dest = plan.destination
    out.print(f"Destination: {dest.label} — {system_label(dest.system)} at {dest.host}")
    kinds = ", ".join(f"{n:,} {kind}{'s' if n != 1 else ''}"
                      for kind, n in sorted(plan.counts.items())) or "nothing"
    out.print(f"To submit:   {plan.total:,} opt-outs ({kinds}) in {len(plan.batches):,} "
              f"batch{'es' if len(plan.batches) != 1 else ''} of up to {plan.batch_size:,}")
    out.print(f"Plan hash:   {plan.short_hash}")
    if plan.batches:
        out.print("Sample of batch 1: " + json.dumps(plan.payload_sample(), ensure_ascii=False))
    if plan.left_out:
        out.print(f"Left out:    {len(plan.left_out):,}")
        for reason, count in sorted(plan.left_out_counts.items()):
            out.print(f"  {count:,} {REASON_LABELS[LeftOutReason(reason)]}")
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
            receipt=args.receipt,
        )
    for line in outcome.summary_lines():
        out.print(line)
    if outcome.unconfirmed:
        out.print("Not yet visible on the platform:")
        for value in outcome.unconfirmed[:MAX_LISTED]:
            out.print(f"  {value}")
        if len(outcome.unconfirmed) > MAX_LISTED:
            out.print(f"  … and {len(outcome.unconfirmed) - MAX_LISTED:,} more (see the receipt)")
    if outcome.error:
        return 1
    return 130 if outcome.cancelled else 0


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
    from optout_desk.commands._terminal import out
    from optout_desk.store import connections
    from optout_desk.store.db import connect
    from optout_desk.workflows import submit

    db = connect()
    try:
        connections.get(db, args.connection)  # an unknown name is an error, not "nothing"
    finally:
        db.close()
    plans = submit.find_unfinished(args.connection)
    if not plans:
        out.print(f"Nothing to resume for {args.connection}: every submission is finished.")
        return 0
    worst = 0
    for plan in plans:
        out.print(
            f"Plan {plan.id} ({plan.short_hash}) from {plan.created_at[:19].replace('T', ' ')} "
            f"UTC to {plan.destination_label}: {plan.acknowledged:,} of {plan.batch_count:,} "
            f"batches acknowledged, {plan.remaining:,} to send"
            + (f" ({plan.message})" if plan.message else "") + "."
        )
        _confirm_or_refuse(args, f"Resume plan {plan.id}: send {plan.remaining:,} remaining "
                                 f"batches to {plan.destination_label}?")
        code = _execute(args, plan.id)
        worst = max(worst, code)
        if code:
            break
    return worst
