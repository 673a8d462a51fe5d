"""Workbooks (xlsx, xlsm, xls, ods) read with python-calamine; openpyxl only where calamine fails
on an xlsx it should read.

What comes back is what the operator saw, as calamine types it: text cells are str, number cells
float (int in some xls files), cells formatted as dates are date/datetime/time, booleans bool.
Formulas give their cached value; a formula saved without one (files written by scripts, never
opened in Excel) reads as an empty cell. Error cells (#N/A, #VALUE!) read as empty: calamine does
not pass the error text through. A merged range holds its value in its top-left cell only and the
other cells are empty, exactly as Excel stores it: the desk does not copy an identifier into the
rows below, because that would invent rows the operator did not write.

Rows are aligned on the sheet: rows[0] is row 1 and column 0 is column A. Empty cells are "" from
calamine; the caller turns them into None.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import python_calamine as calamine

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken

from ._sniff import FileKind


@dataclass
class SheetInfo:
    name: str
    visible: bool
    readable: bool  # a worksheet (chart sheets and macro sheets hold no table)


def open_workbook(path: Path, kind: FileKind) -> calamine.CalamineWorkbook:
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError:
        raise BadInputError(
            f"'{path.name}' is protected by a password; open it in Excel, remove the password "
            "and save it again."
        ) from None
    except (calamine.CalamineError, OSError, ValueError) as exc:
        raise _damaged(path, kind, exc) from None


def sheet_infos(workbook: calamine.CalamineWorkbook) -> list[SheetInfo]:
    infos = []
    for meta in workbook.sheets_metadata:
        infos.append(
            SheetInfo(
                meta.name,
                meta.visible == calamine.SheetVisibleEnum.Visible,
                meta.typ == calamine.SheetTypeEnum.WorkSheet,
            )
        )
    return infos


def iter_sheet(path: Path, kind: FileKind, workbook: calamine.CalamineWorkbook, name: str,
               cancel: CancelToken = NEVER_CANCELLED) -> Iterator[list[Any]]:
    """Every row of the sheet from row 1 and column A, one at a time (so the rows can be sent
    on while the rest are converted); trailing empty rows are not included (calamine ignores
    cells that carry a style but no value). Damaged files raise BadInputError; an xlsx that
    calamine rejects is read by openpyxl instead."""
    try:
        sheet = workbook.get_sheet_by_name(name)
    except calamine.PasswordError:
        raise BadInputError(f"'{path.name}' is protected by a password.") from None
    except (calamine.CalamineError, OSError, ValueError) as exc:
        if kind is FileKind.XLSX:
            yield from _read_with_openpyxl(path, name, cancel, exc)
            return
        raise _damaged(path, kind, exc) from None
    first_row, first_col = sheet.start or (0, 0)
    for _ in range(first_row):
        yield []
    rows = sheet.iter_rows()
    try:
        if first_col:
            padding = [""] * first_col
            for row in rows:
                yield padding + row
        else:
            yield from rows
    except (calamine.CalamineError, ValueError) as exc:
        raise _damaged(path, kind, exc) from None


def _read_with_openpyxl(
    path: Path, name: str, cancel: CancelToken, first_error: Exception
) -> list[list[Any]]:
    import openpyxl  # slower (about 11x) but reads some files calamine rejects

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types for broken files
        raise _damaged(path, FileKind.XLSX, first_error) from None
    try:
        worksheet = workbook[name]
        rows: list[list[Any]] = []
        trailing_empty = 0
        for values in worksheet.iter_rows(values_only=True):
            if len(rows) % 10_000 == 0:
                cancel.raise_if_cancelled()
            row = ["" if value is None else value for value in values]
            rows.append(row)
            trailing_empty = trailing_empty + 1 if row.count("") == len(row) else 0
        if trailing_empty:
            del rows[-trailing_empty:]
        width = max((len(row) for row in rows), default=0)
        for row in rows:
            row.extend([""] * (width - len(row)))
        return rows
    except Cancelled:
        raise
    except Exception:
        raise _damaged(path, FileKind.XLSX, first_error) from None
    finally:
        workbook.close()


def _damaged(path: Path, kind: FileKind, exc: BaseException) -> BadInputError:
    if not path.exists():
        return BadInputError(
            f"'{path.name}' was moved or deleted while it was being read; choose it again."
        )
    label = {FileKind.XLSX: "Excel", FileKind.XLS: "Excel 97-2003", FileKind.ODS: "OpenDocument"}
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return BadInputError(
        f"'{path.name}' looks like an {label.get(kind, 'Excel')} workbook but is damaged and "
        f"cannot be read ({detail}); open it in Excel and save it again."
    )
