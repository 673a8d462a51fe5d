"""What the CLI says about the paths it is given: an output that is an input is refused before
anything is read or written, a folder is called a folder, and every entry point accepts the
same file types (one definition in files/formats.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optout_desk.cli import main
from optout_desk.files import formats
from optout_desk.sandbox.server import Sandbox
from tests.fixtures.spreadsheets import write_xlsx


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "crm.csv").write_text("Email\nann@example.com\nbob@example.com\n",
                                    encoding="utf-8")
    write_xlsx(folder / "optouts.xlsx", {"Export": [["Email"], ["ann@example.com"]]})
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("output", ["crm.csv", "optouts.xlsx", "./sub/../crm.csv"])
def test_reconcile_refuses_an_output_that_is_an_input(
    work: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    (work / "sub").mkdir()
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    code, err = run(capsys, "reconcile", str(work / "crm.csv"), "--against",
                    str(work / "optouts.xlsx"), "--output", str(work / output))
    assert code == 2
    assert "would overwrite" in err and "which is an input" in err
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_reconcile_sees_an_input_through_a_link(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "link.csv").symlink_to(work / "crm.csv")
    code, err = run(capsys, "reconcile", str(work / "crm.csv"), "--against",
                    str(work / "optouts.xlsx"), "--output", str(work / "link.csv"))
    assert code == 2 and "would overwrite 'crm.csv'" in err


def test_reconcile_refuses_a_per_bucket_csv_that_is_an_input(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--csv-per-bucket writes result-<bucket>.csv beside the output: none may be an input."""
    victim = work / "result-to_submit.csv"
    victim.write_text("Email\ncas@example.com\n", encoding="utf-8")
    code, err = run(capsys, "reconcile", str(victim), "--against", str(work / "optouts.xlsx"),
                    "--output", str(work / "result.csv"), "--csv-per-bucket")
    assert code == 2 and "would overwrite 'result-to_submit.csv'" in err
    assert victim.read_text(encoding="utf-8") == "Email\ncas@example.com\n"


def test_reconcile_workflow_refuses_it_too(work: Path) -> None:
    from optout_desk.core.errors import BadInputError
    from optout_desk.workflows.reconcile import run_reconcile, write_result

    run = run_reconcile(work / "crm.csv", str(work / "optouts.xlsx"), region="BE")
    for target in (work / "crm.csv", work / "optouts.xlsx"):
        with pytest.raises(BadInputError, match="would overwrite"):
            write_result(run, target)
    assert write_result(run, work / "result.xlsx") == [work / "result.xlsx"]


def test_reconcile_says_a_folder_is_a_folder(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, "reconcile", str(work), "--against", str(work / "optouts.xlsx"),
                    "--output", str(work / "out.xlsx"))
    assert code == 2 and "is a folder, not a file" in err
    code, err = run(capsys, "reconcile", str(work / "crm.csv"), "--against", str(work),
                    "--output", str(work / "out.xlsx"))
    assert code == 2 and "is a folder, not a file" in err


@pytest.fixture
def demo(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    assert main(["connection", "add", "demo", "--base-url", sandbox.base_url]) == 0
    return "demo"


@pytest.mark.parametrize("name", ["exports", "exports.xlsx"])
def test_submit_from_a_folder_says_it_is_a_folder(
    demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (tmp_path / name).mkdir()
    capsys.readouterr()
    code, err = run(capsys, "submit", demo, "--from", str(tmp_path / name), "--dry-run")
    assert code == 2
    assert "is a folder, not a file" in err and "no file" not in err.lower()


def test_submit_refuses_a_huge_plain_list(
    demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("optout_desk.files.lists.MAX_LIST_BYTES", 1000)
    path = tmp_path / "ids.txt"
    path.write_text("a@example.com\n" * 100, encoding="utf-8")
    capsys.readouterr()
    code, err = run(capsys, "submit", demo, "--from", str(path), "--dry-run")
    assert code == 2 and "save it as .csv" in err


def test_one_list_of_file_types() -> None:
    from optout_desk.files import _sniff
    from optout_desk.ui import pages
    from optout_desk.workflows import submit

    dropped, submitted = pages.SPREADSHEET_SUFFIXES, submit.SPREADSHEET_SUFFIXES

    assert ".xlsb" not in submitted  # the reader refuses it: submit must not promise it
    assert ".ods" in dropped  # the reader opens it: the window must accept it
    assert set(_sniff.SUPPORTED_EXTENSIONS) == set(formats.SUPPORTED_EXTENSIONS)
    assert set(dropped) == set(submitted) == set(formats.SPREADSHEET_EXTENSIONS)
    assert set(formats.SPREADSHEET_EXTENSIONS) < set(formats.SUPPORTED_EXTENSIONS)
    assert formats.dialog_filter().startswith("Spreadsheets (*.xlsx *.xlsm *.xls *.ods *.csv")
