"""Test-wide set-up: headless Qt, isolated folders, one QApplication (pytest-qt's)."""

from __future__ import annotations

import os

# Without a display Qt aborts the whole process when a QApplication is created; this must be
# set before anything imports Qt.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every app folder in tmp_path: database, logs, settings, exports; no secrets from the
    real environment."""
    home = tmp_path / "desk-home"
    home.mkdir()
    monkeypatch.setenv("OPTOUT_DESK_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("OPTOUT_DESK_SECRET_"):
            monkeypatch.delenv(name)
    from optout_desk import paths

    paths.set_data_dir(None)
    yield home
    paths.set_data_dir(None)


# Fixtures owned by each area live in their own plugin modules.
pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.simulators",
    "tests.fixtures.keyring",
    "tests.fixtures.gui",
    "tests.fixtures.spreadsheets",
    "tests.fixtures.receiver",
]
