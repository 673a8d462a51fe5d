"""Opening the database: WAL, foreign keys, forward migrations."""

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
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"The desk's database at {path} could not be opened ({exc}). "
            "Move it aside and start again, or restore it from a backup."
        ) from exc
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise DatabaseError(
            f"The database was written by a newer Opt-out Desk (schema {version}); "
            "update the desk to open it."
        )
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[number]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")


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
