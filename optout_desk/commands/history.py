"""`optout-desk history`: every fetch, reconcile and submit run, and their receipts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optout_desk.core.wording import counted


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list past fetch, reconcile and submit runs; export a run's receipt",
        description="The run history: when, who (OS user), which connection, which source file "
        "(name and SHA-256), counts and outcome. --export-receipt writes a run's receipt.",
    )
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="show the N newest runs (default 50)")
    parser.add_argument("--export-receipt", type=int, metavar="RUN_ID",
                        help="write this run's receipt to --output")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="where --export-receipt writes (.csv or .xlsx)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out
    from optout_desk.core.errors import BadInputError

    if args.export_receipt is not None:
        if args.output is None:
            raise BadInputError("Say where to write the receipt with --output FILE.")
        from optout_desk.workflows.submit import export_run_receipt

        rows = export_run_receipt(args.export_receipt, args.output)
        out.print(f"Wrote run {args.export_receipt}'s receipt ({counted(rows, 'row')}) to "
                  f"{args.output}")
        return 0
    if args.limit < 1:
        raise BadInputError("--limit must be at least 1.")
    print_runs(args.limit)
    return 0


def print_runs(limit: int) -> None:
    from rich.table import Table

    from optout_desk.commands._terminal import out
    from optout_desk.store import history
    from optout_desk.store.db import connect

    db = connect()
    try:
        runs = history.list_runs(db, limit)
    finally:
        db.close()
    if not runs:
        out.print("No runs yet.")
        return
    headers = ("Run", "Time (UTC)", "User", "Kind", "Connection", "Source", "SHA-256",
               "Counts", "Outcome")
    rows = [
        (str(r.id), r.finished_at[:19].replace("T", " "), r.os_user, r.kind, r.connection or "",
         r.source_file or "", r.source_sha256 or "",
         ", ".join(f"{k} {v:,}" for k, v in r.counts.items() if k != "plan_id"),
         r.outcome + (f": {r.message}" if r.message else ""))
        for r in runs
    ]
    if not out.is_terminal:
        # Scripts get one tab-separated line per run, nothing folded or cut.
        print("\t".join(headers))
        for row in rows:
            print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    table = Table(show_lines=False)
    for title in headers:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*row[:6], row[6][:16] + ("…" if row[6] else ""), *row[7:])
    out.print(table)
