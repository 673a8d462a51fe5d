"""Reading the operator's spreadsheet into a table: xlsx/xlsm/xls/ods and csv/tsv/txt.

The format is judged by the bytes, not the name (a CSV named .xlsx is read as CSV and says so);
bad files are refused with one sentence (BadInputError) before any parser can hang or blow up.
The header row is found by looking (title rows and blank rows above it are skipped), and values
stay as the operator saw them: numbers stay numbers so Excel damage to phone numbers can be
detected and explained later by core.identifiers.

Guarantees of an ImportedTable: every row has exactly len(headers) cells; an empty cell is None;
rows that are entirely empty are left out (their numbers are skipped in `row_numbers`); column i
is the spreadsheet's column letter `column_letter(i)` for workbooks (a CSV's first field is "A").
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import re
import threading
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import load_phone_metadata
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback
from optout_desk.core.progress import no_progress as _no_progress
from optout_desk.core.wording import counted

from ._isolated import ReaderProcess
from ._reader import Sheets
from ._sniff import EXCEL_EXTENSIONS, FileKind
from ._sniff import check_readable as check_readable  # callers check a path before a long job

no_progress = _no_progress

CellValue = (
    str | int | float | bool | datetime.datetime | datetime.date | datetime.time
    | datetime.timedelta | None
)

# The header is looked for among the first rows only: a title block is never this long.
_HEADER_SEARCH_ROWS = 50
_LOOKS_LIKE_PHONE = re.compile(r"[+(]?\d[\d\s().\-/]{5,}")
_LOOKS_LIKE_NUMBER = re.compile(r"[+-]?\d[\d\s.,]*(?:[eE][+-]?\d+)?")


@dataclass
class ImportedTable:
    source: Path
    sha256: str
    sheet: str | None  # None for a text file
    sheet_names: list[str]
    header_row_number: int  # as the spreadsheet shows it (1-based); 0 when the file has none
    headers: list[str]
    rows: list[list[CellValue]]  # data rows; numbers stay numbers
    row_numbers: list[int]  # the spreadsheet row number of each data row
    file_format: str = ""  # "xlsx", "xls", "ods", "csv"
    encoding: str | None = None  # text files only
    delimiter: str | None = None  # text files only
    notes: list[str] = field(default_factory=list)  # things the operator should know

    @property
    def column_count(self) -> int:
        return len(self.headers)

    def column_label(self, index: int) -> str:
        """"B (E-mail)": the column as a person finds it in the spreadsheet."""
        header = self.headers[index]
        letter = column_letter(index)
        return f"{letter} ({header})" if header and header != letter else letter

    def column(self, index: int) -> list[CellValue]:
        return [row[index] for row in self.rows]


def column_letter(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA"."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def list_sheets(path: Path) -> list[str]:
    """The readable sheets of a workbook in workbook order; [] for a text file."""
    path = Path(path)
    check_readable(path)
    names: list[str] = ReaderProcess(path, "sheets", (str(path),)).run()
    return names


def read_table(
    path: Path,
    *,
    sheet: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> ImportedTable:
    """Read one sheet (default: the first visible non-empty one) or a text file.

    The file is parsed in a reader process (files/_isolated.py): a hostile or broken file ends
    in a BadInputError, never in the app's own crash."""
    path = Path(path)
    check_readable(path)
    cancel.raise_if_cancelled()
    progress(Progress(0, None, "rows", f"Reading {path.name}…"))
    _prepare_phone_metadata()
    # A million row lists are allocated below and none is garbage; the cyclic collector would
    # otherwise re-scan everything alive (with an opt-out list beside, millions of objects)
    # again and again. Reference counting still frees as usual.
    collecting = gc.isenabled()
    # Collect first (cheap: big tables read earlier are frozen, see below), so the freeze
    # after this read cannot keep garbage cycles that happen to be waiting now.
    gc.collect()
    gc.disable()
    try:
        table = _read_table(path, sheet, progress, cancel)
    finally:
        if collecting:
            gc.enable()
    if len(table.rows) >= _FREEZE_ROWS:
        # And afterwards: the next full collection (triggered by any allocation burst, in any
        # thread) would walk the whole table, about 0.7 s per million rows, several times
        # over an import and a comparison. Cells hold no reference cycles, so take everything
        # alive now out of the collector's sight, as the GUI's table model does.
        gc.freeze()
    return table


_metadata_loading: threading.Thread | None = None


def _prepare_phone_metadata() -> None:
    """While the reader process parses, this process mostly waits: load the phone metadata the
    column detection and normalisation that follow need (once per process)."""
    global _metadata_loading
    if _metadata_loading is None:
        _metadata_loading = threading.Thread(target=load_phone_metadata, name="phone-metadata",
                                             daemon=True)
        _metadata_loading.start()


# Tables at least this long are frozen out of the cyclic collector after reading.
_FREEZE_ROWS = 100_000


def _read_table(
    path: Path, sheet: str | None, progress: ProgressCallback, cancel: CancelToken,
) -> ImportedTable:
    raw: list[list[Any]] = []

    def received(block: list[list[Any]] | None) -> None:
        if block is None:  # the rows so far were an empty sheet the reader passed over
            raw.clear()
            return
        raw.extend(block)
        progress(Progress(len(raw), None, "rows", f"Reading {path.name}…"))

    outcome: Sheets = ReaderProcess(path, "rows", (str(path), sheet), on_rows=received,
                                    cancel=cancel).run()
    notes: list[str] = []
    extension = path.suffix.lower()
    if outcome.kind is FileKind.TEXT:
        if extension in EXCEL_EXTENSIONS:
            notes.append(f"'{path.name}' is really a text (CSV) file; it was read as one.")
        file_format = "csv"
    else:
        if extension not in EXCEL_EXTENSIONS:
            notes.append(
                f"'{path.name}' is really a {outcome.kind.value} workbook; it was read as one.")
        file_format = outcome.kind.value
    cancel.raise_if_cancelled()
    table = _build_table(path, raw, outcome.sheet, file_format)
    table.sheet_names = outcome.sheet_names
    table.encoding, table.delimiter = outcome.encoding, outcome.delimiter
    table.notes = notes + table.notes
    table.sha256 = _sha256(path)
    read = len(table.rows)
    progress(Progress(read, read, "rows", f"Read {counted(read, 'row')}"))
    return table


def _has_values(rows: list[list[Any]]) -> bool:
    return any(not _is_empty_row(row) for row in rows)


def _is_empty_row(row: list[Any]) -> bool:
    # count() runs in C; `any(row)` would wrongly call 0 and False empty.
    return row.count("") + row.count(None) == len(row)


def _build_table(
    path: Path, raw: list[list[Any]], sheet: str | None, file_format: str
) -> ImportedTable:
    where = f"sheet '{sheet}' of '{path.name}'" if sheet else f"'{path.name}'"
    width = max((len(row) for row in raw), default=0)
    header_index = _find_header(raw)
    if header_index is None and not _has_values(raw):
        raise BadInputError(f"{where.capitalize()} is empty; there is nothing to import.")
    notes: list[str] = []
    if header_index is None:
        headers = [column_letter(i) for i in range(width)]
        start = 0
        notes.append("No header row was found; columns are named by their letters.")
    else:
        headers = _header_texts(raw[header_index], width)
        start = header_index + 1
    body = raw[start:]
    blanks = list(map(list.count, body, repeat("")))
    rows: list[list[CellValue]]
    row_numbers: list[int]
    if (width and not any(blanks) and set(map(len, body)) <= {width}
            and not any(map(list.__contains__, body, repeat(None)))):
        # Every row full and as wide as the header (a clean export): nothing to mend, and no
        # per-row Python work over a million rows.
        rows = body
        row_numbers = list(range(start + 1, len(raw) + 1))
    else:
        rows, row_numbers = [], []
        for index, (row, blank) in enumerate(zip(body, blanks, strict=True), start=start):
            if blank + row.count(None) == len(row):
                continue  # an empty row
            if blank:
                row = [None if value == "" else value for value in row]
            if len(row) < width:
                row.extend([None] * (width - len(row)))
            rows.append(row)
            row_numbers.append(index + 1)
    if not rows:
        raise BadInputError(
            f"{where.capitalize()} has a header row but no data rows; there is nothing to import."
        )
    return ImportedTable(
        source=path,
        sha256="",
        sheet=sheet,
        sheet_names=[],
        header_row_number=0 if header_index is None else header_index + 1,
        headers=headers,
        rows=rows,
        row_numbers=row_numbers,
        file_format=file_format,
        notes=notes,
    )


def _header_texts(row: list[Any], width: int) -> list[str]:
    headers = []
    for index in range(width):
        value = row[index] if index < len(row) else ""
        text = "" if value is None else str(value).strip()
        headers.append(text or column_letter(index))
    return headers


def _find_header(raw: list[list[Any]]) -> int | None:
    """The index of the header row, or None when the first row already holds data.

    The header is the last text-only row above the first row that looks like data (holds a
    number, a date, an email or a phone-like text) and is at least half as wide as that data
    row; title rows and notes above it are skipped. Without any data-looking row in reach, the
    first row at least half as wide as the widest is taken."""
    candidates: list[tuple[int, int]] = []  # (row index, non-empty cells) of text-only rows
    for index, row in enumerate(raw[:_HEADER_SEARCH_ROWS]):
        filled = [value for value in row if value is not None and value != ""]
        if not filled:
            continue
        if any(_looks_like_data(value) for value in filled):
            wanted = max(1, (len(filled) + 1) // 2)
            fitting = [index for index, count in candidates if count >= wanted]
            if fitting:
                return fitting[-1]
            return candidates[-1][0] if candidates else None
        candidates.append((index, len(filled)))
    if not candidates:
        return None
    widest = max(count for _, count in candidates)
    return next(index for index, count in candidates if count * 2 >= widest)


def _looks_like_data(value: object) -> bool:
    if not isinstance(value, str):
        return True  # numbers, dates, booleans are never header labels
    text = value.strip()
    return (
        "@" in text
        or _LOOKS_LIKE_PHONE.fullmatch(text) is not None
        or _LOOKS_LIKE_NUMBER.fullmatch(text) is not None
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
