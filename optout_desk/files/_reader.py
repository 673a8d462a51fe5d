"""The part of reading that touches a file's contents: sniffing, the extent check, parsing.

It runs inside the reader process (files/_isolated.py), never in the app: whatever a hostile
file does to a parser (an abort in native code, a runaway allocation) ends that process only.
Rows go out through `emit` in blocks as they are converted, so the app can unpack one block
while the next is read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optout_desk.core.errors import BadInputError

from . import _excel
from ._csv import read_text_table
from ._extent import check_extent
from ._sniff import FileKind, sniff_kind

# Rows per block sent to the app: large enough that a block costs one system call and one
# unpickling, small enough (~4 MB) that the app unpacks block n while block n+1 is converted.
BLOCK_ROWS = 50_000
# Sheet XML up to this size (about 20,000 rows) is checked whole before any parser runs (0.15 s);
# beyond it, the check goes on beside the parser, which must read the whole sheet before it
# allocates the range and is several times slower than the check (a failed check ends the
# process at once).
CHECK_FIRST_BYTES = 8 * 1024**2


@dataclass
class Sheets:
    """The outcome of a read, besides the rows."""

    kind: FileKind
    sheet: str | None = None
    sheet_names: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None


Emit = Callable[[str, Any], None]


def list_sheet_names(path: Path) -> list[str]:
    kind = sniff_kind(path)
    if kind is FileKind.TEXT:
        return []
    check_extent(path, kind)
    workbook = _excel.open_workbook(path, kind)
    try:
        return [info.name for info in _excel.sheet_infos(workbook) if info.readable]
    finally:
        workbook.close()


def read_rows(path: Path, wanted: str | None, emit: Emit,
              on_check_failure: Callable[[BaseException], None] | None = None) -> Sheets:
    """Read one sheet (default: the first visible one holding a value; hidden ones only when
    no visible one does) or a text file, emitting ("rows", block) messages, and ("discard",
    None) when the rows emitted so far belong to an empty sheet that was passed over."""
    kind = sniff_kind(path)
    if kind is FileKind.TEXT:
        if wanted is not None:
            raise BadInputError(
                f"'{path.name}' is a text file and has no sheets; leave out the sheet name."
            )
        text = read_text_table(path)
        _emit_blocks(text.rows, emit)
        return Sheets(kind, encoding=text.encoding, delimiter=text.delimiter)
    checking = _ExtentCheck(path, kind)
    checking.on_failure = on_check_failure
    checking.start()
    workbook = _excel.open_workbook(path, kind)
    try:
        infos = [info for info in _excel.sheet_infos(workbook) if info.readable]
        names = [info.name for info in infos]
        if not infos:
            raise BadInputError(f"'{path.name}' has no worksheet to read.")
        if wanted is not None:
            name = _pick_sheet(path, names, wanted)
            if not _emit_blocks(_excel.iter_sheet(path, kind, workbook, name), emit):
                checking.finish()
                raise BadInputError(
                    f"Sheet '{name}' of '{path.name}' is empty; choose another sheet "
                    f"({_quoted(names)})."
                )
            checking.finish()
            return Sheets(kind, name, names)
        ordered = [info for info in infos if info.visible] + [
            info for info in infos if not info.visible
        ]
        for info in ordered:
            if _emit_blocks(_excel.iter_sheet(path, kind, workbook, info.name), emit):
                checking.finish()
                return Sheets(kind, info.name, names)
            emit("discard", None)
        checking.finish()
        raise BadInputError(f"Every sheet of '{path.name}' is empty; there is nothing to import.")
    finally:
        workbook.close()


class _ExtentCheck:
    """check_extent on a thread: the parser starts once the first CHECK_FIRST_BYTES (or all)
    of the XML passed; a failure found later is raised by finish(), or ends the process at
    once through `on_failure` while the parser is still busy."""

    def __init__(self, path: Path, kind: FileKind) -> None:
        self.path, self.kind = path, kind
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="extent-check", daemon=True)
        self.on_failure: Callable[[BaseException], None] | None = None

    def start(self) -> None:
        self.thread.start()
        self.ready.wait()
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            check_extent(self.path, self.kind, on_progress=self._progress)
        except BaseException as exc:  # handed to the reading thread
            self.error = exc
            if self.ready.is_set() and self.on_failure is not None:
                self.on_failure(exc)
        finally:
            self.ready.set()

    def _progress(self, checked_bytes: int) -> None:
        if checked_bytes >= CHECK_FIRST_BYTES:
            self.ready.set()


def _emit_blocks(rows: Iterable[list[Any]], emit: Emit) -> bool:
    """Send `rows` in blocks as they come; whether any row holds a value."""
    found = False
    block: list[list[Any]] = []
    append = block.append
    for row in rows:
        append(row)
        if len(block) == BLOCK_ROWS:
            found = found or _holds_value(block)
            emit("rows", block)
            block = []
            append = block.append
    if block:
        found = found or _holds_value(block)
        emit("rows", block)
    return found


def _holds_value(block: list[list[Any]]) -> bool:
    # Stops at the first row with a value (the first row of an ordinary block); count() runs
    # in C, and `any(row)` would wrongly call 0 and False empty.
    return any(row.count("") + row.count(None) != len(row) for row in block)


def _pick_sheet(path: Path, names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    folded = [name for name in names if name.casefold() == wanted.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    if wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
        return names[int(wanted) - 1]
    raise BadInputError(
        f"'{path.name}' has no sheet named '{wanted}'; its sheets are {_quoted(names)}."
    )


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


