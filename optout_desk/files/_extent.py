"""A workbook's real extent, measured in its XML before a reader allocates it.

python-calamine builds a dense range from A1 to the sheet's last cell: a 2 KB xlsx holding
cells at A1 and XFD1048576 asks for 512 GiB and aborts the process; an 800-byte OpenDocument
file that repeats 90 columns a million times expands to 94 million cells. This module streams
each sheet's XML (decompressed in chunks, never whole) and refuses, with one sentence, a sheet
whose range or whose number of filled cells is beyond files.limits, or XML that is not a
sheet at all (a text run of megabytes, megabytes of XML per cell).

It reads as calamine does: cells that hold nothing (`<c r="XFD1048576" s="1"/>`, a styled
empty cell) do not count, and neither do trailing empty rows or cells repeated by
OpenDocument, so a file that Excel or LibreOffice saved is never refused for its formatting.

Speed matters: the 1M-row benchmark sheet is 376 MB of XML. The common case (every cell carries
its reference as its first attribute, as Excel, LibreOffice, openpyxl and xlsxwriter write it)
is checked with byte counts and one regular-expression search per chunk for a reference beyond
the largest seen so far; only files whose cells lack references fall back to a walk over every
cell tag.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import repeat
from pathlib import Path

from optout_desk.core.errors import BadInputError
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken

from ._sniff import FileKind
from .limits import (
    MAX_FILLED_CELLS,
    MAX_SHEET_CELLS,
    MAX_XML_BYTES_PER_CELL,
    MAX_XML_TEXT_RUN_BYTES,
    XML_DENSITY_CHECK_ABOVE_BYTES,
)

_CHUNK = 4 * 1024 * 1024
# A window of half the run limit: any run at least as long as the limit holds one whole window.
_RUN_WINDOW = MAX_XML_TEXT_RUN_BYTES // 2
_REF = re.compile(rb' r="([A-Z]{1,3})(\d{1,10})"')
_ANY_REF = re.compile(rb'\sr="([A-Z]{0,3})(\d{1,10})"')
_ROOT_PREFIX = re.compile(rb"<(?:(\w+):)?worksheet\b")


def check_extent(path: Path, kind: FileKind, cancel: CancelToken = NEVER_CANCELLED,
                 on_progress: Callable[[int], None] | None = None) -> None:
    """BadInputError when a sheet of the workbook is beyond the limits; `on_progress` hears
    how many bytes of XML passed so far. Legacy .xls needs no check: its format cannot hold
    more than 65,536 rows x 256 columns (16.8 million cells, within MAX_SHEET_CELLS)."""
    watch = _Watch(cancel, on_progress)
    if kind is FileKind.XLSX:
        _check_xlsx(path, watch)
    elif kind is FileKind.ODS:
        _check_ods(path, watch)


class _Watch:
    """Cancel and progress for one check, across all the parts it reads."""

    def __init__(self, cancel: CancelToken, on_progress: Callable[[int], None] | None) -> None:
        self.cancel, self.on_progress, self.checked = cancel, on_progress, 0
        self.holding = False

    def passed(self, size: int) -> None:
        self.cancel.raise_if_cancelled()
        self.checked += size
        if self.on_progress is not None and not self.holding:
            self.on_progress(self.checked)

    def hold(self) -> None:
        """No more progress until the end: a sheet whose cells must be walked is checked
        whole before any parser starts (the walk is slower than a parser)."""
        self.holding = True


# ---------------------------------------------------------------- xlsx


def _check_xlsx(path: Path, watch: _Watch) -> None:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        # The shared strings first: a reader loads them all when it opens the workbook.
        for info in members:
            if info.filename == "xl/sharedStrings.xml":
                _check_shared_strings(path.name, archive, info, watch)
        for info in members:
            name = info.filename
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                _check_xlsx_sheet(path.name, archive, info, watch)


class _Sheet:
    """The extent seen of one sheet so far: its last filled column and row."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.max_col = 0  # 1-based; 0 = no filled cell yet
        self.max_row = 0

    def see(self, col: int, row: int) -> None:
        self.max_col = max(self.max_col, col)
        self.max_row = max(self.max_row, row)
        if self.max_col * self.max_row > MAX_SHEET_CELLS:
            raise _too_wide(self.file_name, self.max_row, self.max_col)


class _Volume:
    """How much XML and how many cell tags one part has shown so far."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.cell_tags = 0  # every cell, filled or not (an upper bound of the filled cells)
        self.xml_bytes = 0

    def count(self, cells: int, xml_bytes: int) -> None:
        self.cell_tags += cells
        self.xml_bytes += xml_bytes
        if self.cell_tags > MAX_FILLED_CELLS:
            raise _too_many(self.file_name, self.cell_tags)
        if (self.xml_bytes > XML_DENSITY_CHECK_ABOVE_BYTES
                and self.xml_bytes > MAX_XML_BYTES_PER_CELL * max(self.cell_tags, 1)):
            raise BadInputError(
                f"'{self.file_name}' holds {self.xml_bytes / 1024**2:,.0f} MB of sheet XML for "
                f"only {self.cell_tags:,} cells: it is not a list the desk can read; open it in "
                "Excel and save it again, or export the list as .csv."
            )


def _check_xlsx_sheet(file_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                      watch: _Watch) -> None:
    sheet, volume = _Sheet(file_name), _Volume(file_name)
    prefix = b""
    for index, data in enumerate(_xml_chunks(file_name, archive, info, watch)):
        if index == 0:
            root = _ROOT_PREFIX.search(data)
            prefix = root.group(1) + b":" if root and root.group(1) else b""
        opening = b"<" + prefix + b'c r="'
        if _irregular_cell(prefix).search(data):
            # Cells without a reference (or with it after other attributes, or after a line
            # break): their place is where the previous cell ends, so walk the tags.
            _walk_xlsx_sheet(file_name, archive, info, watch, prefix)
            return
        volume.count(data.count(opening), len(data))
        _scan_cell_refs(sheet, data, opening)


def _scan_cell_refs(sheet: _Sheet, data: bytes, opening: bytes) -> None:
    """Raise the sheet's extent to every filled cell's reference in `data` (each cell written
    `<c r="…"`); BadInputError once it is beyond the limit. Two searches per chunk, one for a
    column and one for a row beyond the largest seen, match nothing in an ordinary sheet."""
    # Rows and their cells come in order: the last cell of the last complete row holds the
    # chunk's largest row and (usually) column, so the searches below rarely match at all.
    row_end = data.rfind(b"row>")
    last = data.rfind(opening, 0, row_end if row_end > 0 else len(data))
    if last >= 0:
        _see_ref(sheet, data, last + len(opening) - 4)
    position = 0
    while found := _cells_beyond(opening, sheet.max_col, sheet.max_row).search(data, position):
        position = found.end()
        _see_ref(sheet, data, found.start() + len(opening) - 4)


def _see_ref(sheet: _Sheet, data: bytes, at: int) -> None:
    match = _REF.match(data, at)
    if match is not None and not _self_closed(data, match.end()):
        sheet.see(_column_number(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=64)
def _irregular_cell(prefix: bytes) -> re.Pattern[bytes]:
    """A cell tag not written `<c r="…"`: `<c>`, `<c/>`, `<c s="1" r=…>`, `<c\nr=…>`."""
    return re.compile(b"<" + re.escape(prefix) + rb'c(?:[>/\t\n\r]| (?!r="))')


@lru_cache(maxsize=256)
def _cells_beyond(opening: bytes, max_col: int, max_row: int) -> re.Pattern[bytes]:
    """`<c r="…` with a column after `max_col` or a row after `max_row`. One search for both
    (a third cheaper than two). The column letters need no end: letters that begin with
    later ones, or are longer, are a later column either way."""
    columns = _greater_columns(_column_letters(max_col)) if max_col else b"[A-Z]"
    rows = _greater_number(max_row)
    return re.compile(re.escape(opening) + b"(?:" + columns + rb"|[A-Z]{1,3}(?:" + rows + b')")')


def _scan_refs(sheet: _Sheet, data: bytes, letters: bytes = b"[A-Z]{1,3}") -> None:
    """Raise the sheet's extent to every reference ` r="…"` in `data`, whatever its tag
    (with letters="[A-Z]{0,3}", row references too)."""
    row_end = data.rfind(b"row>")
    last = data.rfind(b' r="', 0, row_end if row_end > 0 else len(data))
    if last >= 0 and (match := _REF.match(data, last)) and not _self_closed(data, match.end()):
        sheet.see(_column_number(match.group(1)), int(match.group(2)))
    position = 0
    # Any white space before the attribute (" r=", a line break): the writer was unusual. The
    # search is for `r="` (a literal, fast to find); the white space is checked on a match.
    while found := _beyond(sheet.max_col, sheet.max_row, letters).search(data, position):
        position = found.end()
        match = _ANY_REF.match(data, found.start() - 1) if found.start() else None
        if match is not None and not (match.group(1) and _self_closed(data, match.end())):
            sheet.see(_column_number(match.group(1)), int(match.group(2)))


def _self_closed(data: bytes, after: int) -> bool:
    """Whether the tag whose attribute ends at `after` is `<c …/>`: a cell holding nothing,
    which calamine does not place (a style on an empty cell)."""
    end = data.find(b">", after)
    return end > 0 and data[end - 1:end] == b"/"


def _walk_xlsx_sheet(file_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                     watch: _Watch, prefix: bytes) -> None:
    """A bound for sheets whose cells (some or all) carry no reference: calamine puts such a
    cell after the previous one of its row, and such a row after the previous row. So the
    columns are at most the largest referenced column plus the most cells any row holds, and
    the rows at most the largest referenced row plus the rows without a reference. Counted
    with byte operations (a million rows is a second), never cell by cell in Python."""
    watch.hold()
    sheet, volume = _Sheet(file_name), _Volume(file_name)
    cell, row_open = b"<" + prefix + b"c", b"<" + prefix + b"row"
    referenced_rows = unreferenced_rows = widest_row = pending = 0
    for data in _xml_chunks(file_name, archive, info, watch):
        # "<c" also counts <col>, <cfRule> and the like, a handful outside the cells: a bound.
        volume.count(data.count(cell), len(data))
        rows = data.count(row_open)
        with_reference = data.count(row_open + b' r="')
        unreferenced_rows += rows - with_reference
        referenced_rows = max(referenced_rows, _last_number(data, row_open + b' r="'))
        # Cells per row: split at the end of each row; a row cut by the chunk carries over.
        counts = list(map(bytes.count, data.split(b"row>"), repeat(cell)))
        counts[0] += pending
        pending = counts.pop()
        widest_row = max(widest_row, pending, *counts) if counts else max(widest_row, pending)
        _scan_refs(sheet, data, letters=b"[A-Z]{0,3}")
        columns = sheet.max_col + widest_row
        rows_bound = max(sheet.max_row, referenced_rows) + unreferenced_rows
        if columns * rows_bound > MAX_SHEET_CELLS:
            raise _too_wide(file_name, rows_bound, columns)


def _last_number(data: bytes, before: bytes) -> int:
    at = data.rfind(before)
    if at < 0:
        return 0
    match = re.match(rb"\d{1,10}", data[at + len(before):at + len(before) + 10])
    return int(match.group()) if match else 0


def _check_shared_strings(file_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                          watch: _Watch) -> None:
    """Every shared string is held in memory at once: no more of them than filled cells."""
    strings = 0
    for data in _xml_chunks(file_name, archive, info, watch):
        strings += data.count(b"<si>") + data.count(b"<si ")
        if strings > MAX_FILLED_CELLS:
            raise _too_many(file_name, strings)


@lru_cache(maxsize=256)
def _beyond(max_col: int, max_row: int, letters: bytes) -> re.Pattern[bytes]:
    """A reference `r="…"` with a column after `max_col` or a row after `max_row`."""
    columns = _greater_columns(_column_letters(max_col)) if max_col else b"[A-Z]{1,3}"
    rows = _greater_number(max_row)
    return re.compile(rb'r="(?:(?:' + columns + rb')\d|' + letters + rb'(?:' + rows + rb')")')


def _greater_columns(letters: str) -> bytes:
    """A regular expression for column letters after `letters` (as many letters or more)."""
    length = len(letters)
    options = [b"[A-Z]{%d,3}" % (length + 1)] if length < 3 else []
    for i, letter in enumerate(letters):
        if letter != "Z":
            options.append(letters[:i].encode() + b"[" + chr(ord(letter) + 1).encode()
                           + b"-Z]" + (b"[A-Z]{%d}" % (length - i - 1) if length - i - 1 else b""))
    return b"|".join(options) or b"(?!)"


def _greater_number(value: int) -> bytes:
    """A regular expression for decimal numbers above `value` (no leading zeros needed: more
    digits always match, so "0001048577" is not missed)."""
    digits = str(value)
    options = [rb"\d{%d,}" % (len(digits) + 1)]
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            options.append(digits[:i].encode() + b"[" + str(int(digit) + 1).encode() + b"-9]"
                           + (rb"\d{%d}" % rest if rest else b""))
    return b"|".join(options)


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


# ---------------------------------------------------------------- ods

_ODS_TOKEN = re.compile(
    rb"<(/?)table:(table-row|table-cell|covered-table-cell|table)([ >/][^>]*)?>"
)
_ROWS_REPEATED = re.compile(rb'table:number-rows-repeated="(\d{1,10})"')
_COLUMNS_REPEATED = re.compile(rb'table:number-columns-repeated="(\d{1,10})"')


def _check_ods(path: Path, watch: _Watch) -> None:
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo("content.xml")
        except KeyError:
            return  # calamine reports the file as damaged
        _walk_ods(path.name, archive, info, watch)


def _walk_ods(file_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
              watch: _Watch) -> None:
    """Rows and cells with their repeat counts. A repeated row or cell that holds nothing
    (LibreOffice fills every sheet to row 1,048,576 that way) places nothing, as in calamine;
    one that holds a value is counted as many times as it is repeated."""
    sheet, volume = _Sheet(file_name), _Volume(file_name)
    row = col = filled = 0
    rows_repeated = 1
    for data in _xml_chunks(file_name, archive, info, watch):
        cells = 0
        for match in _ODS_TOKEN.finditer(data):
            closing, tag, attributes = match.group(1), match.group(2), match.group(3) or b""
            empty_element = attributes.endswith(b"/")
            if tag == b"table":
                if not closing:
                    sheet, row, filled = _Sheet(file_name), 0, 0
                continue
            if tag == b"table-row":
                if closing:
                    row += rows_repeated
                    continue
                repeat = _ROWS_REPEATED.search(attributes)
                rows_repeated = int(repeat.group(1)) if repeat else 1
                col = 0
                if empty_element:
                    row += rows_repeated
                continue
            if closing:
                continue
            cells += 1
            repeat = _COLUMNS_REPEATED.search(attributes)
            columns = int(repeat.group(1)) if repeat else 1
            if not empty_element or b"office:value-type" in attributes:
                filled += columns * rows_repeated
                if filled > MAX_FILLED_CELLS:
                    raise _too_many(file_name, filled)
                sheet.see(col + columns, row + rows_repeated)
            col += columns
        volume.count(cells, len(data))


# ---------------------------------------------------------------- reading


def _xml_chunks(file_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                watch: _Watch) -> Iterator[bytes]:
    """The part's XML in pieces of a few MB, each cut just before a '<' so no tag is split;
    BadInputError on a text run longer than any cell's."""
    carry = b""
    try:
        with archive.open(info) as stream:
            while block := stream.read(_CHUNK):
                watch.passed(len(block))
                data = carry + block
                cut = data.rfind(b"<")
                if cut <= 0:
                    carry = data
                else:
                    carry = data[cut:]
                    _check_runs(file_name, data, cut)
                    yield data[:cut]
                if len(carry) > MAX_XML_TEXT_RUN_BYTES:
                    raise _long_run(file_name)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError):
        raise BadInputError(
            f"'{file_name}' is damaged or incomplete (its compressed data cannot be read); "
            "download or export it again."
        ) from None
    if carry:
        yield carry


def _check_runs(file_name: str, data: bytes, end: int) -> None:
    for start in range(0, end - _RUN_WINDOW, _RUN_WINDOW):
        if data.find(b"<", start, start + _RUN_WINDOW) == -1:
            raise _long_run(file_name)


def _long_run(file_name: str) -> BadInputError:
    return BadInputError(
        f"'{file_name}' holds a text of more than {MAX_XML_TEXT_RUN_BYTES // 1024**2} MB in one "
        "place, longer than any spreadsheet cell can be: it is damaged or not a real workbook."
    )


def _too_wide(file_name: str, rows: int, columns: int) -> BadInputError:
    last = f"{_column_letters(columns)}{rows}"
    return BadInputError(
        f"'{file_name}' has a cell at {last}, so its sheet spans {rows:,} rows x {columns:,} "
        f"columns from A1 ({rows * columns:,} cells), more than the {MAX_SHEET_CELLS:,} the desk "
        "reads; delete what lies outside the list (in Excel, Ctrl+End shows the last cell) or "
        "copy the list into a new workbook."
    )


def _too_many(file_name: str, cells: int) -> BadInputError:
    return BadInputError(
        f"'{file_name}' holds more than {MAX_FILLED_CELLS:,} cells (at least {cells:,}), more "
        "than the desk reads in one file; split the list into smaller files."
    )
