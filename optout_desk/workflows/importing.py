"""The one import workflow: open a spreadsheet -> the table and its proposed mapping ->
identifiers. Reconcile, Submit and the CLI all go through it, so they accept the same files
(`SUPPORTED_EXTENSIONS`, the one list files/ opens), propose the same mapping (identifier
columns, what the file is, its status and country columns) and record a failed or cancelled
read in the history the same way, whether it came from the GUI or the command line.

    opened = open_spreadsheet(path, purpose="reconcile", progress=..., cancel=...)
    mapping = opened.mapping            # the proposal; the GUI asks the operator to confirm it
    columns, labels = identifier_columns(opened.table, mapping, progress, cancel)
    inputs = plan_inputs(opened.table, mapping)   # what Submit sends: the file's opt-outs only
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from optout_desk.core.errors import BadInputError, Cancelled, DeskError
from optout_desk.core.identifiers import IdKind
from optout_desk.core.plan import PlanInput
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, no_progress
from optout_desk.core.reconcile import FileRole, IdentifierColumn

# The one list of file types the reader opens (files/formats.py owns it).
from optout_desk.files.formats import SUPPORTED_EXTENSIONS, dialog_filter
from optout_desk.files.mapping import (
    ColumnMapping,
    check_region,
    distinct_values,
    normalise_columns,
    opted_out_values_for,
    propose_mapping,
    resolve_column,
)
from optout_desk.files.spreadsheet import ImportedTable, read_table

log = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "OpenedSpreadsheet",
    "accepts",
    "choose_columns",
    "identifier_columns",
    "inputs_from_spreadsheet",
    "open_filter",
    "open_spreadsheet",
    "plan_inputs",
    "record_failed_read",
]


def open_filter() -> str:
    """The file dialog filter for every type the desk opens."""
    return dialog_filter("Spreadsheets and text files")


def accepts(path: Path) -> bool:
    """Whether the desk opens a file of this type (by its name; its bytes are judged when
    read)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


@dataclass
class OpenedSpreadsheet:
    table: ImportedTable
    mapping: ColumnMapping  # the proposal (the GUI's mapping step confirms or changes it)


def open_spreadsheet(
    path: Path,
    *,
    sheet: str | None = None,
    region: str | None = None,
    purpose: str = "reconcile",
    against: str = "",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> OpenedSpreadsheet:
    """Read `path` and propose its mapping. A bad file or a cancel is recorded in the history
    as a run of `purpose` ("reconcile" or "submit") before the error goes on."""
    path = Path(path)
    table: ImportedTable | None = None
    try:
        table = read_table(path, sheet=sheet, progress=progress, cancel=cancel)
        return OpenedSpreadsheet(table, propose_mapping(table, region))
    except Cancelled:
        record_failed_read(path, table, purpose, "cancelled", "Cancelled by the user.", against)
        raise
    except DeskError as exc:
        record_failed_read(path, table, purpose, "failed", exc.message, against)
        raise


def record_failed_read(path: Path, table: ImportedTable | None, purpose: str, outcome: str,
                       message: str, against: str = "") -> None:
    """A run that ended before it compared or sent anything, kept as evidence."""
    from optout_desk.store import history
    from optout_desk.store.db import connect

    try:
        db = connect()
    except DeskError:
        return  # no database: the error itself is what the operator must see
    try:
        where = f"against {Path(against).name}: " if against else ""
        history.record_run(
            db, kind=purpose, connection=None, source_file=Path(path).name,
            source_sha256=table.sha256 if table is not None else None, counts={},
            outcome=outcome, message=f"{where}{message}",
        )
    finally:
        db.close()


def choose_columns(
    table: ImportedTable,
    proposal: ColumnMapping,
    *,
    email_columns: Sequence[str] = (),
    phone_columns: Sequence[str] = (),
    region: str | None = None,
    role: FileRole | None = None,
    status_column: str | None = None,
    opted_out_values: Sequence[str] = (),
    country_column: str | None = None,
    push_columns: Sequence[str] = (),
) -> ColumnMapping:
    """The proposal with what the operator named on the command line (header names, letters
    or numbers) put in place of the detected parts."""
    mapping = replace(proposal)
    if email_columns or phone_columns:
        mapping.email_columns = [resolve_column(table, spec) for spec in email_columns]
        mapping.phone_columns = [resolve_column(table, spec) for spec in phone_columns]
    if push_columns:
        mapping.push_columns = [resolve_column(table, spec) for spec in push_columns]
        taken = set(mapping.push_columns)
        mapping.email_columns = [c for c in mapping.email_columns if c not in taken]
        mapping.phone_columns = [c for c in mapping.phone_columns if c not in taken]
    if region:
        mapping.region = check_region(region)
    if country_column is not None:
        mapping.country_column = resolve_column(table, country_column)
    if status_column is not None:
        mapping.status_column = resolve_column(table, status_column)
        mapping.role = FileRole.CONTACTS
        mapping.opted_out_values = tuple(opted_out_values) or opted_out_values_for(
            table.headers[mapping.status_column],
            distinct_values(table, mapping.status_column))
        if not mapping.opted_out_values:
            listing = ", ".join(f"'{v.text}'" for v in
                                distinct_values(table, mapping.status_column, 12))
            raise BadInputError(
                f"Name the values of {table.column_label(mapping.status_column)} that mean "
                f"'opted out' with --opted-out-values (its values: {listing}).")
    elif opted_out_values:
        raise BadInputError("--opted-out-values needs --status-column: the column they are in.")
    if role is not None:
        mapping.role = role
    if mapping.role is not FileRole.CONTACTS:
        mapping.status_column, mapping.opted_out_values = None, ()
    elif mapping.status_column is None:
        raise BadInputError(
            "A contact list needs its status column: name it with --status-column.")
    return mapping


def identifier_columns(
    table: ImportedTable, mapping: ColumnMapping, progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[list[IdentifierColumn], list[str]]:
    """Every mapped cell as an Identifier, column by column, with each column's label."""
    normalised = normalise_columns(table, mapping, progress=progress, cancel=cancel)
    columns: list[IdentifierColumn] = [item.identifiers for item in normalised]
    labels = [table.column_label(item.column) for item in normalised]
    return columns, labels


def plan_inputs(
    table: ImportedTable, mapping: ColumnMapping, progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[PlanInput]:
    """The identifiers a submission takes from this file, with their row numbers: every row
    of a list of opt-outs, only the opted-out rows of a contact list; a send list is scrubbed,
    never submitted."""
    if mapping.role is FileRole.SEND_LIST:
        raise BadInputError(
            f"{table.source.name} is a send list to scrub: nothing in it is an opt-out to "
            "submit. Reconcile it to remove the opted-out people instead.")
    if not (mapping.email_columns or mapping.phone_columns or mapping.push_columns):
        raise BadInputError(
            f"No email, phone or push token column was found in {table.source.name}; "
            "choose one.")
    wanted = (mapping.opted_out_flags(table) if mapping.role is FileRole.CONTACTS
              else None)
    columns, _labels = identifier_columns(table, mapping, progress, cancel)
    name, numbers = table.source.name, table.row_numbers
    inputs: list[PlanInput] = []
    for row, number in enumerate(numbers):
        if wanted is not None and not wanted[row]:
            continue
        for column in columns:
            identifier = column[row]
            if identifier is not None and identifier.original.strip():
                inputs.append(PlanInput(identifier, name, number))
    return inputs


def inputs_from_spreadsheet(
    path: Path, *, sheet: str | None = None, columns: Sequence[str] | None = None,
    region: str | None = None, push_columns: Sequence[str] = (),
    progress: ProgressCallback = no_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[list[PlanInput], str, str]:
    """A spreadsheet's opt-outs for Submit: (inputs, source name, the file's SHA-256). Named
    `columns` are emails when they look like emails, phones otherwise; `push_columns` hold
    push tokens."""
    opened = open_spreadsheet(path, sheet=sheet, region=region, purpose="submit",
                              progress=progress, cancel=cancel)
    table, mapping = opened.table, opened.mapping
    if columns:
        chosen = [resolve_column(table, spec) for spec in columns]
        mapping.email_columns = [c for c in chosen if c in mapping.email_columns
                                 or _looks_like_email(table, c)]
        mapping.phone_columns = [c for c in chosen if c not in mapping.email_columns]
    if push_columns:
        mapping.push_columns = [resolve_column(table, spec) for spec in push_columns]
        mapping.email_columns = [c for c in mapping.email_columns
                                 if c not in mapping.push_columns]
        mapping.phone_columns = [c for c in mapping.phone_columns
                                 if c not in mapping.push_columns]
    if region:
        mapping.region = check_region(region)
    return plan_inputs(table, mapping, progress, cancel), table.source.name, table.sha256


def _looks_like_email(table: ImportedTable, column: int) -> bool:
    values = [row[column] for row in table.rows[:200] if row[column] is not None]
    return sum("@" in str(value) for value in values) * 2 > len(values) > 0


def kind_counts(inputs: Sequence[PlanInput]) -> dict[IdKind, int]:
    """How many of the inputs are of each kind (emails, phones…), valid ones only."""
    counts: dict[IdKind, int] = {}
    for entry in inputs:
        if entry.identifier.key is not None:
            counts[entry.identifier.kind] = counts.get(entry.identifier.kind, 0) + 1
    return counts
