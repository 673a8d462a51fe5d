"""Column mapping by content, column specs, default region, normalising mapped columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.identifiers import IdKind
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.files import mapping
from optout_desk.files.mapping import (
    ColumnMapping,
    default_region,
    detect_columns,
    normalise_columns,
    resolve_column,
)
from optout_desk.files.spreadsheet import read_table
from tests.fixtures.spreadsheets import MakeText, MakeXlsx


def test_contacts_export_is_mapped_by_content(contacts_xlsx: Path) -> None:
    found = detect_columns(read_table(contacts_xlsx), "BE")
    assert found == ColumnMapping(email_columns=[2], phone_columns=[3], region="BE")


def test_content_wins_over_misleading_headers(make_xlsx: MakeXlsx) -> None:
    rows = [["Column 1", "Email", "Notes"]] + [
        [f"p{i}@example.com", f"+32 470 12 34 {i:02d}", "ok"] for i in range(20)
    ]
    found = detect_columns(read_table(make_xlsx(rows)), "BE")
    assert found.email_columns == [0]
    assert found.phone_columns == [1]


def test_several_email_and_phone_columns(make_text: MakeText) -> None:
    lines = ["Work mail;Private mail;Tel;GSM;Name"] + [
        f"w{i}@corp.example;p{i}@home.example;02 123 45 {i:02d};0470 12 34 {i:02d};N{i}"
        for i in range(30)
    ]
    found = detect_columns(read_table(make_text("\n".join(lines))), "BE")
    assert found.email_columns == [0, 1]
    assert found.phone_columns == [2, 3]


def test_an_id_column_of_numbers_is_not_taken_for_phones(make_xlsx: MakeXlsx) -> None:
    rows = [["Customer ID", "Mobile"]] + [
        [470_000_000 + i, f"0470 12 34 {i:02d}"] for i in range(30)
    ]
    found = detect_columns(read_table(make_xlsx(rows)), "BE")
    assert found.phone_columns == [1]


def test_header_alone_proposes_a_column_whose_content_is_all_invalid(
    make_text: MakeText,
) -> None:
    table = read_table(make_text("Name,E-mail,Téléphone\nAnn,not an address,n/a\nBob,?,-\n"))
    found = detect_columns(table, "BE")
    assert found.email_columns == [1]
    assert found.phone_columns == [2]


def test_no_identifier_column_gives_an_empty_mapping(make_text: MakeText) -> None:
    found = detect_columns(read_table(make_text("Name,City\nAnn,Gent\nBob,Liège\n")), "BE")
    assert found.email_columns == [] and found.phone_columns == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("E-mail", 2), ("e-MAIL", 2), (" mobile ", 3), ("C", 2), ("d", 3), ("1", 0), ("5", 4)],
)
def test_resolve_column(contacts_xlsx: Path, spec: str, expected: int) -> None:
    assert resolve_column(read_table(contacts_xlsx), spec) == expected


@pytest.mark.parametrize("spec", ["Fax", "Z", "0", "6", ""])
def test_unknown_column_lists_the_headers(contacts_xlsx: Path, spec: str) -> None:
    with pytest.raises(BadInputError, match=r"The columns are: A \(Contact ID\), B \(First name\)"):
        resolve_column(read_table(contacts_xlsx), spec)


def test_duplicate_header_names_ask_for_a_letter(make_text: MakeText) -> None:
    table = read_table(make_text("Email,Email\na@example.com,b@example.com\n"))
    with pytest.raises(BadInputError, match=r"\(A and B\); give the column letter"):
        resolve_column(table, "email")
    assert resolve_column(table, "B") == 1


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("fr_BE.UTF-8", "BE"), ("nl_NL", "NL"), ("C.UTF-8", "US"), ("", "US"), ("en_XX.UTF-8", "US")],
)
def test_default_region_from_the_locale(
    monkeypatch: pytest.MonkeyPatch, lang: str, expected: str
) -> None:
    monkeypatch.setattr(mapping.locale, "getlocale", lambda: (None, None))
    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)
    assert default_region() == expected


def test_default_region_prefers_the_process_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping.locale, "getlocale", lambda: ("de_AT", "UTF-8"))
    assert default_region() == "AT"


def test_a_bad_region_is_refused(contacts_xlsx: Path) -> None:
    with pytest.raises(BadInputError, match="'XX' is not a phone region"):
        detect_columns(read_table(contacts_xlsx), "XX")


def test_normalise_columns_keeps_rows_aligned(formulas_xlsx: Path) -> None:
    table = read_table(formulas_xlsx)
    columns = normalise_columns(
        table, ColumnMapping(email_columns=[0], phone_columns=[1], region="BE")
    )
    emails, phones = columns
    assert emails.kind is IdKind.EMAIL and phones.kind is IdKind.PHONE
    assert len(emails.identifiers) == len(phones.identifiers) == len(table.rows)
    assert [i.key if i else None for i in emails.identifiers] == [
        "ann@example.com", "merged@example.com", None, "big@example.com",
    ]
    first_phone = phones.identifiers[0]
    assert first_phone is not None and first_phone.key == "+32470123456"
    assert first_phone.repair  # Excel number cell, said so
    last = phones.identifiers[3]
    assert last is not None and last.key is None and last.problem


def test_normalise_columns_reports_progress_and_cancels(contacts_xlsx: Path) -> None:
    table = read_table(contacts_xlsx)
    found = detect_columns(table, "BE")
    reports: list[Progress] = []
    normalise_columns(table, found, progress=reports.append)
    assert reports[-1].done == reports[-1].total == 80
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        normalise_columns(table, found, cancel=token)
