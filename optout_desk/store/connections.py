"""Connection profiles: which platform, where, with which settings — never the secrets.

The keys live in the OS keyring (see `optout_desk.secrets`), addressed by the connection's name.
The name also becomes part of environment variable names (OPTOUT_DESK_SECRET_<NAME>_KEY), so it
is validated here and two names that would map to the same variable are refused.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from optout_desk.core.errors import BadInputError

MAX_NAME_LENGTH = 64

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


@dataclass
class ConnectionProfile:
    """A platform connection as stored: everything except the secrets."""

    name: str
    system: str
    base_url: str
    region: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: str = ""


def env_name_part(name: str) -> str:
    """The connection name as it appears in environment variable names."""
    return _NOT_ALNUM.sub("_", name.upper())


def validate_name(name: str) -> str:
    """Return the name if it can be used, else raise BadInputError saying why."""
    if not name or not name.strip():
        raise BadInputError("A connection needs a name.")
    if name != name.strip():
        raise BadInputError("A connection name cannot start or end with spaces.")
    if len(name) > MAX_NAME_LENGTH:
        raise BadInputError(
            f"The connection name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}."
        )
    if not name.isprintable():
        raise BadInputError(
            "The connection name contains a control character (a tab or line break); "
            "use letters, digits, spaces, '-' or '_'."
        )
    return name


def add(conn: sqlite3.Connection, profile: ConnectionProfile) -> ConnectionProfile:
    """Store a new profile; returns it with `id` and `created_at` filled in."""
    validate_name(profile.name)
    existing = list_all(conn)
    for other in existing:
        if other.name == profile.name:
            raise BadInputError(
                f"A connection named {profile.name!r} already exists; pick another name "
                "or edit that one."
            )
        if env_name_part(other.name) == env_name_part(profile.name):
            raise BadInputError(
                f"The name {profile.name!r} is too close to the existing connection "
                f"{other.name!r} (their environment variables would be the same); "
                "pick another name."
            )
    created_at = profile.created_at or _now()
    cursor = conn.execute(
        "INSERT INTO connections (name, system, region, base_url, settings_json, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            profile.name,
            profile.system,
            profile.region,
            profile.base_url,
            json.dumps(profile.settings, sort_keys=True),
            created_at,
        ),
    )
    return ConnectionProfile(
        name=profile.name,
        system=profile.system,
        base_url=profile.base_url,
        region=profile.region,
        settings=dict(profile.settings),
        id=cursor.lastrowid,
        created_at=created_at,
    )


def get(conn: sqlite3.Connection, name: str) -> ConnectionProfile:
    row = conn.execute(f"SELECT {_COLUMNS} FROM connections WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise BadInputError(
            f"No connection named {name!r}. `optout-desk connection list` shows the ones you have."
        )
    return _profile(row)


def get_by_id(conn: sqlite3.Connection, connection_id: int) -> ConnectionProfile | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM connections WHERE id = ?", (connection_id,)
    ).fetchone()
    return None if row is None else _profile(row)


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM connections WHERE name = ?", (name,)).fetchone() is not None


def list_all(conn: sqlite3.Connection) -> list[ConnectionProfile]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM connections ORDER BY name COLLATE NOCASE")
    return [_profile(row) for row in rows]


def update(conn: sqlite3.Connection, profile: ConnectionProfile) -> None:
    """Save system, region, base URL and settings of an existing profile (found by name).

    Renaming is not offered: the secrets in the keyring are filed under the name.
    """
    cursor = conn.execute(
        "UPDATE connections SET system = ?, region = ?, base_url = ?, settings_json = ? "
        "WHERE name = ?",
        (
            profile.system,
            profile.region,
            profile.base_url,
            json.dumps(profile.settings, sort_keys=True),
            profile.name,
        ),
    )
    if cursor.rowcount == 0:
        get(conn, profile.name)  # raises the "No connection named" error


def remove(conn: sqlite3.Connection, name: str) -> None:
    """Delete the profile; its cached opt-outs and sync state go with it (ON DELETE CASCADE)."""
    profile = get(conn, name)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Explicit deletes first: they do not depend on foreign keys being switched on.
        conn.execute("DELETE FROM optouts WHERE connection_id = ?", (profile.id,))
        conn.execute("DELETE FROM sync_state WHERE connection_id = ?", (profile.id,))
        conn.execute("DELETE FROM lookup_answers WHERE connection_id = ?", (profile.id,))
        conn.execute("DELETE FROM connections WHERE id = ?", (profile.id,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_COLUMNS = "id, name, system, region, base_url, settings_json, created_at"


def _profile(row: tuple[Any, ...]) -> ConnectionProfile:
    connection_id, name, system, region, base_url, settings_json, created_at = row
    settings = json.loads(settings_json) if settings_json else {}
    return ConnectionProfile(
        name=name,
        system=system,
        base_url=base_url,
        region=region,
        settings=settings if isinstance(settings, dict) else {},
        id=connection_id,
        created_at=created_at,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
