"""Writing tables and reconciliation results to xlsx, csv and jsonl — atomically and safely.

Two guarantees hold for every file written here:

* Atomic: the file is written to a temporary file in the same folder and moved over the target
  with `os.replace`, so a failure (disk full, cancel, crash) leaves no partial file and the
  previous file, if any, intact.
* No live formulas (OWASP "CSV injection"). In xlsx every text is a text cell written with
  `write_string`, never through xlsxwriter's type guessing, and only a text that would start a
  formula if typed (`=…`, `@…`, a leading tab or CR, `+`/`-` followed by anything but a phone
  number or a plain number) gets a single quote in front: phones such as `+32470123456` stay
  exactly as they are, as text. Dates and times are date cells (UTC, shown as
  `yyyy-mm-dd hh:mm:ss`). In csv, which Excel re-reads and types by itself, every text
  starting with `=`, `+`, `-`, `@`, tab or CR is quoted (so a phone keeps its `+` there too).
  Real numbers (int/float cells) are written as numbers; jsonl, meant for programs, keeps
  values as they are.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import cell_text
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback
from optout_desk.core.progress import no_progress as _no_progress

no_progress = _no_progress

SUFFIXES = (".xlsx", ".csv", ".jsonl")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_SET = frozenset(FORMULA_TRIGGERS)
XLSX_MAX_ROWS = 1_048_576
# Column widths are judged from the header and the first rows: enough to look right, cheap.
_WIDTH_SAMPLE = 200
_MAX_WIDTH = 60
_PROGRESS_EVERY = 10_000


def neutralise(text: str) -> str:
    """A text value made safe for a csv cell: a leading formula trigger is quoted."""
    if text and text[0] in FORMULA_TRIGGERS:
        return "'" + text
    return text


# A phone in E.164 or with spaces ("+32 470 12 34 56"), or a plain signed number: typed into
# Excel it is a value, never a formula (dashes or slashes after a sign would be arithmetic).
_SIGNED_VALUE = re.compile(r"\+\d[\d ()]*|[+-]\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


def would_start_formula(text: str) -> bool:
    """Whether a text, typed into a cell, would start a formula (what xlsx text must not)."""
    if not text or text[0] not in _TRIGGER_SET:
        return False
    if text[0] in "+-":
        return _SIGNED_VALUE.fullmatch(text) is None
    return True


def neutralise_xlsx(text: str) -> str:
    """A text for an xlsx text cell: quoted only where it would start a formula."""
    return "'" + text if would_start_formula(text) else text


def cell_for_text_file(value: object) -> str:
    """How a value is written to a csv cell: neutralised text; numbers as numbers."""
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return neutralise(value)  # type: ignore[arg-type]
    if kind is int or kind is float:
        return cell_text(value)  # as Excel shows it: 32470123456.0 -> "32470123456"
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return neutralise(str(value))


# ---------------------------------------------------------------- atomic writing


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path in `path`'s folder, moved over `path` only if the block succeeds."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise BadInputError(f"Cannot write {path.name}: the folder {folder} does not exist.")
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f"{path.suffix}.partial", dir=folder
    )
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def check_suffix(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(
            f"Cannot write {Path(path).name}: the file name must end in .xlsx, .csv or .jsonl."
        )
    return suffix


# ---------------------------------------------------------------- xlsx


@dataclass
class XlsxStyles:
    header: Any
    wrap: Any = None
    date_time: Any = None
    date: Any = None
    time: Any = None


def new_workbook(path: Path) -> tuple[Any, XlsxStyles]:
    """A constant-memory workbook (rows are streamed to disk) with the desk's header style."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            # Belt and braces: even if something called write(), never guess types from text.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    header = workbook.add_format(
        {"bold": True, "bg_color": "#DCE6F1", "bottom": 1, "text_wrap": False}
    )
    return workbook, XlsxStyles(
        header=header,
        date_time=workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        date=workbook.add_format({"num_format": "yyyy-mm-dd"}),
        time=workbook.add_format({"num_format": "hh:mm:ss"}),
    )


def _display_width(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime.datetime):
        return 19  # yyyy-mm-dd hh:mm:ss
    return len(value) if type(value) is str else len(str(value))


def column_widths(headers: Sequence[str], sample: Sequence[Sequence[object]]) -> list[int]:
    widths = [max(8, len(str(h)) + 2) for h in headers]
    for row in sample:
        for index, value in enumerate(row[: len(widths)]):
            width = _display_width(value) + 2
            if width > widths[index]:
                widths[index] = width
    return [min(w, _MAX_WIDTH) for w in widths]


def write_sheet(
    workbook: Any,
    styles: XlsxStyles,
    name: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    progress: Callable[[int], None] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> int:
    """Write one table as a sheet (continued on "name (2)"… past Excel's row limit).

    Returns the number of data rows written. The header row is styled and frozen and the columns
    are sized to the header and the first rows.
    """
    iterator = iter(rows)
    sample: list[Sequence[object]] = []
    for row in iterator:
        sample.append(row)
        if len(sample) >= _WIDTH_SAMPLE:
            break
    widths = column_widths(headers, sample)

    def chained() -> Iterator[Sequence[object]]:
        yield from sample
        yield from iterator

    written = 0
    part = 1
    sheet = _start_sheet(workbook, styles, name, headers, widths)
    sheet_row = 1
    write_string = sheet._write_string  # the unchecked writer: no A1 parsing, no type guessing
    write_number = sheet._write_number
    for row in chained():
        if sheet_row >= XLSX_MAX_ROWS:
            part += 1
            sheet = _start_sheet(workbook, styles, f"{name[:26]} ({part})", headers, widths)
            write_string, write_number = sheet._write_string, sheet._write_number
            sheet_row = 1
        column = 0
        for value in row:
            kind = type(value)
            if kind is str:
                if value:
                    if value[0] in _TRIGGER_SET and would_start_formula(value):  # type: ignore[index,arg-type]
                        value = "'" + value  # type: ignore[operator]
                    write_string(sheet_row, column, value, None)
            elif value is None:
                pass
            elif kind is int or kind is float:
                write_number(sheet_row, column, value, None)
            else:
                _write_other(sheet, styles, sheet_row, column, value)
            column += 1
        sheet_row += 1
        written += 1
        if written % _PROGRESS_EVERY == 0:
            cancel.raise_if_cancelled()
            if progress is not None:
                progress(written)
    return written


def _write_other(sheet: Worksheet, styles: XlsxStyles, row: int, column: int,
                 value: object) -> None:
    if isinstance(value, bool):
        sheet._write_boolean(row, column, value, None)
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is not None:  # Excel has no time zones: the sheet says UTC
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        sheet.write_datetime(row, column, value, styles.date_time)
    elif isinstance(value, datetime.date):
        sheet.write_datetime(row, column, value, styles.date)
    elif isinstance(value, datetime.time):
        sheet.write_datetime(row, column, value.replace(tzinfo=None), styles.time)
    else:
        sheet._write_string(row, column, neutralise_xlsx(str(value)), None)


def _start_sheet(
    workbook: Any, styles: XlsxStyles, name: str, headers: Sequence[str], widths: Sequence[int]
) -> Any:
    sheet = workbook.add_worksheet(_safe_sheet_name(name))
    for index, width in enumerate(widths):
        sheet.set_column(index, index, width)
    for index, header in enumerate(headers):
        sheet._write_string(0, index, neutralise_xlsx(str(header)), styles.header)
    sheet.freeze_panes(1, 0)
    return sheet


def _safe_sheet_name(name: str) -> str:
    """Excel's sheet-name rules: at most 31 characters, none of []:*?/\\ ."""
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in name).strip("'") or "Sheet"
    return cleaned[:31]


# ---------------------------------------------------------------- csv and jsonl


def open_csv(path: Path) -> IO[str]:
    # UTF-8 with BOM: Excel then opens accented names correctly.
    return open(path, "w", encoding="utf-8-sig", newline="")


def write_csv_rows(
    handle: IO[str],
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    progress: Callable[[int], None] | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> int:
    writer = csv.writer(handle)
    writer.writerow([neutralise(str(h)) for h in headers])
    convert, triggers = cell_for_text_file, _TRIGGER_SET
    written = 0
    for row in rows:
        # Plain text and integers inline (what cell_for_text_file would give them); the
        # per-cell call was most of the cost of a 100k-row receipt.
        writer.writerow([
            value if (type(value) is str and value[:1] not in triggers) or type(value) is int
            else convert(value)
            for value in row
        ])
        written += 1
        if written % _PROGRESS_EVERY == 0:
            cancel.raise_if_cancelled()
            if progress is not None:
                progress(written)
    return written


def json_value(value: object) -> object:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def write_jsonl_objects(
    handle: IO[str],
    objects: Iterable[dict[str, object]],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> int:
    written = 0
    dumps = json.dumps
    for obj in objects:
        handle.write(dumps(obj, ensure_ascii=False, default=json_value))
        handle.write("\n")
        written += 1
        if written % _PROGRESS_EVERY == 0:
            cancel.raise_if_cancelled()
    return written


# ---------------------------------------------------------------- export_rows


def export_rows(
    path: Path,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    sheet_name: str = "Data",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> int:
    """Write a table to `path` (.xlsx, .csv or .jsonl by suffix), atomically and formula-safe.

    Returns the number of data rows written. A .jsonl line is one object keyed by the headers.
    """
    path = Path(path)
    suffix = check_suffix(path)
    headers = [str(h) for h in headers]

    def report(done: int) -> None:
        progress(Progress(done, None, "rows", f"Writing {path.name}…"))

    with atomic_path(path) as temp:
        if suffix == ".xlsx":
            workbook, styles = new_workbook(temp)
            try:
                written = write_sheet(
                    workbook, styles, sheet_name, headers, rows, progress=report, cancel=cancel
                )
            finally:
                workbook.close()
        elif suffix == ".csv":
            with open_csv(temp) as handle:
                written = write_csv_rows(handle, headers, rows, progress=report, cancel=cancel)
        else:
            with open(temp, "w", encoding="utf-8", newline="\n") as handle:
                written = write_jsonl_objects(
                    handle, (dict(zip(headers, row, strict=False)) for row in rows), cancel=cancel
                )
    report(written)
    return written


# ---------------------------------------------------------------- multi-sheet workbooks


@dataclass
class SheetSpec:
    """One sheet of a workbook: a name, headers and rows (any iterable, streamed)."""

    name: str
    headers: Sequence[str]
    rows: Iterable[Sequence[object]]


def write_workbook(
    path: Path,
    sheets: Sequence[SheetSpec],
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, int]:
    """Write several tables as sheets of one xlsx, atomically; returns rows written per sheet."""
    path = Path(path)
    if check_suffix(path) != ".xlsx":
        raise BadInputError(f"Cannot write {path.name} as a workbook: use a .xlsx name.")
    counts: dict[str, int] = {}
    total = 0

    with atomic_path(path) as temp:
        workbook, styles = new_workbook(temp)
        try:
            for spec in sheets:
                base = total

                def report(done: int, base: int = base) -> None:
                    progress(Progress(base + done, None, "rows", f"Writing {path.name}…"))

                counts[spec.name] = write_sheet(
                    workbook, styles, spec.name, spec.headers, spec.rows,
                    progress=report, cancel=cancel,
                )
                total += counts[spec.name]
        finally:
            workbook.close()
    return counts


def write_jsonl(
    path: Path,
    objects: Iterable[dict[str, object]],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> int:
    """One JSON object per line (UTF-8), atomically; returns the number of lines."""
    with atomic_path(Path(path)) as temp, open(
        temp, "w", encoding="utf-8", newline="\n"
    ) as handle:
        return write_jsonl_objects(handle, objects, cancel=cancel)
