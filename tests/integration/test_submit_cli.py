"""`optout-desk submit` and `optout-desk history` as an operator runs them, against the sandbox."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from optout_desk.cli import main
from optout_desk.sandbox.server import Sandbox


@pytest.fixture
def demo(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    assert main(["connection", "add", "demo", "--system", "checkmarket",
                 "--base-url", sandbox.base_url]) == 0
    return "demo"


def lines_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_dry_run_previews_and_sends_nothing(
    sandbox: Sandbox, demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = next(o["Email"] for o in sandbox.state.optouts() if o.get("Email"))
    assert main(["fetch", demo]) == 0
    source = lines_file(tmp_path, ["New.One@Example.com", "0470 12 34 56", "new.one@example.com",
                                   "garbage", existing, ""])
    capsys.readouterr()
    code = main(["submit", demo, "--from", str(source), "--region", "BE", "--dry-run",
                 "--batch-size", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert sandbox.state.submitted == []
    assert "Destination: demo — CheckMarket (Medallia Agile Research) at 127.0.0.1:" in printed
    assert "2 opt-outs (1 email, 1 phone) in 2 batches of up to 1" in printed
    assert "Plan hash:" in printed and '"new.one@example.com"' in printed
    assert "1 repeated from earlier in the list" in printed
    assert "1 already on the destination" in printed
    assert "row 4: 'garbage'" in printed
    assert "Dry run: nothing was sent." in printed


def test_refuses_without_terminal_or_yes(
    sandbox: Sandbox, demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    source = lines_file(tmp_path, ["a@example.com"])
    assert main(["submit", demo, "--from", str(source)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert sandbox.state.submitted == []


def test_submit_from_stdin_with_yes_then_history(
    sandbox: Sandbox, demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = [f"cli{i}@example.com" for i in range(7)]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(values).encode())))
    receipt = tmp_path / "receipt.xlsx"
    assert main(["submit", demo, "--from", "-", "--yes", "--batch-size", "3",
                 "--receipt", str(receipt)]) == 0
    printed = capsys.readouterr().out
    assert "3 of 3 batches acknowledged, 7 of 7 opt-outs submitted" in printed
    assert "Verified by re-fetching: 7 confirmed, 0 not yet visible." in printed
    assert [v for body in sandbox.state.submitted for v in body["EmailAddresses"]] == values
    book = openpyxl.load_workbook(receipt, read_only=True)
    sheet = book.active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    book.close()  # a read-only workbook keeps its file open until closed
    assert rows[0][:3] == ("Identifier", "Kind", "Sent as")
    assert {r[6] for r in rows[1:]} == {"submitted"} and {r[8] for r in rows[1:]} == {"yes"}

    assert main(["history"]) == 0
    table = capsys.readouterr().out
    assert "submit" in table and "standard input" in table and "fetch" in table
    assert main(["submit", demo, "--resume"]) == 0
    assert "Nothing to resume for demo" in capsys.readouterr().out

    from optout_desk.store import history
    from optout_desk.store.db import connect

    db = connect()
    run_id = next(r.id for r in history.list_runs(db) if r.kind == "submit")
    db.close()
    out = tmp_path / "again.csv"
    assert main(["history", "--export-receipt", str(run_id), "--output", str(out)]) == 0
    assert [r["Identifier"] for r in read_csv(out)] == values
    assert main(["history", "--export-receipt", str(run_id)]) == 2


def test_spreadsheet_column_and_failure_then_resume(
    sandbox: Sandbox, demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Mail", "Mobile"])
    for i in range(5):
        sheet.append([f"P{i}", f"xl{i}@example.com", f"+3247000000{i}"])
    path = tmp_path / "crm.xlsx"
    book.save(path)
    from optout_desk.store import connections
    from optout_desk.store.db import connect

    db = connect()
    profile = connections.get(db, demo)
    profile.settings["max_retries"] = 1  # one retry: two 500s fail the batch
    connections.update(db, profile)
    db.close()
    sandbox.state.inject_faults("500", 2, "3/contacts/optouts")
    code = main(["submit", demo, "--from", str(path), "--column", "Mail", "--yes",
                 "--batch-size", "2", "--no-verify"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Stopped: batch 1 failed after retries" in captured.out
    assert "resume with `optout-desk submit demo --resume`" in captured.out
    assert main(["submit", demo, "--resume", "--yes", "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 batches acknowledged, 5 of 5 opt-outs submitted" in out
    sent = [v for body in sandbox.state.submitted for v in body["EmailAddresses"]]
    assert sent == [f"xl{i}@example.com" for i in range(5)]
    assert all(body["PhoneNumbers"] == [] for body in sandbox.state.submitted)


def test_unknown_connection_and_bad_input(
    demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", "nope", "--resume"]) == 2
    assert main(["submit", demo, "--from", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["submit", demo, "--from", str(lines_file(tmp_path, ["x@y.be"])), "--region",
                 "ZZ", "--dry-run"]) == 2
