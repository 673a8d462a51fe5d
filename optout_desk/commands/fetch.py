"""`optout-desk fetch NAME`: sync a connection's opt-out list and optionally write it to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXPORT_SUFFIXES = (".csv", ".xlsx", ".jsonl")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="fetch a connection's opt-out list into the local cache",
        description="Fetch a connection's opt-outs into the local cache: incremental after the "
        "first run (only opt-outs since the last one seen), or full with --full.",
    )
    parser.add_argument("name", metavar="NAME", help="the connection")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", metavar="YYYY-MM-DD", help="only opt-outs from this date on")
    when.add_argument("--full", action="store_true", help="re-fetch the whole list")
    parser.add_argument("--survey", type=int, metavar="ID", help="a survey's list instead of "
                        "the account-wide one")
    parser.add_argument(
        "--output", type=Path, metavar="FILE",
        help="write the connection's complete cached list to FILE (.csv, .xlsx or .jsonl)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out, progress_bar
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows.sync import sync_optouts

    if args.output is not None and args.output.suffix.lower() not in EXPORT_SUFFIXES:
        raise BadInputError(
            f"Cannot write {args.output.name}: the output must end in .csv, .xlsx or .jsonl."
        )
    with progress_bar(f"Fetching {args.name}") as report:
        result = sync_optouts(
            args.name, full=args.full, since=args.since, survey_id=args.survey, progress=report
        )
    what = "survey " + result.scope if result.scope else "account-wide list"
    mode = "full" if result.full else "incremental"
    out.print(
        f"{result.connection} ({what}): {mode} fetch of {plural(result.fetched, 'opt-out')} "
        f"in {plural(result.pages, 'page')}, {result.added:,} new · {result.total:,} cached · "
        f"synced {result.synced_at.replace('T', ' ').rstrip('Z')} UTC"
    )
    if args.output is not None:
        written = write_cached_list(args.name, result.scope, args.output)
        out.print(f"Wrote {plural(written, 'opt-out')} to {args.output}")
    return 0


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def write_cached_list(connection: str, scope: str, path: Path) -> int:
    """Write a connection's whole cached list (not only this fetch) to a file."""
    from optout_desk.core.records import RECORD_COLUMNS
    from optout_desk.files.export import export_rows
    from optout_desk.store import cache, connections
    from optout_desk.store.db import connect

    db = connect()
    try:
        profile = connections.get(db, connection)
        assert profile.id is not None
        records = cache.load_records(db, profile.id, scope)
    finally:
        db.close()
    return export_rows(path, RECORD_COLUMNS, (record.as_row() for record in records))
