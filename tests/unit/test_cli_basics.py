"""The CLI's own contract: version, help, exit codes for bad usage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from optout_desk import __version__
from optout_desk.cli import main


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_bad_usage() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "optout_desk", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "optout-desk" in result.stdout


def test_unusable_data_folder_is_one_sentence_without_traceback(tmp_path: object) -> None:
    from pathlib import Path

    blocker = Path(str(tmp_path)) / "not-a-folder"
    blocker.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "optout_desk", "--data-dir", str(blocker), "connection", "list"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "cannot be used" in result.stderr and "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr
