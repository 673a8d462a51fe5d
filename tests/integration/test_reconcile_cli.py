"""`optout-desk reconcile` end to end: real xlsx files, a seeded connection cache, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from optout_desk.cli import main
from optout_desk.core.records import OptOutRecord
from optout_desk.files.export import would_start_formula
from optout_desk.store import cache, connections, history
from optout_desk.store.db import connect

SHEET_ROWS: list[list[object]] = [
    ["Client list", None, None],  # a title row: the header is on row 3
    [None, None, None],
    ["Name", "E-mail address", "Mobile"],
    ["Alice", "Alice@Example.com ", "0470 12 34 56"],
    ["Bob", "bob@example.com", None],
    ["Carl", "not-an-email", "12"],
    ["Alice again", "alice@example.com", None],
    ["Dora", "dora.x@gmial.com", "=1+1"],
    ["Eve", None, 470999888],  # a number cell that lost its leading zero
]


def write_xlsx(path: Path, rows: list[list[object]], title: str = "Contacts") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    write_xlsx(folder / "sheet.xlsx", SHEET_ROWS)
    write_xlsx(folder / "other.xlsx", [
        ["Email", "Phone"],
        ["alice@example.com", None],
        ["dorax@gmail.com", None],
        ["zed@example.com", "+32470000111"],
    ], title="Export")
    return folder


@pytest.fixture
def seeded_connection() -> str:
    db = connect()
    try:
        profile = connections.add(db, connections.ConnectionProfile(
            name="acme", system="checkmarket", base_url="https://api-eu.agileresearch.medallia.com/",
            region="eu"))
        assert profile.id is not None
        cache.apply_fetch(db, profile.id, "", [
            OptOutRecord("2024-01-02T10:00:00.0000000Z", email="alice@example.com",
                          contact_id=1),
            OptOutRecord("2024-01-03T10:00:00.0000000Z", phone="+32470999888", contact_id=2),
            OptOutRecord("2024-01-04T10:00:00.0000000Z", email="zed@example.com",
                          phone="+32470000111", contact_id=3),
        ], replace=True, synced_at="2024-01-05T00:00:00Z")
        cache.apply_fetch(db, profile.id, "42", [
            OptOutRecord("2024-01-04T10:00:00.0000000Z", email="bob@example.com", contact_id=9),
        ], replace=True, synced_at="2024-01-05T00:00:00Z")
    finally:
        db.close()
    return "acme"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_against_a_file_jsonl(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = files / "result.jsonl"
    code = main(["reconcile", str(files / "sheet.xlsx"), "--against", str(files / "other.xlsx"),
                 "--region", "BE", "--output", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Email columns (detected): B (E-mail address)" in printed
    assert "phone columns (detected): C (Mobile)" in printed
    lines = read_jsonl(output)
    rows = [line for line in lines if line["row"] is not None]
    assert [(line["row"], line["bucket"]) for line in rows] == [
        (4, "in_sync"), (5, "to_submit"), (6, "invalid"), (7, "duplicate"), (8, "to_submit"),
        (9, "to_submit"),
    ]
    for line in lines:
        assert set(line) >= {"row", "bucket", "matched_on", "reason"}
    in_sync = rows[0]
    assert in_sync["matched_on"] == {
        "column": "B (E-mail address)", "kind": "email", "value": "Alice@Example.com ",
        "key": "alice@example.com", "rule": "email, case and spaces ignored",
    }
    assert rows[3]["duplicate_of"] == 4
    assert "not a valid email address" in str(rows[2]["reason"])
    missing = [line for line in lines if line["row"] is None]
    assert [line["bucket"] for line in missing] == ["missing_from_crm"] * 2
    assert {ident["key"] for line in missing for ident in line["identifiers"]} == {  # type: ignore[attr-defined]
        "dorax@gmail.com", "zed@example.com", "+32470000111"}
    # Printed counts equal the lines written.
    assert "To submit                   3" in printed
    assert "Missing from CRM            2" in printed


def test_against_a_connection_uses_the_account_wide_list(
    files: Path, seeded_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output = files / "result.jsonl"
    code = main(["reconcile", str(files / "sheet.xlsx"), "--against", seeded_connection,
                 "--region", "BE", "--output", str(output)])
    assert code == 0
    lines = read_jsonl(output)
    buckets = {line["row"]: line["bucket"] for line in lines if line["row"] is not None}
    # bob is only on survey 42's list: still to submit account-wide.
    assert buckets == {4: "in_sync", 5: "to_submit", 6: "invalid", 7: "duplicate",
                       8: "to_submit", 9: "in_sync"}
    eve = next(line for line in lines if line["row"] == 9)
    assert eve["matched_on"]["key"] == "+32470999888"  # type: ignore[index]
    assert "leading 0" in str(eve["reason"])  # the repair is stated
    missing = [line for line in lines if line["row"] is None]
    assert len(missing) == 1 and missing[0]["record"]["ContactId"] == 3  # type: ignore[index]
    assert "acme" in capsys.readouterr().out
    db = connect()
    try:
        run = history.list_runs(db)[0]
    finally:
        db.close()
    assert run.kind == "reconcile" and run.outcome == "ok"
    assert run.source_file == "sheet.xlsx" and run.source_sha256 and len(run.source_sha256) == 64
    assert run.counts["to_submit"] == 2 and run.counts["missing_from_crm"] == 1


def test_workbook_output(files: Path, seeded_connection: str) -> None:
    output = files / "result.xlsx"
    assert main(["reconcile", str(files / "sheet.xlsx"), "--against", seeded_connection,
                 "--region", "BE", "-o", str(output)]) == 0
    workbook = openpyxl.load_workbook(output)
    assert workbook.sheetnames == ["Summary", "To submit", "Missing from CRM", "Already in sync",
                                   "Invalid", "Duplicates"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Source file"] == "sheet.xlsx"
    assert len(str(summary["Source SHA-256"])) == 64
    assert summary["Sheet"] == "Contacts"
    assert summary["Email columns"] == "B (E-mail address)"
    assert summary["Phone region"] == "Belgium (BE)"
    assert summary["Connection"] == "acme"
    assert summary["Synced at (UTC)"]
    assert summary["To submit"] == 2 and summary["Duplicates"] == 1
    assert "OWASP" in str(summary["Formula safety"])
    to_submit = workbook["To submit"]
    assert to_submit.freeze_panes == "A2"
    header = [cell.value for cell in to_submit[1]]
    assert header == ["Name", "E-mail address", "Mobile", "Sheet row", "Status", "Reason"]
    assert to_submit.max_row == 3  # counts equal the rows held
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert not (cell.data_type == "f")
                if isinstance(cell.value, str):
                    # Text cells, quoted only where typing them would start a formula:
                    # a phone like +32470999888 stays as it is.
                    assert not would_start_formula(cell.value)


def test_scrub_keeps_original_columns_and_order(files: Path, seeded_connection: str) -> None:
    output = files / "send.csv"
    assert main(["reconcile", str(files / "sheet.xlsx"), "--against", seeded_connection,
                 "--region", "BE", "--scrub", "-o", str(output)]) == 0
    with open(output, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Name", "E-mail address", "Mobile"]
    # Alice, her duplicate (also on the list) and Eve (phone on the list) are removed.
    assert [row[0] for row in rows[1:]] == ["Bob", "Carl", "Dora"]


def test_explicit_columns(files: Path) -> None:
    output = files / "r.jsonl"
    assert main(["reconcile", str(files / "sheet.xlsx"), "--against", str(files / "other.xlsx"),
                 "--email-column", "B", "--region", "BE", "-o", str(output)]) == 0
    lines = read_jsonl(output)
    eve = next(line for line in lines if line["row"] == 9)
    assert eve["bucket"] == "invalid"  # the phone column was not mapped


def test_csv_per_bucket(files: Path) -> None:
    output = files / "r.csv"
    assert main(["reconcile", str(files / "sheet.xlsx"), "--against", str(files / "other.xlsx"),
                 "--region", "BE", "--csv-per-bucket", "-o", str(output)]) == 0
    assert (files / "r-to_submit.csv").is_file()
    with open(files / "r-duplicate.csv", encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.reader(handle))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--against", "nobody"], "neither a connection nor a file"),
        (["--against", "{other}", "--email-column", "Z"], "no column 'Z'"),
        (["--against", "{other}", "--region", "XX"], "not a phone region"),
    ],
)
def test_bad_arguments_exit_2(
    files: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    args = [a.replace("{other}", str(files / "other.xlsx")) for a in args]
    code = main(["reconcile", str(files / "sheet.xlsx"), *args, "-o", str(files / "r.jsonl")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (files / "r.jsonl").exists()


def test_file_without_identifier_columns_is_refused(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_xlsx(files / "names.xlsx", [["Name", "City"], ["Ann", "Gent"], ["Bo", "Lier"]])
    code = main(["reconcile", str(files / "names.xlsx"), "--against", str(files / "other.xlsx"),
                 "-o", str(files / "r.jsonl")])
    assert code == 2
    assert "No email or phone column" in capsys.readouterr().err


def test_bad_file_is_one_sentence(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = files / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not really a workbook")
    code = main(["reconcile", str(broken), "--against", str(files / "other.xlsx"),
                 "-o", str(files / "r.jsonl")])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1


def test_connection_not_fetched_yet(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = connect()
    try:
        connections.add(db, connections.ConnectionProfile(
            name="fresh", system="checkmarket", base_url="https://api-eu.agileresearch.medallia.com/"))
    finally:
        db.close()
    code = main(["reconcile", str(files / "sheet.xlsx"), "--against", "fresh", "--region", "BE",
                 "-o", str(files / "r.jsonl")])
    assert code == 2
    assert "optout-desk fetch fresh" in capsys.readouterr().err


def test_unknown_output_suffix(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reconcile", str(files / "sheet.xlsx"), "--against", str(files / "other.xlsx"),
                 "-o", str(files / "r.txt")])
    assert code == 2
    assert ".xlsx, .csv or .jsonl" in capsys.readouterr().err


CONTACT_ROWS: list[list[object]] = [
    ["Name", "E-mail", "Mobile", "Land", "Status"],
    ["Alice", "alice@example.com", None, "BE", "Afgemeld"],      # opted out, on the platform
    ["Bob", "bob@example.com", None, "BE", "Actief"],            # subscribed, nothing to do
    ["Gwen", None, "07700 900123", "United Kingdom", "Afgemeld"],  # opted out, new (a GB phone)
    ["Zed", "zed@example.com", None, "BE", "Actief"],            # subscribed, opted out there
]


def test_a_contact_list_with_status_and_country_columns(
    tmp_path: Path, seeded_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = write_xlsx(tmp_path / "contacts.xlsx", CONTACT_ROWS)
    output = tmp_path / "result.xlsx"
    code = main(["reconcile", str(sheet), "--against", seeded_connection, "--region", "BE",
                 "--status-column", "Status", "--opted-out-values", "Afgemeld",
                 "--country-column", "Land", "-o", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "This file is a contact list (a status column says who opted out) (given)" in printed
    assert "status column E (Status); opted out: 'Afgemeld'" in printed
    assert "country column D (Land), else region BE" in printed
    workbook = openpyxl.load_workbook(output)
    assert workbook.sheetnames == ["Summary", "To submit", "Missing from CRM", "Already in sync",
                                   "Subscribed", "Invalid", "Duplicates"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(min_row=2,
                                                                        values_only=True)}
    assert summary["This file is"] == "a contact list (a status column says who opted out)"
    assert summary["Status column"] == "E (Status)"
    assert summary["Values meaning opted out"] == "Afgemeld"
    assert summary["Country column"] == "D (Land)"
    assert summary["To submit"] == 1 and summary["Already in sync"] == 1
    assert summary["Subscribed"] == 2
    # The platform's phone-only opt-out and zed (whom the CRM holds as subscribed).
    assert summary["Missing from CRM"] == 2
    assert summary["Missing from CRM: held as subscribed in the CRM"] == 1
    to_submit = list(workbook["To submit"].iter_rows(min_row=2, values_only=True))
    assert [row[0] for row in to_submit] == ["Gwen"]  # her UK number was read as British
    missing = list(workbook["Missing from CRM"].iter_rows(values_only=True))
    assert missing[0][0] == "Opted out (UTC)"  # readable headers, not DateOptOut
    zed = next(row for row in missing[1:] if row[1] == "zed@example.com")
    assert zed[-3] == 5  # the CRM row that holds zed as subscribed
    assert "as subscribed (row 5, status 'Actief')" in str(zed[-1])


def test_opted_out_values_without_a_status_column_is_bad_input(
    tmp_path: Path, seeded_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = write_xlsx(tmp_path / "contacts.xlsx", CONTACT_ROWS)
    code = main(["reconcile", str(sheet), "--against", seeded_connection,
                 "--opted-out-values", "Afgemeld", "-o", str(tmp_path / "r.xlsx")])
    assert code == 2
    assert "--opted-out-values needs --status-column" in capsys.readouterr().err
