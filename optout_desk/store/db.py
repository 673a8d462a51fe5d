"""Opening the database: private to the user, WAL, foreign keys, forward migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from optout_desk import paths
from optout_desk.core.errors import DeskError
from optout_desk.store.schema import MIGRATIONS


class DatabaseError(DeskError):
    pass


def connect(path: Path | None = None) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the desk's database.

    Each thread opens its own connection; WAL lets a reader (the GUI) and a writer (a
    background fetch) work at once.
    """
    path = path or paths.database_path()
    try:
        # Cached opt-outs are personal data: the file is created private (0600) before SQLite
        # opens it; SQLite gives its -wal and -shm files the database file's permissions.
        paths.private_file(path)
        for companion in _companions(path):
            paths.tighten_if_present(companion)  # files left by an older, looser desk
    except OSError as exc:
        raise DatabaseError(
            f"The desk's database at {path} cannot be created ({exc.strerror or exc}); check "
            "the data folder's permissions or choose another with --data-dir."
        ) from None
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=True)
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
    except BaseException as exc:
        conn.close()  # a half-opened connection must not leak its file handle
        if isinstance(exc, sqlite3.DatabaseError):
            raise _unusable(path, exc) from exc
        raise
    return conn


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> DatabaseError:
    return DatabaseError(
        f"The desk's database at {path} could not be opened ({exc}). "
        "Move it aside and start again, or restore it from a backup."
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, one migration per transaction.

    Two threads or processes may open a new database at once: each takes the write lock
    (BEGIN IMMEDIATE) and re-reads the version under it, so a migration another connection
    has just applied is skipped instead of failing with "table already exists".
    """
    _refuse_newer(_version(conn))
    while (version := _version(conn)) < len(MIGRATIONS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _version(conn)
            _refuse_newer(version)
            if version < len(MIGRATIONS):
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int) -> None:
    if version > len(MIGRATIONS):
        raise DatabaseError(
            f"The database was written by a newer Opt-out Desk (schema {version}); "
            "update the desk to open it."
        )


def _statements(script: str) -> list[str]:
    """Split a migration into statements so they run inside one explicit transaction
    (executescript would commit on its own)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
