"""The reconcile job: a spreadsheet against a connection's cached opt-outs or another file.

`run_reconcile` opens the spreadsheet through the one import workflow (workflows/importing),
loads the other list, sorts every row into a bucket (core/reconcile) by what the file is — a list
of opt-outs, a contact list with a status column, or a send list to scrub — looks for
near-match suggestions and records the run in the history. `write_result` writes the outcome as
a workbook (its Summary sheet names what the file is), CSV files or JSON lines.

Against a connection that can list, its ACCOUNT-WIDE cached list (scope "") is used: it is the
list a submission adds to, so "to submit" means "not yet opted out account-wide". A survey's
list can be chosen with `scope=`. Against a connection that can only look identifiers up
(myKaarma), the spreadsheet's identifiers are asked about (answers are kept, and reused while
younger than the connection's limit): the buckets fill as usual, but what the platform holds
beyond the spreadsheet cannot be known, so "Missing from CRM" says so instead of being empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optout_desk.connectors import registry
from optout_desk.connectors.base import Capability
from optout_desk.core.errors import BadInputError, Cancelled, DeskError
from optout_desk.core.identifiers import (
    Identifier,
    IdKind,
    normalise_email_column,
    phone_normaliser,
)
from optout_desk.core.plan import PlanInput
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.reconcile import (
    ROLE_BUCKETS,
    ROW_BUCKETS,
    Bucket,
    FileRole,
    IdentifierColumn,
    Reconciliation,
    Suggestion,
    bucket_labels,
    explain_missing,
    explain_row,
    matched_identifier,
    reconcile,
    suggest_near_matches,
)
from optout_desk.core.records import (
    RECORD_COLUMNS,
    RECORD_HEADERS,
    source_label,
    timestamp_value,
)
from optout_desk.core.wording import NumberFormat, counted, grouped, rows_and_identifiers
from optout_desk.files import countries, export
from optout_desk.files.mapping import ColumnMapping, detect_columns, unknown_countries
from optout_desk.files.spreadsheet import ImportedTable, column_letter, read_table
from optout_desk.store import cache, connections, history
from optout_desk.store.db import connect
from optout_desk.workflows import importing
from optout_desk.workflows.destinations import look_up

log = logging.getLogger(__name__)

STATUS_HEADERS = ("Sheet row", "Status", "Reason")
OWASP_NOTE = (
    "No cell can run as a formula (OWASP CSV injection): in the workbook every text is a text "
    "cell; in CSV files a text starting with = + - @ tab or CR gets a leading ' (phones such as "
    "+32470123456 too, so Excel shows them as text)."
)
RULES_NOTE = (
    "Rows match on normalised keys: email trimmed, Unicode NFC, lower-case, IDNA domain; phone "
    "in E.164, read in the row's country (country column) or the default region. A row matches "
    "when any of its identifiers matches. Near-matches (Gmail dots, +tags, domain typos, stray "
    "spaces) are suggestions only."
)


@dataclass
class OtherList:
    """The list the spreadsheet is compared with: a connection's opt-outs or another file."""

    kind: str  # "connection" | "lookup" | "file"
    name: str  # the connection's name, or the file's name
    headers: list[str]
    rows: Sequence[Sequence[object]]  # display values, one per record
    columns: list[IdentifierColumn]
    labels: list[str]
    row_numbers: list[int] | None = None  # a file's spreadsheet row numbers
    scope: str | None = None
    synced_at: str | None = None
    sha256: str | None = None
    sheet: str | None = None
    path: Path | None = None  # a file's path (an output must never overwrite it)
    # A look-up answers only for what it is asked: the records it holds beyond the spreadsheet
    # ("Missing from CRM") cannot be known, and `missing_note` says why.
    complete: bool = True
    missing_note: str = ""
    # Field names of a record in JSON lines (for programs; readable headers elsewhere).
    json_keys: list[str] | None = None
    asked: int = 0  # look-ups: identifiers asked about by this run
    reused: int = 0  # look-ups: answered from answers kept earlier

    @property
    def description(self) -> str:
        if self.kind == "lookup":
            return (f"connection {self.name} (look-up of {self.asked + self.reused:,} "
                    f"identifiers: {self.asked:,} asked now, {self.reused:,} answered earlier)")
        if self.kind == "connection":
            what = f"survey {self.scope}" if self.scope else "account-wide list"
            # "2026-12-02T18:00:18Z" -> "2026-12-02 18:00 UTC": no ISO text in front of people.
            when = (f", synced {self.synced_at[:16].replace('T', ' ')} UTC"
                    if self.synced_at else "")
            return f"connection {self.name} ({what}{when})"
        return f"file {self.name}" + (f", sheet {self.sheet}" if self.sheet else "")

    def record(self, index: int) -> list[object]:
        """A record as exported and shown: a cached opt-out's time as a UTC date-time (a date
        cell in xlsx) and its source in words; other lists' values as they are."""
        values = list(self.rows[index])
        if self.kind == "connection":
            values[0] = timestamp_value(str(values[0]))
            values[-1] = source_label(str(values[-1]))
        return values

    @property
    def short_name(self) -> str:
        if self.kind == "lookup":
            return f"{self.name}'s look-up answers"
        return f"{self.name}'s opt-out list" if self.kind == "connection" else self.name


@dataclass
class ReconcileRun:
    table: ImportedTable
    mapping: ColumnMapping
    columns: list[IdentifierColumn]
    labels: list[str]
    other: OtherList
    result: Reconciliation
    suggestions: list[Suggestion] = field(default_factory=list)
    history_id: int | None = None
    statuses: list[str] | None = None  # a contact list's status cell per row

    # -- what the file is

    @property
    def role(self) -> FileRole:
        return self.mapping.role

    @property
    def bucket_labels(self) -> dict[Bucket, str]:
        return bucket_labels(self.role)

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        """The buckets shown for this kind of file, in order."""
        return ROLE_BUCKETS[self.role]

    # -- counts and rows

    @property
    def counts(self) -> dict[str, int]:
        return {bucket.value: count for bucket, count in self.result.counts().items()}

    def rows_in(self, bucket: Bucket) -> list[int]:
        return self.result.rows_in(bucket)

    def row_number(self, row: int) -> int:
        return self.table.row_numbers[row]

    def identifier_kinds(self, rows: Sequence[int]) -> dict[str, int]:
        """Valid identifiers of these rows per kind ({"email": 1208, "phone": 511})."""
        kinds: dict[str, int] = {}
        for column in self.columns:
            for row in rows:
                identifier = column[row]
                if identifier is not None and identifier.key is not None:
                    kind = identifier.kind.value
                    kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def describe_bucket(self, bucket: Bucket, number: NumberFormat = grouped) -> str:
        """"1,208 rows · 1,719 identifiers (1,208 emails, 511 phones)" for a row bucket."""
        rows = self.rows_in(bucket)
        if bucket is Bucket.MISSING_FROM_CRM:
            return counted(len(rows), "record", number=number)
        return rows_and_identifiers(len(rows), self.identifier_kinds(rows), number)

    def explain(self, row: int) -> str:
        return explain_row(
            self.result, row, self.columns, self.labels, self.other.columns,
            self.table.row_numbers, self.other.short_name, statuses=self.statuses,
        )

    def explain_missing(self, index: int) -> str:
        row = self.result.subscribed_match.get(index)
        if row is None:
            return explain_missing(index, self.other.columns, self.other.labels)
        return explain_missing(
            index, self.other.columns, self.other.labels,
            subscribed_row=self.table.row_numbers[row],
            subscribed_status=self.statuses[row] if self.statuses is not None else None)

    def matched_on(self, row: int) -> dict[str, str] | None:
        found = matched_identifier(self.result, row, self.columns)
        if found is None:
            return None
        column, identifier = found
        return {
            "column": self.labels[column], "kind": identifier.kind.value,
            "value": identifier.original, "key": identifier.key or "", "rule": identifier.rule,
        }

    def to_submit_inputs(self) -> list[PlanInput]:
        """Every usable identifier of the rows to submit, with where it came from (a send
        list has nothing to submit)."""
        if self.role is FileRole.SEND_LIST:
            return []
        source = self.table.source.name
        inputs: list[PlanInput] = []
        for row in self.result.rows_in(Bucket.TO_SUBMIT):
            number = self.table.row_numbers[row]
            for column in self.columns:
                identifier = column[row]
                if identifier is not None and identifier.key is not None:
                    inputs.append(PlanInput(identifier, source, number))
        return inputs

    # -- tables for display and export

    def bucket_headers(self, bucket: Bucket) -> list[str]:
        if bucket is Bucket.MISSING_FROM_CRM:
            return [*self.other.headers, *STATUS_HEADERS]
        return [*self.table.headers, *STATUS_HEADERS]

    def bucket_rows(self, bucket: Bucket) -> Iterator[list[object]]:
        """Original columns, then the sheet row number, the status and the reason."""
        label = self.bucket_labels[bucket]
        if bucket is Bucket.MISSING_FROM_CRM:
            numbers = self.other.row_numbers
            crm_rows = self.result.subscribed_match
            for index in self.result.missing:
                crm_row = crm_rows.get(index)
                number = (self.table.row_numbers[crm_row] if crm_row is not None
                          else numbers[index] if numbers is not None else None)
                yield [*self.other.record(index), number, label, self.explain_missing(index)]
            return
        rows, numbers = self.table.rows, self.table.row_numbers
        for row in self.result.rows_in(bucket):
            yield [*rows[row], numbers[row], label, self.explain(row)]

    def scrubbed(self) -> Iterator[list[object]]:
        rows = self.table.rows
        for row in self.result.scrubbed_rows():
            yield list(rows[row])

    def summary(self) -> list[tuple[str, object]]:
        table, mapping = self.table, self.mapping
        items: list[tuple[str, object]] = [
            ("Source file", table.source.name),
            ("Source SHA-256", table.sha256),
            ("Sheet", table.sheet or "(text file)"),
            ("Header row", table.header_row_number),
            ("This file is", mapping.role.description),
        ]
        if mapping.role is FileRole.CONTACTS and mapping.status_column is not None:
            items.append(("Status column", table.column_label(mapping.status_column)))
            items.append(("Values meaning opted out", ", ".join(mapping.opted_out_values)))
        items += [
            ("Email columns", ", ".join(self.labels_of(mapping.email_columns)) or "(none)"),
            ("Phone columns", ", ".join(self.labels_of(mapping.phone_columns)) or "(none)"),
        ]
        if mapping.country_column is not None:
            items.append(("Country column", table.column_label(mapping.country_column)))
            items.append(("Phone region where the country is unknown",
                          f"{countries.name_of(mapping.region)} ({mapping.region})"))
            unknown = unknown_countries(table, mapping)
            if unknown:
                items.append(("Countries not recognised", ", ".join(
                    f"'{value.text}' ({counted(value.rows, 'row')})" for value in unknown[:10])))
        else:
            items.append(("Phone region", f"{countries.name_of(mapping.region)} "
                                          f"({mapping.region})"))
        items.append(("Compared with", self.other.description))
        if self.other.kind == "lookup":
            items.append(("Connection", self.other.name))
            items.append(("Missing from CRM", self.other.missing_note))
        elif self.other.kind == "connection":
            items.append(("Connection", self.other.name))
            items.append(("List", "account-wide" if not self.other.scope
                          else f"survey {self.other.scope}"))
            items.append(("Synced at (UTC)", self.other.synced_at or "never"))
        else:
            items.append(("Other file SHA-256", self.other.sha256 or ""))
        items.append(("Rows in the spreadsheet", self.result.row_count))
        items.append(("Records on the other list", self.result.other_count))
        for bucket, count in self.result.counts().items():
            if bucket is Bucket.MISSING_FROM_CRM and not self.other.complete:
                continue  # cannot be known: said above instead of a 0
            items.append((self.bucket_labels[bucket], count))
        if self.role is not FileRole.SEND_LIST:
            items.append(("Identifiers to submit",
                          self.describe_bucket(Bucket.TO_SUBMIT).split(" · ", 1)[1]))
        if self.result.subscribed_match:
            items.append(("Missing from CRM: held as subscribed in the CRM",
                          len(self.result.subscribed_match)))
        if self.result.collapsed_missing:
            items.append(("Repeated records collapsed", self.result.collapsed_missing))
        items.append(("Near-match suggestions", len(self.suggestions)))
        items.append(("Rules", RULES_NOTE))
        items.append(("Formula safety", OWASP_NOTE))
        items.extend(("Import note", note) for note in table.notes)
        return items

    def labels_of(self, indexes: Sequence[int]) -> list[str]:
        return [self.table.column_label(index) for index in indexes]

    def suggestion_rows(self) -> Iterator[list[object]]:
        for suggestion in self.suggestions:
            yield [
                self.table.row_numbers[suggestion.row], self.labels[suggestion.column],
                suggestion.value, suggestion.other_value, "; ".join(suggestion.reasons),
            ]

    def jsonl_objects(self) -> Iterator[dict[str, object]]:
        """One object per spreadsheet row (spreadsheet order), then one per missing record."""
        result, numbers = self.result, self.table.row_numbers
        for row in range(result.row_count):
            bucket = result.bucket_of(row)
            obj: dict[str, object] = {
                "row": numbers[row],
                "bucket": bucket.value,
                "matched_on": self.matched_on(row),
                "reason": self.explain(row),
                "identifiers": _identifiers(self.columns, self.labels, row),
            }
            if bucket is Bucket.DUPLICATE:
                obj["duplicate_of"] = numbers[result.duplicate_of[row][0]]
            yield obj
        for index in result.missing:
            missing: dict[str, object] = {
                "row": None,
                "bucket": Bucket.MISSING_FROM_CRM.value,
                "matched_on": None,
                "reason": self.explain_missing(index),
                "identifiers": _identifiers(self.other.columns, self.other.labels, index),
                "record": dict(zip(self.other.json_keys or self.other.headers,
                                   map(export.json_value,
                                                           self.other.rows[index]),
                                   strict=False)),
            }
            if self.other.row_numbers is not None:
                missing["source_row"] = self.other.row_numbers[index]
            yield missing


def _identifiers(
    columns: Sequence[IdentifierColumn], labels: Sequence[str], row: int
) -> list[dict[str, str | None]]:
    found = []
    for label, column in zip(labels, columns, strict=True):
        identifier = column[row]
        if identifier is not None:
            found.append({"column": label, "kind": identifier.kind.value,
                          "value": identifier.original, "key": identifier.key,
                          "problem": identifier.problem})
    return found


# ---------------------------------------------------------------- running


def run_reconcile(
    spreadsheet: Path,
    against: str,
    *,
    sheet: str | None = None,
    mapping: ColumnMapping | None = None,
    region: str | None = None,
    email_columns: Sequence[str] = (),
    phone_columns: Sequence[str] = (),
    role: FileRole | None = None,
    status_column: str | None = None,
    opted_out_values: Sequence[str] = (),
    country_column: str | None = None,
    push_columns: Sequence[str] = (),
    scope: str = "",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ReconcileRun:
    """Compare `spreadsheet` with `against` (a connection name, else a file path).

    The mapping is `mapping`, else the import workflow's proposal with what is named here put
    in its place: `email_columns`/`phone_columns`/`status_column`/`country_column` (header
    names, letters or numbers), `role` (what the file is), `opted_out_values` (the status
    values meaning opted out) and `region` (the default phone region)."""
    spreadsheet = Path(spreadsheet)
    opened = importing.open_spreadsheet(spreadsheet, sheet=sheet, region=region,
                                        against=against, progress=progress, cancel=cancel)
    table = opened.table
    if mapping is None:
        try:
            mapping = importing.choose_columns(
                table, opened.mapping, email_columns=email_columns,
                phone_columns=phone_columns, region=region, role=role,
                status_column=status_column, opted_out_values=opted_out_values,
                country_column=country_column, push_columns=push_columns)
        except DeskError as exc:
            _record_failure(spreadsheet, table, against, "failed", exc.message)
            raise
    return reconcile_table(table, mapping, against, scope=scope, progress=progress,
                           cancel=cancel)


def reconcile_table(
    table: ImportedTable,
    mapping: ColumnMapping,
    against: str,
    *,
    scope: str = "",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ReconcileRun:
    """`run_reconcile` for a table already read (the GUI reads it to show the mapping)."""
    try:
        check_mapping(table, mapping)
        opted_out = (mapping.opted_out_flags(table) if mapping.role is FileRole.CONTACTS
                     else None)
        columns, labels = importing.identifier_columns(table, mapping, progress, cancel)
        cancel.raise_if_cancelled()
        other = load_other(against, mapping.region, table.source, progress, cancel, scope,
                           columns)
        cancel.raise_if_cancelled()
        progress(Progress(0, None, "rows", "Comparing…"))
        result = reconcile(columns, other.columns, role=mapping.role, opted_out=opted_out)
        cancel.raise_if_cancelled()
        progress(Progress(0, None, "rows", "Looking for near-matches…"))
        suggestions = suggest_near_matches(result, columns, other.columns)
        run = ReconcileRun(table, mapping, columns, labels, other, result, suggestions,
                           statuses=mapping.statuses(table))
    except Cancelled:
        _record_failure(table.source, table, against, "cancelled", "Cancelled by the user.")
        raise
    except DeskError as exc:
        _record_failure(table.source, table, against, "failed", exc.message)
        raise
    run.history_id = _record(run)
    log.info("reconcile done: %s", run.counts)
    return run


def check_mapping(table: ImportedTable, mapping: ColumnMapping) -> None:
    columns = [*mapping.email_columns, *mapping.phone_columns, *mapping.push_columns]
    if not columns:
        raise BadInputError(
            f"No email or phone column was found in {table.source.name}; name the columns "
            "with --email-column / --phone-column / --push-column (or pick them in the "
            "mapping dialog)."
        )
    for index in columns:
        if not 0 <= index < table.column_count:
            raise BadInputError(
                f"Column {column_letter(index)} does not exist in {table.source.name}."
            )


def normalise(
    table: ImportedTable, mapping: ColumnMapping, progress: ProgressCallback,
    cancel: CancelToken,
) -> tuple[list[IdentifierColumn], list[str]]:
    return importing.identifier_columns(table, mapping, progress, cancel)


def load_other(
    against: str, region: str, spreadsheet: Path, progress: ProgressCallback,
    cancel: CancelToken, scope: str = "", columns: Sequence[IdentifierColumn] = (),
) -> OtherList:
    """A connection's cached list (or its look-up answers for `columns`' identifiers) when
    `against` names one, else a file; else BadInputError."""
    db = connect()
    try:
        profile = connections.get(db, against) if connections.exists(db, against) else None
        if profile is not None:
            info = registry.system_info(profile.system)
            if info.can(Capability.LIST):
                progress(Progress(0, None, "records", f"Loading {against}'s opt-outs…"))
                return _connection_list(db, against, region, scope)
    finally:
        db.close()
    if profile is not None:
        if info.can(Capability.LOOKUP):
            return _lookup_list(against, info.label, columns, info.routes.kinds, progress,
                                cancel)
        raise BadInputError(
            f"{against} ({info.label}) can neither list its opt-outs nor look identifiers "
            "up, so there is nothing to compare with; choose a connection that can, or a file."
        )
    path = Path(against).expanduser()
    if path.is_dir():
        raise BadInputError(f"'{against}' is a folder, not a file; choose a file inside it.")
    if path.is_file():
        if path.resolve() == spreadsheet.resolve():
            raise BadInputError("The spreadsheet cannot be compared with itself.")
        return _file_list(path, region, progress, cancel)
    raise BadInputError(
        f"'{against}' is neither a connection nor a file; give a connection name (see the "
        "Connections page or `optout-desk fetch`) or the path of a spreadsheet or CSV export."
    )


LOOKUP_HEADERS = ("Kind", "Identifier", "Platform state", "Changed")


def _lookup_list(name: str, label: str, columns: Sequence[IdentifierColumn],
                 kinds: frozenset[IdKind], progress: ProgressCallback,
                 cancel: CancelToken) -> OtherList:
    """The spreadsheet's distinct valid identifiers of the kinds the platform looks up, asked
    about; the ones it holds as opted out become the list to compare with."""
    wanted = list(dict.fromkeys(
        (identifier.kind, identifier.key) for column in columns for identifier in column
        if identifier is not None and identifier.key is not None and identifier.kind in kinds))
    outcome = look_up(name, wanted, progress=progress, cancel=cancel)
    opted = [(kind, key) for (kind, key), answer in outcome.answers.items() if answer.opted_out]
    emails: list[Identifier | None] = []
    phones: list[Identifier | None] = []
    rows: list[tuple[object, ...]] = []
    for kind, key in opted:
        identifier = Identifier(kind, key, key, basis=f"{label} look-up")
        emails.append(identifier if kind is IdKind.EMAIL else None)
        phones.append(identifier if kind is IdKind.PHONE else None)
        answer = outcome.answers[(kind, key)]
        rows.append((str(kind), key, answer.state, answer.changed_at or ""))
    return OtherList(
        kind="lookup", name=name, headers=list(LOOKUP_HEADERS), rows=rows,
        columns=[emails, phones], labels=["Email", "Phone"], complete=False,
        missing_note=(f"cannot be known: {label} answers look-ups for given identifiers and "
                      "has no list of its own to compare the CRM with"),
        asked=outcome.asked, reused=outcome.reused,
    )


def _connection_list(db: object, name: str, region: str, scope: str) -> OtherList:
    import sqlite3

    assert isinstance(db, sqlite3.Connection)
    profile = connections.get(db, name)
    assert profile.id is not None
    state = cache.sync_state(db, profile.id, scope)
    if state.last_synced_at is None:
        what = f"survey {scope}'s list" if scope else "its opt-out list"
        raise BadInputError(
            f"Connection {name} has not fetched {what} yet; fetch it first "
            f"(`optout-desk fetch {name}`) and reconcile again."
        )
    data = cache.load_columns(db, profile.id, scope)
    # The bulk normalisers (a million cached records per big account); empty cells stay None.
    emails: IdentifierColumn = normalise_email_column(data["Email"])
    phones: IdentifierColumn = phone_normaliser(region).many(
        [value or None for value in data["Phone"]])
    rows = list(zip(*(data[name] for name in RECORD_COLUMNS), strict=True))
    return OtherList(
        kind="connection", name=name, headers=list(RECORD_HEADERS), rows=rows,
        json_keys=list(RECORD_COLUMNS),
        columns=[emails, phones], labels=["Email", "Phone"], scope=scope,
        synced_at=state.last_synced_at,
    )


def _file_list(
    path: Path, region: str, progress: ProgressCallback, cancel: CancelToken
) -> OtherList:
    table = read_table(path, progress=progress, cancel=cancel)
    mapping = detect_columns(table, region)
    if not mapping.email_columns and not mapping.phone_columns:
        raise BadInputError(
            f"No email or phone column was found in {path.name}, the list to compare with."
        )
    columns, labels = normalise(table, mapping, progress, cancel)
    return OtherList(
        kind="file", name=path.name, headers=list(table.headers), rows=table.rows,
        columns=columns, labels=labels, row_numbers=table.row_numbers, sha256=table.sha256,
        sheet=table.sheet, path=path,
    )


def _record(run: ReconcileRun) -> int | None:
    db = connect()
    try:
        return history.record_run(
            db, kind="reconcile",
            connection=run.other.name if run.other.kind == "connection" else None,
            source_file=run.table.source.name, source_sha256=run.table.sha256,
            counts=run.counts, outcome="ok",
            message=f"compared with {run.other.description}",
        )
    finally:
        db.close()


def _record_failure(
    spreadsheet: Path, table: ImportedTable | None, against: str, outcome: str, message: str
) -> None:
    importing.record_failed_read(spreadsheet, table, "reconcile", outcome, message,
                                 against or "?")


# ---------------------------------------------------------------- writing


def write_result(
    run: ReconcileRun,
    path: Path,
    *,
    scrub: bool = False,
    csv_per_bucket: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[Path]:
    """Write the result by suffix; returns every file written.

    .xlsx: Summary, then one sheet per bucket (and Suggestions) — or, with scrub, the send
    list then Summary. .csv: every spreadsheet row with status and reason, then the missing
    records (scrub: the send list only); with csv_per_bucket also `<stem>-<bucket>.csv` per
    bucket. .jsonl: one object per row (see ReconcileRun.jsonl_objects; scrub: kept rows).
    """
    path = Path(path)
    suffix = export.check_suffix(path)
    inputs = [run.table.source] + ([run.other.path] if run.other.path is not None else [])
    check_output(path, inputs, csv_per_bucket=csv_per_bucket and not scrub)
    headers = list(run.table.headers)
    if suffix == ".xlsx":
        sheets: list[export.SheetSpec] = []
        summary = export.SheetSpec("Summary", ["Item", "Value"], run.summary())
        if scrub:
            sheets = [export.SheetSpec("Send list", headers, run.scrubbed()), summary]
        else:
            sheets = [summary]
            sheets += [
                export.SheetSpec(run.bucket_labels[bucket], run.bucket_headers(bucket),
                                 run.bucket_rows(bucket))
                for bucket in run.buckets
                if bucket is not Bucket.MISSING_FROM_CRM or run.other.complete
            ]
            if run.suggestions:
                sheets.append(export.SheetSpec(
                    "Suggestions",
                    ["Sheet row", "Column", "Value", "Possible opt-out", "Why"],
                    run.suggestion_rows(),
                ))
        export.write_workbook(path, sheets, progress=progress, cancel=cancel)
        return [path]
    if suffix == ".csv":
        written = [path]
        if scrub:
            export.export_rows(path, headers, run.scrubbed(), progress=progress, cancel=cancel)
            return written
        export.export_rows(path, _combined_headers(run), _combined_rows(run),
                           progress=progress, cancel=cancel)
        if csv_per_bucket:
            for bucket in run.buckets:
                target = path.with_name(f"{path.stem}-{bucket.value}.csv")
                export.export_rows(target, run.bucket_headers(bucket), run.bucket_rows(bucket),
                                   cancel=cancel)
                written.append(target)
        return written
    if scrub:
        numbers = run.table.row_numbers
        objects = (
            {"row": numbers[row], "values": dict(zip(headers, map(export.json_value,
                                                                  run.table.rows[row]),
                                                     strict=False))}
            for row in run.result.scrubbed_rows()
        )
        export.write_jsonl(path, objects, cancel=cancel)
    else:
        export.write_jsonl(path, run.jsonl_objects(), cancel=cancel)
    return [path]


def output_paths(path: Path, *, csv_per_bucket: bool = False) -> list[Path]:
    """Every file `write_result` writes for `path` (a .csv with csv_per_bucket adds one per
    bucket beside it)."""
    path = Path(path)
    paths = [path]
    if csv_per_bucket and path.suffix.lower() == ".csv":
        paths += [path.with_name(f"{path.stem}-{bucket.value}.csv") for bucket in Bucket]
    return paths


def check_output(path: Path, inputs: Sequence[Path], *, csv_per_bucket: bool = False) -> None:
    """BadInputError when a file the result would be written to is one of the inputs (the same
    file after links and case are resolved): writing it would destroy the list being compared."""
    for target in output_paths(path, csv_per_bucket=csv_per_bucket):
        for source in inputs:
            if _same_file(target, Path(source)):
                raise BadInputError(
                    f"The result would overwrite '{Path(source).name}', which is an input of "
                    "this comparison; choose another output file name."
                )


def _same_file(first: Path, second: Path) -> bool:
    try:
        # samefile compares the device and inode (the file index on Windows): it sees through
        # symbolic links, hard links, "..", and case on case-insensitive file systems.
        return first.exists() and second.exists() and first.samefile(second)
    except OSError:
        return first.expanduser().resolve() == second.expanduser().resolve()


def _combined_headers(run: ReconcileRun) -> list[str]:
    return [*run.table.headers, *STATUS_HEADERS]


def _combined_rows(run: ReconcileRun) -> Iterator[list[object]]:
    """Every spreadsheet row in order with its status; then the missing records' identifiers
    under the mapped columns (their own columns differ from the spreadsheet's)."""
    rows, numbers, result = run.table.rows, run.table.row_numbers, run.result
    for row in range(result.row_count):
        yield [*rows[row], numbers[row], run.bucket_labels[result.bucket_of(row)],
               run.explain(row)]
    width = len(run.table.headers)
    mapped = [*run.mapping.email_columns, *run.mapping.phone_columns]
    for index in result.missing:
        cells: list[object] = [None] * width
        for target, kind in zip(mapped, _kinds(run), strict=True):
            value = _first_of_kind(run.other.columns, index, kind)
            if value is not None and cells[target] is None:
                cells[target] = value
        yield [*cells, None, run.bucket_labels[Bucket.MISSING_FROM_CRM],
               run.explain_missing(index)]


def _kinds(run: ReconcileRun) -> list[IdKind]:
    return [IdKind.EMAIL] * len(run.mapping.email_columns) + \
        [IdKind.PHONE] * len(run.mapping.phone_columns)


def _first_of_kind(columns: Sequence[IdentifierColumn], index: int, kind: IdKind) -> str | None:
    for column in columns:
        identifier: Identifier | None = column[index]
        if identifier is not None and identifier.kind is kind and identifier.original:
            return identifier.original
    return None


__all__ = [
    "ROW_BUCKETS",
    "OtherList",
    "ReconcileRun",
    "check_output",
    "load_other",
    "output_paths",
    "reconcile_table",
    "run_reconcile",
    "write_result",
]
