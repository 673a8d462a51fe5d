"""`optout-desk submit --to A --to B --from FILE`: the matrix, one question, both sent, one
receipt, and `--resume` without a name finishing every unfinished destination."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from optout_desk.cli import main
from tests.fixtures.sandbox import SandboxFactory


@pytest.fixture
def two(sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch) -> tuple:  # type: ignore[type-arg]
    boxes = (sandbox_factory(records=5, seed=1), sandbox_factory(records=5, seed=2))
    for name, box in zip(("east", "west"), boxes, strict=True):
        monkeypatch.setenv(f"OPTOUT_DESK_SECRET_{name.upper()}_MASTER_KEY", box.master_key)
        monkeypatch.setenv(f"OPTOUT_DESK_SECRET_{name.upper()}_KEY", box.key)
        assert main(["connection", "add", name, "--base-url", box.base_url,
                     "--batch-size", "4", "--max-retries", "1"]) == 0
    return boxes


def test_two_destinations_from_the_cli(two: tuple, tmp_path: Path,  # type: ignore[type-arg]
                                       capsys: pytest.CaptureFixture[str]) -> None:
    east, west = two
    source = tmp_path / "ids.txt"
    source.write_text("\n".join([f"cli{i}@example.com" for i in range(9)]
                                + ["+32470000001", "nonsense"]) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["submit", "--to", "east", "--to", "west", "--from", str(source),
                 "--region", "BE", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "11 identifiers to 2 destinations" in printed
    assert "emails → east (opt-out list), west (opt-out list)" in printed
    assert "phones → east (opt-out list), west (opt-out list)" in printed
    assert "Dry run: nothing was sent." in printed and east.state.submitted == []
    receipt = tmp_path / "all.xlsx"
    assert main(["submit", "--to", "east", "--to", "west", "--from", str(source),
                 "--region", "BE", "--yes", "--no-verify", "--receipt", str(receipt)]) == 0
    printed = capsys.readouterr().out
    assert "to east" in printed and "to west" in printed
    assert len(east.state.submitted) == len(west.state.submitted) == 3
    book = openpyxl.load_workbook(receipt, read_only=True)
    assert book.sheetnames == ["Summary", "Outcomes", "east", "west"]
    book.close()


def test_resume_without_a_name_resumes_every_destination(
        two: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    east, west = two
    east.state.inject_faults("503", 2, "3/contacts/optouts")  # both attempts of batch 1
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(f"r{i}@example.com" for i in range(8)) + "\n", encoding="utf-8")
    code = main(["submit", "--to", "east", "--to", "west", "--from", str(source), "--yes",
                 "--no-verify"])
    assert code == 1  # east did not finish
    assert len(west.state.submitted) == 2 and east.state.submitted == []
    capsys.readouterr()
    assert main(["submit", "--resume", "--yes", "--no-verify"]) == 0
    assert len(east.state.submitted) == 2 and len(west.state.submitted) == 2
    assert main(["submit", "--resume", "--yes"]) == 0
    assert "Nothing to resume: every submission is finished." in capsys.readouterr().out
