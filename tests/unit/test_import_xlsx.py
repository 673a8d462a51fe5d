"""Reading real workbooks: header detection, sheets, types as the operator saw them."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.identifiers import normalise_phone
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.files.spreadsheet import column_letter, list_sheets, read_table
from tests.fixtures.spreadsheets import CONTACT_HEADERS, MakeXlsx


def test_contacts_export_reads_with_numbers_kept_as_numbers(contacts_xlsx: Path) -> None:
    table = read_table(contacts_xlsx)
    assert table.sheet == "Contacts"
    assert table.sheet_names == ["Contacts"]
    assert table.header_row_number == 1
    assert table.headers == CONTACT_HEADERS
    assert len(table.rows) == 40
    assert table.row_numbers[:3] == [2, 3, 4]
    first, second = table.rows[0], table.rows[1]
    assert first[2] == "person1@example.com"
    assert first[3] == "+32 470 12 34 01"
    assert isinstance(second[3], float)  # a number cell stays a number: Excel damage detectable
    assert normalise_phone(second[3], "BE").repair
    assert first[4] == datetime.date(2024, 1, 2)
    assert table.file_format == "xlsx"
    assert table.sha256 == hashlib.sha256(contacts_xlsx.read_bytes()).hexdigest()
    assert all(len(row) == len(table.headers) for row in table.rows)


def test_title_rows_and_blank_rows_above_the_header_are_skipped(titled_xlsx: Path) -> None:
    table = read_table(titled_xlsx)
    assert table.header_row_number == 4
    assert table.headers == ["A", "Name", "Mail", "GSM"]  # column A is empty, letters kept
    assert [row[1] for row in table.rows] == ["Ann", "Bob", "Cas"]
    assert table.row_numbers == [5, 6, 8]  # the blank row 7 is left out
    assert table.rows[2][3] is None
    assert table.column_label(2) == "C (Mail)"


def test_a_file_without_header_names_columns_by_letter(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx([["ann@example.com", "+32470123456"], ["bob@example.com", None]])
    table = read_table(path)
    assert table.header_row_number == 0
    assert table.headers == ["A", "B"]
    assert table.row_numbers == [1, 2]
    assert table.notes


def test_default_sheet_is_the_first_visible_non_empty_one(multi_sheet_xlsx: Path) -> None:
    assert list_sheets(multi_sheet_xlsx) == ["Read me", "Old", "Contacts", "Other"]
    table = read_table(multi_sheet_xlsx)
    assert table.sheet == "Contacts"
    assert table.rows == [["new@example.com", "+32470123456"]]


def test_a_sheet_is_picked_by_name_case_insensitively_or_by_number(
    multi_sheet_xlsx: Path,
) -> None:
    assert read_table(multi_sheet_xlsx, sheet="Other").headers == ["Téléphone"]
    assert read_table(multi_sheet_xlsx, sheet="other").sheet == "Other"
    assert read_table(multi_sheet_xlsx, sheet="2").sheet == "Old"  # hidden, but asked for


def test_an_unknown_sheet_lists_the_sheets(multi_sheet_xlsx: Path) -> None:
    with pytest.raises(BadInputError, match=r"no sheet named 'Nope'.*'Read me', 'Old'"):
        read_table(multi_sheet_xlsx, sheet="Nope")


def test_an_empty_sheet_asked_for_is_refused(multi_sheet_xlsx: Path) -> None:
    with pytest.raises(BadInputError, match=r"Sheet 'Read me' .* is empty"):
        read_table(multi_sheet_xlsx, sheet="Read me")


def test_formulas_give_cached_values_and_merged_cells_stay_as_seen(formulas_xlsx: Path) -> None:
    table = read_table(formulas_xlsx)
    assert table.headers == ["Email", "Phone", "Check"]
    assert table.rows[0][0] == "ann@example.com"  # formula -> its cached value
    assert table.rows[0][1] == 32470123456.0  # shown as 3.25E+10, stored whole
    assert table.rows[0][2] is None  # #N/A: calamine gives no text for error cells
    # Merged A3:A4: only the top-left cell holds the value, as Excel stores it.
    assert table.rows[1][0] == "merged@example.com"
    assert table.rows[2][0] is None
    damaged = normalise_phone(table.rows[3][1], "BE")
    assert damaged.key is None and damaged.problem and "15 digits" in damaged.problem


def test_formulas_without_cached_values_read_as_empty(uncached_formula_xlsx: Path) -> None:
    table = read_table(uncached_formula_xlsx)
    assert table.headers == ["Email", "Phone"]
    assert table.rows == [["ann@example.com", None], [None, "+32470654321"]]


def test_xlsm_and_a_csv_named_xlsx_are_read_by_content(
    contacts_xlsx: Path, tmp_path: Path
) -> None:
    xlsm = tmp_path / "macro.xlsm"
    xlsm.write_bytes(contacts_xlsx.read_bytes())
    assert len(read_table(xlsm).rows) == 40
    fake = tmp_path / "really.xlsx"
    fake.write_text("Email;Phone\nann@example.com;0470123456\n", encoding="utf-8")
    table = read_table(fake)
    assert table.file_format == "csv"
    assert table.rows == [["ann@example.com", "0470123456"]]
    assert any("really a text" in note for note in table.notes)


def test_an_xlsx_named_csv_is_read_as_a_workbook(contacts_xlsx: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "export.csv"
    renamed.write_bytes(contacts_xlsx.read_bytes())
    table = read_table(renamed)
    assert table.file_format == "xlsx"
    assert len(table.rows) == 40


def test_a_million_empty_styled_rows_are_trimmed_fast(tmp_path: Path) -> None:
    import time

    import xlsxwriter

    path = tmp_path / "styled.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet()
    bold = workbook.add_format({"bold": True})
    sheet.write_row(0, 0, ["Email", "Phone"])
    sheet.write_row(1, 0, ["ann@example.com", "+32470123456"])
    for row in range(2, 1_048_576):
        sheet.set_row(row, None, bold)
    workbook.close()
    started = time.perf_counter()
    table = read_table(path)
    assert time.perf_counter() - started < 20
    assert table.rows == [["ann@example.com", "+32470123456"]]


def test_progress_is_reported_and_cancel_is_honoured(contacts_xlsx: Path) -> None:
    reports: list[Progress] = []
    read_table(contacts_xlsx, progress=reports.append)
    assert reports[0].done == 0 and reports[-1].done == reports[-1].total == 40
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        read_table(contacts_xlsx, cancel=token)


def test_cancel_during_the_read_stops_it(contacts_xlsx: Path) -> None:
    token = CancelToken()

    def cancel_on_first_report(_: Progress) -> None:
        token.cancel()

    with pytest.raises(Cancelled):
        read_table(contacts_xlsx, progress=cancel_on_first_report, cancel=token)


def test_ods_written_by_hand_is_read(tmp_path: Path) -> None:
    path = tmp_path / "list.ods"
    _write_minimal_ods(path, [["Email", "Phone"], ["ann@example.com", "+32470123456"]])
    table = read_table(path)
    assert table.file_format == "ods"
    assert table.rows == [["ann@example.com", "+32470123456"]]


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "ZZ", "AAA",
    ]


def _write_minimal_ods(path: Path, rows: list[list[str]]) -> None:
    import zipfile

    cells = "".join(
        "<table:table-row>"
        + "".join(
            f'<table:table-cell office:value-type="string"><text:p>{value}</text:p>'
            "</table:table-cell>"
            for value in row
        )
        + "</table:table-row>"
        for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Sheet1">{cells}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)


def test_openpyxl_reads_an_xlsx_when_calamine_fails_on_it(
    titled_xlsx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No real file is known that calamine rejects and openpyxl reads, so calamine's sheet read
    is made to fail; the fallback must give the same rows. The reader's code runs here, in the
    test's process (read_table runs it in a child, out of monkeypatch's reach)."""
    import python_calamine

    from optout_desk.files import _reader

    def rows_of(path: Path) -> list[list[object]]:
        received: list[list[object]] = []

        def emit(kind: str, payload: object) -> None:
            assert kind == "rows" and isinstance(payload, list)
            received.extend(payload)

        assert _reader.read_rows(path, None, emit).sheet == "Fair"
        return received

    expected = rows_of(titled_xlsx)
    calls: list[str] = []

    def fail(self: object, name: str) -> object:
        calls.append(name)
        raise python_calamine.XmlError("simulated")

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "get_sheet_by_name", fail)
    assert rows_of(titled_xlsx) == expected
    assert calls == ["Fair"]


def test_legacy_xls_is_read_as_excel_shows_it(tmp_path: Path) -> None:
    """A real Excel 97-2003 file (written with xlwt): a title row above the header, numbers
    stored as numbers, a phone that lost its leading zero, a second sheet to choose."""
    import xlwt  # type: ignore[import-untyped]  # test-only writer, no stubs

    book = xlwt.Workbook()
    sheet = book.add_sheet("Contacts")
    rows: list[list[object]] = [
        ["CRM export"], [], ["Name", "E-mail", "Mobile", "Customer no"],
        ["Ann", "Ann@Example.com", 470123456, 1001],
        ["Bob", "bob@example.com", "0470 99 88 77", 1002],
    ]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.add_sheet("Notes").write(0, 0, "nothing here")
    path = tmp_path / "old.xls"
    book.save(str(path))

    table = read_table(path)
    assert table.file_format == "xls"
    assert table.sheet_names == ["Contacts", "Notes"]
    assert table.header_row_number == 3
    assert table.headers == ["Name", "E-mail", "Mobile", "Customer no"]
    assert [row[:2] for row in table.rows] == [
        ["Ann", "Ann@Example.com"], ["Bob", "bob@example.com"]]
    assert table.row_numbers == [4, 5]

    from optout_desk.files.mapping import detect_columns, normalise_columns

    mapping = detect_columns(table, "BE")
    assert (mapping.email_columns, mapping.phone_columns) == ([1], [2])
    emails, phones = normalise_columns(table, mapping)
    assert [i.key for i in emails.identifiers] == ["ann@example.com", "bob@example.com"]  # type: ignore[union-attr]
    ann, bob = phones.identifiers
    assert ann is not None and ann.key == "+32470123456"
    assert ann.repair is not None and "dropped the leading 0" in ann.repair
    assert bob is not None and bob.key == "+32470998877"
