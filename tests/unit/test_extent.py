"""The extent check reads a sheet's XML as calamine would place its cells, and refuses a sheet
whose range from A1 is beyond files.limits, before any reader allocates it."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optout_desk.core.errors import BadInputError
from optout_desk.files import _extent
from optout_desk.files._extent import check_extent
from optout_desk.files._sniff import FileKind
from optout_desk.files.spreadsheet import column_letter
from tests.fixtures import hostile


def sheet(path: Path, body: str, head: str = hostile.SHEET_HEAD,
          tail: str = hostile.SHEET_TAIL) -> Path:
    return hostile.xlsx_with_sheet(path, head + body + tail)


def test_far_cells_are_refused_with_where_they_are(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"has a cell at XFD1048576, so its sheet spans "
                                            r"1,048,576 rows x 16,384 columns"):
        check_extent(hostile.xlsx_far_cell(tmp_path / "a.xlsx"), FileKind.XLSX)
    with pytest.raises(BadInputError, match="Ctrl\\+End"):
        check_extent(hostile.xlsx_far_cell(tmp_path / "b.xlsx", "BZ1048576"), FileKind.XLSX)


def test_a_far_cell_in_the_middle_of_an_ordinary_sheet(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>1</v></c></row>'
                   for r in range(1, 3000))
    far = '<row r="3000"><c r="A3000"><v>1</v></c><c r="ZZ9999"><v>1</v></c></row>'
    more = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(10000, 30000))
    path = sheet(tmp_path / "mid.xlsx", rows + far + more)
    with pytest.raises(BadInputError, match="has a cell at ZZ29999"):
        check_extent(path, FileKind.XLSX)


def test_what_a_writer_really_leaves_is_accepted(tmp_path: Path) -> None:
    """A styled empty cell far away (calamine places nothing), a wide dimension tag, an empty
    row with a custom height at the last row, a formula without a cached value."""
    body = ('<row r="1"><c r="A1"><v>1</v></c><c r="T1"><v>1</v></c></row>'
            '<row r="900000"><c r="T900000" t="inlineStr"><is><t>x</t></is></c></row>'
            '<row r="1048576" ht="20" customHeight="1"><c r="XFD1048576" s="1"/></row>')
    head = hostile.SHEET_HEAD.replace("<sheetData>", '<dimension ref="A1:XFD1048576"/><sheetData>')
    check_extent(sheet(tmp_path / "ok.xlsx", body, head), FileKind.XLSX)  # 900,000 x 20


def test_cells_without_references_are_placed_as_calamine_places_them(tmp_path: Path) -> None:
    cells = "<c><v>1</v></c>" * 25
    path = sheet(tmp_path / "rless.xlsx", f"<row>{cells}</row>" * 3)
    check_extent(path, FileKind.XLSX)
    wide = sheet(tmp_path / "wide.xlsx", f'<row r="1000000">{"<c><v>1</v></c>" * 30}</row>')
    with pytest.raises(BadInputError, match="1,000,000 rows x 30 columns"):
        check_extent(wide, FileKind.XLSX)


def test_attribute_order_prefixes_and_line_breaks_do_not_hide_a_cell(tmp_path: Path) -> None:
    cases = {
        "order": '<row r="1"><c s="0" r="XFD1048576"><v>1</v></c></row>',
        "newline": '<row r="1"><c\nr="XFD1048576"><v>1</v></c></row>',
    }
    for name, body in cases.items():
        with pytest.raises(BadInputError, match=r"16,38[45] columns"):
            check_extent(sheet(tmp_path / f"{name}.xlsx", body), FileKind.XLSX)
    prefixed_head = ('<?xml version="1.0"?><x:worksheet xmlns:x="http://schemas.openxmlformats.org/'
                     'spreadsheetml/2006/main"><x:sheetData>')
    path = sheet(tmp_path / "prefix.xlsx",
                 '<x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c><x:c r="XFD1048576"><x:v>1</x:v>'
                 "</x:c></x:row>", prefixed_head, "</x:sheetData></x:worksheet>")
    with pytest.raises(BadInputError, match="has a cell at XFD1048576"):
        check_extent(path, FileKind.XLSX)


def test_a_text_run_no_cell_can_hold(tmp_path: Path) -> None:
    body = f'<row r="1"><c r="A1" t="inlineStr"><is><t>{"a" * 3_000_000}</t></is></c></row>'
    with pytest.raises(BadInputError, match="longer than any spreadsheet cell can be"):
        check_extent(sheet(tmp_path / "run.xlsx", body), FileKind.XLSX)
    excel_max = "&amp;" * 32_767  # Excel's longest cell, as long as XML makes it
    body = f'<row r="1"><c r="A1" t="inlineStr"><is><t>{excel_max}</t></is></c></row>'
    check_extent(sheet(tmp_path / "max.xlsx", body), FileKind.XLSX)


def test_ods_repeats(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="more than the desk reads"):
        check_extent(hostile.ods_repeated(tmp_path / "big.ods", 90, 1_000_000), FileKind.ODS)
    check_extent(hostile.ods_repeated(tmp_path / "small.ods", 20, 900_000), FileKind.ODS)
    # Empty repeated cells place a value far to the right.
    path = hostile.ods_repeated(tmp_path / "far.ods", 1, 2000)
    with zipfile.ZipFile(path) as archive:
        content = archive.read("content.xml").decode()
        manifest = archive.read("META-INF/manifest.xml")
    content = content.replace("<table:table-cell table:number-columns-repeated=\"1\"",
                              '<table:table-cell table:number-columns-repeated="16000"/>'
                              "<table:table-cell table:number-columns-repeated=\"1\"")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)
    with pytest.raises(BadInputError, match="2,000 rows x 16,001 columns"):
        check_extent(path, FileKind.ODS)


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_greater_number_matches_exactly_the_greater_numbers(limit: int, value: int) -> None:
    pattern = re.compile(b"(?:" + _extent._greater_number(limit) + b")$")
    assert (pattern.match(str(value).encode()) is not None) == (value > limit)


@given(st.integers(1, 18278), st.integers(1, 18278))
def test_greater_columns_matches_exactly_the_later_columns(limit: int, column: int) -> None:
    letters = column_letter(column - 1)
    assert _extent._column_number(letters.encode()) == column
    pattern = re.compile(b"(?:" + _extent._greater_columns(column_letter(limit - 1)) + b")$")
    assert (pattern.match(letters.encode()) is not None) == (column > limit)
