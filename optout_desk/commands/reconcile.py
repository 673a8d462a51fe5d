"""`optout-desk reconcile SPREADSHEET --against CONNECTION|FILE --output FILE`.

Compares a spreadsheet with a connection's cached opt-out list (account-wide) or another file,
writes the buckets (.xlsx workbook, .csv, or .jsonl for automation) and prints the counts.
With --scrub the output is the spreadsheet minus every row on the opt-out list.

What the file is comes from the import workflow's proposal (a contact list when a status column
is found, else a list of opt-outs) unless named: --file-is, or --status-column with
--opted-out-values for a contact list. The choice is printed, so no file is read as a list of
opt-outs without saying so.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optout_desk.core.wording import counted


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare a spreadsheet with a connection's opt-outs or another file",
        description="Sort every row of SPREADSHEET into to submit / already in sync / invalid / "
        "duplicates, and list the opt-outs missing from it, comparing with a connection's "
        "cached account-wide opt-out list (fetch it first), a look-up connection's answers "
        "for the spreadsheet's identifiers (asked with progress), or another spreadsheet.",
    )
    parser.add_argument("spreadsheet", type=Path, metavar="SPREADSHEET",
                        help="the spreadsheet (.xlsx, .xls, .ods, .csv …)")
    parser.add_argument("--against", required=True, metavar="CONNECTION|FILE",
                        help="a connection name, else the path of a spreadsheet or CSV export")
    parser.add_argument("--sheet", metavar="NAME", help="the worksheet to read")
    parser.add_argument("--email-column", action="append", default=[], metavar="C",
                        help="a column holding emails (header, letter or number); repeatable")
    parser.add_argument("--phone-column", action="append", default=[], metavar="C",
                        help="a column holding phones (header, letter or number); repeatable")
    parser.add_argument("--push-column", action="append", default=[], metavar="C",
                        help="a column holding push tokens (kept as written); repeatable")
    parser.add_argument("--region", metavar="CC",
                        help="default country for phones without +CC (default: system locale)")
    parser.add_argument("--country-column", metavar="C",
                        help="a column naming each row's country (ISO code or name): its "
                        "phones are read in that country; --region for the others")
    parser.add_argument("--file-is", choices=("optouts", "contacts", "send-list"),
                        help="what the file is: a list of opt-outs (every row opted out), a "
                        "contact list with a status column, or a send list to scrub "
                        "(default: detected and printed)")
    parser.add_argument("--status-column", metavar="C",
                        help="a contact list's status column: only rows whose status is one "
                        "of --opted-out-values are opt-outs")
    parser.add_argument("--opted-out-values", metavar="V,...",
                        help="the status values meaning opted out, comma separated "
                        "(default: proposed from the column's values, e.g. Unsubscribed)")
    parser.add_argument("--scrub", action="store_true",
                        help="write the spreadsheet minus every opted-out row (a clean send list)")
    parser.add_argument("--csv-per-bucket", action="store_true",
                        help="with a .csv output, also write one CSV per bucket beside it")
    parser.add_argument("--output", "-o", required=True, type=Path, metavar="FILE",
                        help="where to write the result: .xlsx, .csv or .jsonl")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from optout_desk.commands._terminal import out, progress_bar
    from optout_desk.core.reconcile import Bucket, FileRole
    from optout_desk.files.export import check_suffix
    from optout_desk.files.spreadsheet import check_readable
    from optout_desk.workflows.reconcile import check_output, run_reconcile, write_result

    check_suffix(args.output)
    check_readable(args.spreadsheet)  # missing, a folder, not a spreadsheet: said before reading
    # Before the comparison, not after it: the output must never overwrite an input.
    inputs = [args.spreadsheet]
    if Path(args.against).expanduser().exists():
        inputs.append(Path(args.against).expanduser())
    check_output(args.output, inputs, csv_per_bucket=args.csv_per_bucket and not args.scrub)
    role = {"optouts": FileRole.OPTOUTS, "contacts": FileRole.CONTACTS,
            "send-list": FileRole.SEND_LIST, None: None}[args.file_is]
    if args.scrub and role is None:
        role = FileRole.SEND_LIST
    values = [v.strip() for v in (args.opted_out_values or "").split(",") if v.strip()]
    with progress_bar(f"Reconciling {args.spreadsheet.name}") as report:
        run = run_reconcile(
            args.spreadsheet, args.against, sheet=args.sheet, region=args.region,
            email_columns=args.email_column, phone_columns=args.phone_column, role=role,
            status_column=args.status_column, opted_out_values=values,
            country_column=args.country_column, push_columns=args.push_column,
            progress=report,
        )
    mapping = run.mapping
    named = "given" if role is not None or args.status_column else "detected"
    out.print(f"This file is {mapping.role.description} ({named})")
    if mapping.role is FileRole.CONTACTS and mapping.status_column is not None:
        out.print(f"  status column {run.table.column_label(mapping.status_column)}; opted out: "
                  + ", ".join(f"'{v}'" for v in mapping.opted_out_values))
    chosen = "given" if args.email_column or args.phone_column else "detected"
    emails = ", ".join(run.labels_of(mapping.email_columns)) or "none"
    phones = ", ".join(run.labels_of(mapping.phone_columns)) or "none"
    country = (f" · country column {run.table.column_label(mapping.country_column)}, else"
               if mapping.country_column is not None else " ·")
    out.print(f"Email columns ({chosen}): {emails} · phone columns ({chosen}): {phones}"
              f"{country} region {mapping.region}")
    out.print(f"Compared {counted(run.result.row_count, 'row')} with {run.other.description} "
              f"({counted(run.result.other_count, 'record')})")
    labels = run.bucket_labels
    for bucket, count in run.result.counts().items():
        if bucket is Bucket.MISSING_FROM_CRM and not run.other.complete:
            out.print(f"  {labels[bucket]:<18} {'—':>10}  ({run.other.missing_note})")
            continue
        out.print(f"  {labels[bucket]:<18} {count:>10,}")
    if mapping.role is not FileRole.SEND_LIST and run.result.counts()[Bucket.TO_SUBMIT]:
        out.print(f"  To submit: {run.describe_bucket(Bucket.TO_SUBMIT)}")
    if run.result.subscribed_match:
        out.print(f"  {len(run.result.subscribed_match):,} of the missing are held as "
                  "subscribed in the CRM")
    if run.suggestions:
        out.print(f"  {'Suggestions':<18} {len(run.suggestions):>10,}  (possible matches to "
                  "review; not applied)")
    with progress_bar(f"Writing {args.output.name}") as report:
        written = write_result(run, args.output, scrub=args.scrub,
                               csv_per_bucket=args.csv_per_bucket, progress=report)
    if args.scrub:
        kept = len(run.result.scrubbed_rows())
        out.print(f"Send list: {kept:,} of {run.result.row_count:,} rows kept "
                  f"({run.result.row_count - kept:,} opted out removed)")
    for path in written:
        out.print(f"Wrote {path}")
    return 0
