"""Every folder the desk reads or writes, in one place.

The data folder comes from, in order: `--data-dir` (set_data_dir), the OPTOUT_DESK_HOME
environment variable, then the platform's user data folder (platformdirs). Tests point
OPTOUT_DESK_HOME at a temporary folder so nothing touches the real one.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from optout_desk.core.errors import BadInputError

APP_NAME = "optout-desk"
_override: Path | None = None


def set_data_dir(path: Path | None) -> None:
    """Use `path` as the data folder for this process (the `--data-dir` option)."""
    global _override
    _override = path


def data_dir() -> Path:
    if _override is not None:
        folder = _override
    elif os.environ.get("OPTOUT_DESK_HOME"):
        folder = Path(os.environ["OPTOUT_DESK_HOME"])
    else:
        folder = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"The data folder {folder} cannot be used ({exc.strerror or exc}). Choose another "
            "with --data-dir or OPTOUT_DESK_HOME."
        ) from None
    return folder


def database_path() -> Path:
    return data_dir() / "optout-desk.sqlite3"


def log_dir() -> Path:
    folder = data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settings_path() -> Path:
    """The GUI's settings file (window geometry, last page, recent files)."""
    return data_dir() / "settings.ini"


def exports_dir() -> Path:
    """Default folder offered for exports and receipts."""
    folder = data_dir() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
