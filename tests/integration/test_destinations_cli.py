"""myKaarma and Dynamic Yield as a new user meets them from the CLI: add, test, reconcile a
spreadsheet against myKaarma by look-up, submit to each, and the errors on the way."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from optout_desk.cli import main
from optout_desk.sandbox.dynamic_yield import DynamicYieldSandbox
from optout_desk.sandbox.mykaarma import MyKaarmaSandbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def mk(mykaarma_sandbox: MyKaarmaSandbox, monkeypatch: pytest.MonkeyPatch,
       capsys: pytest.CaptureFixture[str]) -> MyKaarmaSandbox:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_MK_USERNAME", mykaarma_sandbox.username)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_MK_PASSWORD", mykaarma_sandbox.password)
    code, out, err = run(capsys, "connection", "add", "mk", "--system", "mykaarma",
                         "--base-url", mykaarma_sandbox.base_url, "--department-uuid",
                         mykaarma_sandbox.department_uuid, "--max-retries", "1")
    assert code == 0, err
    assert "it can check given identifiers and take opt-outs" in out
    return mykaarma_sandbox


@pytest.fixture
def dy(dynamic_yield_sandbox: DynamicYieldSandbox, monkeypatch: pytest.MonkeyPatch,
       capsys: pytest.CaptureFixture[str]) -> DynamicYieldSandbox:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DY_API_KEY", dynamic_yield_sandbox.eu_key)
    code, _, err = run(capsys, "connection", "add", "dy", "--system", "dynamic-yield",
                       "--base-url", dynamic_yield_sandbox.eu_url, "--concurrency", "8")
    assert code == 0, err
    return dynamic_yield_sandbox


def test_adding_needs_what_the_system_declares(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_X_USERNAME", "u")
    monkeypatch.setenv("OPTOUT_DESK_SECRET_X_PASSWORD", "p")
    code, _, err = run(capsys, "connection", "add", "x", "--system", "mykaarma")
    assert code == 2 and "myKaarma needs --department-uuid" in err
    code, _, err = run(capsys, "connection", "add", "x", "--system", "dynamic-yield",
                       "--department-uuid", "d")
    assert code == 2 and "--department-uuid is not a setting of Dynamic Yield" in err
    code, _, err = run(capsys, "connection", "add", "x", "--system", "dynamic-yield",
                       "--region", "apac")
    assert code == 2 and "choose one of us, eu" in err


def test_test_says_what_each_connection_can_do(mk: MyKaarmaSandbox, dy: DynamicYieldSandbox,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "connection", "test", "mk")
    assert code == 0 and "answers opt-out status look-ups" in out
    assert "It can check given identifiers and take opt-outs." in out
    code, out, _ = run(capsys, "connection", "test", "dy")
    assert code == 0 and "accepted the API key" in out and "It can take opt-outs." in out


def test_reconcile_against_mykaarma_by_look_up(mk: MyKaarmaSandbox, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    held = sorted(mk.state.opted_out_values(mk.department_uuid, "EMAIL"))[:3]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "E-mail"])
    for index, email in enumerate([*held, "new.one@example.com", "new.two@example.com",
                                   "broken"]):
        sheet.append([f"P{index}", email])
    crm = tmp_path / "crm.xlsx"
    book.save(crm)
    code, out, err = run(capsys, "reconcile", str(crm), "--against", "mk", "--output",
                         str(tmp_path / "result.xlsx"))
    assert code == 0, err
    assert "look-up of 5 identifiers: 5 asked now, 0 answered earlier" in out
    assert "To submit                   2" in out and "Already in sync             3" in out
    assert "Missing from CRM" in out and "cannot be known" in out
    code, out, _ = run(capsys, "reconcile", str(crm), "--against", "mk", "--output",
                       str(tmp_path / "again.xlsx"))
    assert "0 asked now, 5 answered earlier" in out  # answers are kept and reused


def test_submit_to_each_and_verify(mk: MyKaarmaSandbox, dy: DynamicYieldSandbox,
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("a1@example.com\nb2@example.com\n+32470000042\n", encoding="utf-8")
    code, out, err = run(capsys, "submit", "mk", "--from", str(source), "--region", "BE",
                         "--yes")
    assert code == 0, err
    assert ("EMAIL", "a1@example.com") in mk.state.opted_out(mk.department_uuid)
    assert ("TEXT", "+32470000042") in mk.state.opted_out(mk.department_uuid)
    assert "Verified by looking them up again: 3 confirmed, 0 not yet visible" in out
    code, out, err = run(capsys, "submit", "dy", "--from", str(source), "--region", "BE",
                         "--yes")
    assert code == 0, err
    assert dy.state.opted_out_emails("eu") == {"a1@example.com", "b2@example.com"}
    assert "1 phone it does not take" in out
    assert "Dynamic Yield offers no list or look-up to confirm with" in out


def test_push_tokens_are_an_importable_kind_for_dynamic_yield(
        dy: DynamicYieldSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spreadsheet column marked as push tokens: kept as written (trimmed, case kept), sent
    to Dynamic Yield as opt-out events beside the emails."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Email", "Device token"])
    sheet.append(["p1@example.com", " fcm:AbC-123 "])
    sheet.append(["p2@example.com", "fcm:XyZ-456"])
    source = tmp_path / "devices.xlsx"
    book.save(source)
    code, out, err = run(capsys, "submit", "dy", "--from", str(source), "--push-column",
                         "Device token", "--dry-run")
    assert code == 0, err
    assert "4 opt-outs (2 emails, 2 push tokens) in 4 batches of up to 1" in out
    code, out, err = run(capsys, "submit", "dy", "--from", str(source), "--push-column", "B",
                         "--yes")
    assert code == 0, err
    assert dy.state.opted_out_push_ids("eu") == {"fcm:AbC-123", "fcm:XyZ-456"}
    assert dy.state.opted_out_emails("eu") == {"p1@example.com", "p2@example.com"}
    code, out, err = run(capsys, "reconcile", str(source), "--against", str(source),
                         "--push-column", "B", "--output", str(tmp_path / "r.xlsx"))
    assert code == 2 and "compared with itself" in err
