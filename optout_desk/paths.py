"""Every folder the desk reads or writes, in one place.

The data folder comes from, in order: `--data-dir` (set_data_dir), the OPTOUT_DESK_HOME
environment variable, then the platform's user data folder (platformdirs). Tests point
OPTOUT_DESK_HOME at a temporary folder so nothing touches the real one.

The folder holds personal data (cached opt-outs, the journal, logs), so it and its files are
private to the user: folders 0700, files 0600 on POSIX, tightened when found looser. On Windows
the user's profile folder is already private (its ACL), and chmod cannot express more.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from optout_desk.core.errors import BadInputError

APP_NAME = "optout-desk"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
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
        private_dir(folder)
    except OSError as exc:
        raise BadInputError(
            f"The data folder {folder} cannot be used ({exc.strerror or exc}). Choose another "
            "with --data-dir or OPTOUT_DESK_HOME."
        ) from None
    return folder


def private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) readable by the user only; an existing folder
    that others can read is tightened."""
    folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(folder, PRIVATE_DIR_MODE)
    return folder


def private_file(path: Path) -> Path:
    """Create `path` empty if missing, readable and writable by the user only; an existing
    file that others can read is tightened. Call before a library opens it, so the file is
    never world-readable, not even for a moment.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock this process holds on it, and SQLite's connections in other threads rely on theirs
    (opening and closing the database for each new connection lost committed journal writes
    under concurrent threads)."""
    if not path.exists():
        if os.name != "nt":
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                     PRIVATE_FILE_MODE)
            except FileExistsError:
                pass  # another thread created it meanwhile
            else:
                os.close(descriptor)
        else:
            path.touch(exist_ok=True)
    _tighten(path, PRIVATE_FILE_MODE)
    return path


def tighten_if_present(path: Path) -> None:
    """Make an existing file private (a database's -wal and -shm beside it)."""
    try:
        _tighten(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def _tighten(path: Path, mode: int) -> None:
    if os.name == "nt":
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:  # group or others have some access
        path.chmod(current & ~0o077 | (mode & 0o700))


def database_path() -> Path:
    return data_dir() / "optout-desk.sqlite3"


def log_dir() -> Path:
    return private_dir(data_dir() / "logs")


def settings_path() -> Path:
    """The GUI's settings file (window geometry, last page, recent files), created private:
    QSettings keeps an existing file's permissions when it saves."""
    path = data_dir() / "settings.ini"
    try:
        private_file(path)
    except OSError:
        pass  # QSettings reports a settings file it cannot write; the desk still runs
    return path


def exports_dir() -> Path:
    """Default folder offered for exports and receipts."""
    return private_dir(data_dir() / "exports")
