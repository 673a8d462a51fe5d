"""Connection profiles in SQLite: round trips, name rules, removal cascading to the cache."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from optout_desk.core.errors import BadInputError
from optout_desk.core.records import OptOutRecord
from optout_desk.store import cache, connections, db
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.schema import MIGRATIONS


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "desk.sqlite3")
    yield connection
    connection.close()


def profile(name: str = "Acme EU", **changes: object) -> ConnectionProfile:
    values: dict[str, object] = {
        "name": name,
        "system": "checkmarket",
        "base_url": "https://api-eu.agileresearch.medallia.com/",
        "region": "eu",
        "settings": {"page_size": 500},
    }
    values.update(changes)
    return ConnectionProfile(**values)  # type: ignore[arg-type]


def test_add_get_round_trip(conn: sqlite3.Connection) -> None:
    added = connections.add(conn, profile())
    assert added.id is not None
    assert added.created_at.endswith("Z")
    got = connections.get(conn, "Acme EU")
    assert got == added
    assert got.settings == {"page_size": 500}


def test_list_all_sorted_case_insensitively(conn: sqlite3.Connection) -> None:
    for name in ("beta", "Alpha", "gamma"):
        connections.add(conn, profile(name))
    assert [p.name for p in connections.list_all(conn)] == ["Alpha", "beta", "gamma"]


def test_update_changes_settings_and_url(conn: sqlite3.Connection) -> None:
    connections.add(conn, profile())
    changed = profile(base_url="https://api-us.agileresearch.medallia.com/", region="us",
                      settings={"page_size": 100, "concurrency": 2})
    connections.update(conn, changed)
    got = connections.get(conn, "Acme EU")
    assert (got.region, got.base_url, got.settings) == (
        "us", "https://api-us.agileresearch.medallia.com/", {"concurrency": 2, "page_size": 100}
    )


def test_update_of_a_missing_name_is_bad_input(conn: sqlite3.Connection) -> None:
    with pytest.raises(BadInputError, match="No connection named 'ghost'"):
        connections.update(conn, profile("ghost"))


def test_get_missing_names_the_list_command(conn: sqlite3.Connection) -> None:
    with pytest.raises(BadInputError) as caught:
        connections.get(conn, "x")
    assert caught.value.message == (
        "No connection named 'x'. `optout-desk connection list` shows the ones you have."
    )
    assert caught.value.exit_code == 2


def test_duplicate_name_refused(conn: sqlite3.Connection) -> None:
    connections.add(conn, profile())
    with pytest.raises(BadInputError, match="already exists"):
        connections.add(conn, profile())


def test_names_mapping_to_the_same_environment_variable_refused(
    conn: sqlite3.Connection,
) -> None:
    connections.add(conn, profile("acme-eu"))
    with pytest.raises(BadInputError, match="environment variables would be the same"):
        connections.add(conn, profile("ACME EU"))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "needs a name"),
        ("   ", "needs a name"),
        (" padded", "start or end with spaces"),
        ("x" * 65, "at most 64"),
        ("tab\there", "control character"),
        ("line\nbreak", "control character"),
    ],
)
def test_invalid_names_refused(conn: sqlite3.Connection, name: str, why: str) -> None:
    with pytest.raises(BadInputError, match=why):
        connections.add(conn, profile(name))
    assert connections.list_all(conn) == []


def test_longest_and_unicode_names_accepted(conn: sqlite3.Connection) -> None:
    connections.add(conn, profile("x" * 64))
    connections.add(conn, profile("Zürich 2"))
    assert connections.env_name_part("Zürich 2") == "Z_RICH_2"


def test_remove_cascades_to_cache_and_sync_state(conn: sqlite3.Connection) -> None:
    kept = connections.add(conn, profile("kept"))
    gone = connections.add(conn, profile("gone"))
    record = OptOutRecord("2024-05-01T10:00:00.0000000Z", email="a@example.com", contact_id=1)
    for target in (kept, gone):
        assert target.id is not None
        cache.apply_fetch(conn, target.id, "", [record], replace=True, synced_at="now")
    connections.remove(conn, "gone")
    assert [p.name for p in connections.list_all(conn)] == ["kept"]
    assert conn.execute("SELECT COUNT(*) FROM optouts").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM sync_state").fetchone()[0] == 1
    assert gone.id is not None
    assert cache.sync_state(conn, gone.id).count == 0


def test_remove_missing_is_bad_input(conn: sqlite3.Connection) -> None:
    with pytest.raises(BadInputError, match="No connection named"):
        connections.remove(conn, "ghost")


def test_fresh_database_has_every_migration(tmp_path: Path) -> None:
    connection = db.connect(tmp_path / "fresh.sqlite3")
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"connections", "optouts", "sync_state"} <= tables
    finally:
        connection.close()
    # Opening again migrates nothing and keeps the version.
    again = db.connect(tmp_path / "fresh.sqlite3")
    assert again.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    again.close()


def test_database_from_a_newer_desk_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    db.connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    raw.close()
    with pytest.raises(db.DatabaseError, match="newer Opt-out Desk") as caught:
        db.connect(path)
    assert "update the desk" in caught.value.message
