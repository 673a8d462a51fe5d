"""Hostile files through the real CLI, each in its own process watched from outside: every one
ends in exit 2 with one sentence, within seconds, and the desk's processes (the CLI and its
reader child together) stay under 1 GB. Before the reader process and the extent check, the
first two aborted the whole process (exit 134, "memory allocation of 549755813888 bytes
failed") and the others went past 3 GB.

The watch kills a run at 1.5 GB, so a regression fails the test instead of the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from optout_desk.files import limits
from tests.fixtures import hostile

PEAK_LIMIT = 1024**3  # what the issue allows: parent + child
KILL_ABOVE = 1536 * 1024**2
SECONDS = 30  # "within seconds" on a slow shared 2-core machine (measured: 0.5-9 s)


@dataclass
class Outcome:
    code: int
    stderr: str
    seconds: float
    peak: int  # bytes, the largest sum of resident memory over the CLI and its children


def watched_cli(*argv: str, home: Path) -> Outcome:
    env = {**os.environ, "OPTOUT_DESK_HOME": str(home)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "optout_desk", *argv], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            total = 0
            for member in tree:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            total = 0
        peak = max(peak, total)
        if total > KILL_ABOVE or time.perf_counter() - started > 120:
            for member in reversed(tree):
                try:
                    member.kill()
                except psutil.Error:
                    pass
        time.sleep(0.02)
    _, stderr = process.communicate()
    return Outcome(process.returncode, stderr, time.perf_counter() - started, peak)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "optouts.csv"
    path.write_text("Email\nann@example.com\n", encoding="utf-8")
    return path


def refused(path: Path, other: Path, tmp_path: Path, expected: str) -> Outcome:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    outcome = watched_cli("reconcile", str(path), "--against", str(other), "--output",
                          str(tmp_path / "out.xlsx"), home=home)
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    assert expected in outcome.stderr
    message = outcome.stderr.strip()
    assert message.startswith("optout-desk: ") and "\n" not in message
    assert "Traceback" not in outcome.stderr
    assert outcome.seconds < SECONDS, outcome.seconds
    assert outcome.peak < PEAK_LIMIT, f"{outcome.peak / 1024**2:.0f} MB"
    assert not (tmp_path / "out.xlsx").exists()
    print(f"{path.name}: exit {outcome.code}, {outcome.seconds:.1f} s, "
          f"peak {outcome.peak / 1024**2:.0f} MB")
    return outcome


def test_a_cell_at_xfd1048576(tmp_path: Path, other: Path) -> None:
    path = hostile.xlsx_far_cell(tmp_path / "far.xlsx", "XFD1048576")
    assert path.stat().st_size < 3000
    refused(path, other, tmp_path, "has a cell at XFD1048576")


def test_a_cell_at_bz1048576(tmp_path: Path, other: Path) -> None:
    path = hostile.xlsx_far_cell(tmp_path / "far.xlsx", "BZ1048576")
    refused(path, other, tmp_path, "1,048,576 rows x 78 columns")


def test_ods_repeating_90_columns_a_million_times(tmp_path: Path, other: Path) -> None:
    path = hostile.ods_repeated(tmp_path / "repeat.ods", 90, 1_000_000)
    assert path.stat().st_size < 1000
    refused(path, other, tmp_path, "more than the desk reads in one file")


def test_a_million_empty_rows_of_a_libreoffice_sheet_are_not_refused(
    tmp_path: Path, other: Path
) -> None:
    """LibreOffice writes every sheet to row 1,048,576 with repeated empty cells: no extent."""
    path = hostile.ods_repeated(tmp_path / "fill.ods", 2, 3)
    home = tmp_path / "home"
    home.mkdir()
    outcome = watched_cli("reconcile", str(path), "--against", str(other), "--output",
                          str(tmp_path / "out.xlsx"), home=home)
    # Read (then refused only because it holds no email or phone column).
    assert "No email or phone column" in outcome.stderr, outcome.stderr


@pytest.mark.slow
def test_xlsx_bomb_just_under_both_zip_limits(tmp_path: Path, other: Path) -> None:
    """Rows of small numeric cells without references, unpacking to just under the size limit
    at a ratio under the ratio limit: refused as soon as the cell count passes the limit."""
    block = b"<row><c><v>1</v></c><c><v>2</v></c><c><v>3</v></c></row>" * 20_000
    path = hostile.xlsx_bomb(tmp_path / "bomb.xlsx", limits.MAX_UNCOMPRESSED_BYTES - 2**20,
                             block)
    import zipfile

    with zipfile.ZipFile(path) as archive:
        size = sum(info.file_size for info in archive.infolist())
    assert limits.MAX_UNCOMPRESSED_BYTES * 0.99 < size < limits.MAX_UNCOMPRESSED_BYTES
    assert 100 < size / path.stat().st_size < limits.MAX_RATIO
    refused(path, other, tmp_path, "holds more than 20,000,000 cells")


def test_the_issues_19_gb_bomb_is_refused_from_the_zip_directory(
    tmp_path: Path, other: Path
) -> None:
    block = b"<row><c><v>1</v></c><c><v>2</v></c><c><v>3</v></c></row>" * 20_000
    path = hostile.xlsx_bomb(tmp_path / "bomb.xlsx", int(1.9 * 1024**3), block)
    refused(path, other, tmp_path, "would unpack to 1.9 GB")


def test_a_shared_strings_bomb_of_one_endless_text(tmp_path: Path, other: Path) -> None:
    import random

    rng = random.Random(1)
    noise = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(3000))
    block = b"a" * 997_000 + noise  # one text, never interrupted by a tag
    path = hostile.xlsx_bomb(tmp_path / "strings.xlsx", 1024**3, block, member="strings")
    import zipfile

    with zipfile.ZipFile(path) as archive:
        size = sum(info.file_size for info in archive.infolist())
    assert 100 < size / path.stat().st_size < limits.MAX_RATIO
    refused(path, other, tmp_path, "longer than any spreadsheet cell can be")


@pytest.mark.slow
def test_a_csv_of_11_gb(tmp_path: Path, other: Path) -> None:
    path = hostile.huge_csv(tmp_path / "huge.csv", int(1.1e9))
    try:
        refused(path, other, tmp_path, "more than the 512 MB of text")
    finally:
        path.unlink()


@pytest.mark.slow
def test_a_csv_just_under_the_size_limit_with_too_many_cells(
    tmp_path: Path, other: Path
) -> None:
    path = hostile.huge_csv(tmp_path / "cells.csv", limits.MAX_TEXT_BYTES - 2**20)
    try:
        refused(path, other, tmp_path, "cells, more than the 20,000,000")
    finally:
        path.unlink()
