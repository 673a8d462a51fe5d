"""files/export.export_rows: formats by suffix, formula neutralisation, atomic writes."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import openpyxl
import pytest

from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import CancelToken
from optout_desk.files.export import FORMULA_TRIGGERS, export_rows, neutralise


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of its own (tmp_path also holds the isolated desk home)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path

DANGEROUS = ["=1+1", "+32470123456", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']


def test_neutralise_prefixes_every_trigger_and_nothing_else() -> None:
    for trigger in FORMULA_TRIGGERS:
        assert neutralise(trigger + "x") == "'" + trigger + "x"
    assert neutralise("alice@example.com") == "alice@example.com"
    assert neutralise("") == ""
    assert neutralise("a=b") == "a=b"


FORMULAS = [value for value in DANGEROUS if value != "+32470123456"]
PHONES_AND_NUMBERS = ["+32470123456", "+32 470 12 34 56", "-5", "+1.5"]


def test_xlsx_cells_are_text_and_only_formulas_are_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    moment = datetime.datetime(2024, 1, 2, 9, 14, 3)
    rows = [[value, 7, None, 2.5, True, datetime.date(2024, 1, 2), moment]
            for value in FORMULAS + PHONES_AND_NUMBERS]
    written = export_rows(path, ["Value", "N", "Empty", "F", "B", "D", "T"], rows)
    assert written == len(rows)
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == ["Value", "N", "Empty", "F", "B", "D", "T"]
    assert sheet["A1"].font.b
    for index, value in enumerate(FORMULAS + PHONES_AND_NUMBERS, start=2):
        cell = sheet.cell(index, 1)
        assert cell.data_type == "s"  # text, never a formula or a number
        # xlsx stores a carriage return as the escape _x000D_, which openpyxl leaves as is.
        expected = value if value in PHONES_AND_NUMBERS else "'" + value
        assert cell.value == expected.replace("\r", "_x000D_")
        assert sheet.cell(index, 2).value == 7
        assert sheet.cell(index, 3).value is None
        assert sheet.cell(index, 4).value == 2.5
        assert sheet.cell(index, 5).value is True
        day, when = sheet.cell(index, 6), sheet.cell(index, 7)
        assert day.is_date and day.value == datetime.datetime(2024, 1, 2)
        assert day.number_format == "yyyy-mm-dd"
        assert when.is_date and when.value == moment
        assert when.number_format == "yyyy-mm-dd hh:mm:ss"


def test_xlsx_dates_with_a_time_zone_are_written_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    zone = datetime.timezone(datetime.timedelta(hours=2))
    export_rows(path, ["T"], [[datetime.datetime(2024, 1, 2, 11, 0, tzinfo=zone)]])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert sheet["A2"].value == datetime.datetime(2024, 1, 2, 9, 0)


def test_csv_cells_are_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    export_rows(path, ["Value", "N"], [[value, -5] for value in DANGEROUS])
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Value", "N"]
    assert [row[0] for row in rows[1:]] == ["'" + value for value in DANGEROUS]
    assert all(row[0].startswith("'") for row in rows[1:])
    assert rows[1][1] == "-5"  # a real number stays a number


def test_jsonl_keeps_values_for_programs(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    assert export_rows(path, ["a", "b"], [["+3247", 1], [None, datetime.date(2024, 5, 1)]]) == 2
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"a": "+3247", "b": 1}, {"a": None, "b": "2024-05-01"}]


def test_unknown_suffix_is_refused(folder: Path) -> None:
    with pytest.raises(BadInputError, match=r"\.xlsx, \.csv or \.jsonl"):
        export_rows(folder / "out.txt", ["a"], [["x"]])
    assert list(folder.iterdir()) == []


def test_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        export_rows(tmp_path / "nope" / "out.csv", ["a"], [["x"]])


@pytest.mark.parametrize("suffix", [".xlsx", ".csv", ".jsonl"])
def test_failure_mid_write_keeps_previous_file(folder: Path, suffix: str) -> None:
    path = folder / f"out{suffix}"
    export_rows(path, ["a"], [["old"]])
    before = path.read_bytes()

    def rows() -> object:
        for index in range(50_000):
            if index == 30_000:
                raise OSError("disk full")
            yield [f"row {index}"]

    with pytest.raises(OSError, match="disk full"):
        export_rows(path, ["a"], rows())  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [path.name]


def test_cancel_mid_write_leaves_no_file(folder: Path) -> None:
    path = folder / "out.xlsx"
    token = CancelToken()

    def rows() -> object:
        for index in range(50_000):
            if index == 15_000:
                token.cancel()
            yield [index]

    with pytest.raises(Cancelled):
        export_rows(path, ["a"], rows(), cancel=token)  # type: ignore[arg-type]
    assert list(folder.iterdir()) == []


def test_progress_is_reported(tmp_path: Path) -> None:
    seen: list[int] = []
    export_rows(tmp_path / "o.csv", ["a"], ([i] for i in range(25_000)),
                progress=lambda p: seen.append(p.done))
    assert seen[-1] == 25_000
    assert 10_000 in seen


def test_workbook_sheets_are_styled_frozen_and_sized(folder: Path) -> None:
    from optout_desk.files.export import SheetSpec, write_workbook

    path = folder / "book.xlsx"
    counts = write_workbook(path, [
        SheetSpec("Summary", ["Item", "Value"], [["Source file", "crm.xlsx"], ["Rows", 3]]),
        SheetSpec("To submit", ["Email", "Reason"], [["=cmd|' /C calc'!A0", "x" * 80]]),
        SheetSpec("Bad/name:[x]", ["A"], []),
    ])
    assert counts == {"Summary": 2, "To submit": 1, "Bad/name:[x]": 0}
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Summary", "To submit", "Bad_name__x_"]
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet["A1"].font.b
    to_submit = workbook["To submit"]
    assert to_submit["A2"].value == "'=cmd|' /C calc'!A0" and to_submit["A2"].data_type == "s"
    assert to_submit.column_dimensions["B"].width > 50  # sized to the content, capped


def test_workbook_failure_keeps_previous_file(folder: Path) -> None:
    from optout_desk.files.export import SheetSpec, write_workbook

    path = folder / "book.xlsx"
    write_workbook(path, [SheetSpec("S", ["a"], [["old"]])])
    before = path.read_bytes()

    def rows() -> object:
        yield ["fine"]
        raise ValueError("bug in a producer")

    with pytest.raises(ValueError, match="bug in a producer"):
        write_workbook(path, [SheetSpec("S", ["a"], rows())])  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == ["book.xlsx"]


def test_jsonl_writer_is_atomic(folder: Path) -> None:
    from optout_desk.files.export import write_jsonl

    path = folder / "out.jsonl"
    assert write_jsonl(path, [{"row": 2, "bucket": "to_submit"}]) == 1

    def objects() -> object:
        yield {"row": 3}
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_jsonl(path, objects())  # type: ignore[arg-type]
    assert json.loads(path.read_text(encoding="utf-8")) == {"row": 2, "bucket": "to_submit"}
    assert [p.name for p in folder.iterdir()] == ["out.jsonl"]
