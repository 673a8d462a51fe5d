"""Reading delimited text: encodings, delimiters, quoting, ragged rows."""

from __future__ import annotations

import pytest

from optout_desk.core.errors import BadInputError
from optout_desk.files._csv import sniff_delimiter
from optout_desk.files.spreadsheet import list_sheets, read_table
from tests.fixtures.spreadsheets import MakeText

TEXT = "Nom;Courriel;Téléphone\nDupré;andré@exemple.fr;06 12 34 56 78\nMüller;m@example.de;\n"


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", False, "utf-8"),
        ("utf-8", True, "utf-8-sig"),
        ("utf-16-le", True, "utf-16"),
        ("utf-16-be", True, "utf-16"),
        ("utf-16-le", False, "utf-16-le"),
        ("cp1252", False, "cp1252"),
    ],
)
def test_encodings_are_detected(
    make_text: MakeText, encoding: str, bom: bool, expected: str
) -> None:
    table = read_table(make_text(TEXT, encoding=encoding, bom=bom))
    assert table.encoding == expected
    assert table.headers == ["Nom", "Courriel", "Téléphone"]  # no BOM glued to the first header
    assert table.rows == [
        ["Dupré", "andré@exemple.fr", "06 12 34 56 78"],
        ["Müller", "m@example.de", None],
    ]
    assert table.delimiter == ";"
    assert table.sheet is None and table.sheet_names == []
    assert table.file_format == "csv"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(make_text: MakeText, delimiter: str) -> None:
    text = "\n".join(
        delimiter.join(cells)
        for cells in [["Email", "Phone", "Name"], ["a@example.com", "+32470123456", "Ann"],
                      ["b@example.com", "", "Bob"]]
    )
    table = read_table(make_text(text + "\n", name="list.txt"))
    assert table.delimiter == delimiter
    assert table.rows[1] == ["b@example.com", None, "Bob"]


def test_quoted_fields_with_delimiters_and_newlines(make_text: MakeText) -> None:
    text = 'Name,Email\n"Doe, John","john@example.com"\n"Multi\nline",x@example.com\n'
    table = read_table(make_text(text))
    assert table.rows == [["Doe, John", "john@example.com"], ["Multi\nline", "x@example.com"]]
    assert table.row_numbers == [2, 3]


def test_semicolons_beat_commas_inside_values() -> None:
    assert sniff_delimiter("Name;Note\nAnn;a, b, c\nBob;d\n") == ";"


def test_tsv_prefers_tabs(make_text: MakeText) -> None:
    table = read_table(make_text("Email\tPhone\na@example.com\t0470 12 34 56\n", name="x.tsv"))
    assert table.delimiter == "\t"
    assert table.rows == [["a@example.com", "0470 12 34 56"]]


def test_ragged_rows_are_padded_to_one_width(make_text: MakeText) -> None:
    table = read_table(make_text("Email,Phone\na@example.com\nb@example.com,1,extra\n"))
    assert table.headers == ["Email", "Phone", "C"]
    assert table.rows == [["a@example.com", None, None], ["b@example.com", "1", "extra"]]


def test_excel_number_renderings_stay_text_as_seen(make_text: MakeText) -> None:
    table = read_table(make_text("Phone\n3.24701E+10\n32470123456.0\n"))
    assert [row[0] for row in table.rows] == ["3.24701E+10", "32470123456.0"]


def test_title_line_above_the_header(make_text: MakeText) -> None:
    table = read_table(make_text("Export of 1 May\n\nEmail,Phone\na@example.com,+32470123456\n"))
    assert table.header_row_number == 3
    assert table.headers == ["Email", "Phone"]


def test_a_header_only_csv_is_refused(make_text: MakeText) -> None:
    with pytest.raises(BadInputError, match="header row but no data rows"):
        read_table(make_text("Email,Phone\n"))


def test_blank_lines_only_is_refused(make_text: MakeText) -> None:
    with pytest.raises(BadInputError, match="is empty"):
        read_table(make_text("\n\n ,\n".replace(" ", "")))


def test_a_text_file_has_no_sheets(make_text: MakeText) -> None:
    path = make_text("Email\na@example.com\n")
    assert list_sheets(path) == []
    with pytest.raises(BadInputError, match="has no sheets"):
        read_table(path, sheet="Sheet1")


def test_a_cell_longer_than_the_csv_modules_default_limit_is_read(make_text: MakeText) -> None:
    """131,072 characters is Python's default field limit: a longer notes cell gave "an
    unexpected error" (csv.Error from the delimiter sniffing)."""
    note = "x" * 200_000
    table = read_table(make_text(f'Email,Note\na@example.com,"{note}"\nb@example.com,short\n'))
    assert table.delimiter == ","
    assert table.rows == [["a@example.com", note], ["b@example.com", "short"]]


def test_a_quote_never_closed_is_refused_with_its_line(make_text: MakeText) -> None:
    body = "".join(f"p{i}@example.com,Person {i}\n" for i in range(60_000))  # > 1M characters
    with pytest.raises(BadInputError, match=r"cell longer than 1,048,576 characters \(in the row "
                                            r"from line 3\): most likely a quote"):
        read_table(make_text(f'Email,Name\na@example.com,Ann\nb@example.com,"Bob\n{body}'))


def test_old_mac_line_ends_still_read(make_text: MakeText) -> None:
    table = read_table(make_text("Email,Phone\ra@example.com,1\rb@example.com,2\r"))
    assert table.rows == [["a@example.com", "1"], ["b@example.com", "2"]]


def test_crlf_and_newlines_inside_quotes(make_text: MakeText) -> None:
    table = read_table(make_text('Email,Note\r\na@example.com,"two\r\nlines"\r\n'))
    assert table.rows == [["a@example.com", "two\r\nlines"]]
