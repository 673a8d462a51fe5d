"""The opt-out cache: replace vs incremental, dedupe, watermarks, all-or-nothing fetches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from optout_desk.core.errors import Cancelled
from optout_desk.core.records import RECORD_COLUMNS, OptOutRecord, canonical_timestamp
from optout_desk.store import cache, connections, db
from optout_desk.store.cache import SyncState
from optout_desk.store.connections import ConnectionProfile


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "desk.sqlite3")
    yield connection
    connection.close()


@pytest.fixture
def cid(conn: sqlite3.Connection) -> int:
    added = connections.add(
        conn, ConnectionProfile(name="acme", system="checkmarket", base_url="https://x/")
    )
    assert added.id is not None
    return added.id


def rec(n: int, date: str | None = None, **fields: object) -> OptOutRecord:
    when = date or f"2024-05-01T10:{n // 60:02d}:{n % 60:02d}.0000000Z"
    values: dict[str, object] = {"email": f"p{n}@example.com", "contact_id": n}
    values.update(fields)
    return OptOutRecord(when, **values)  # type: ignore[arg-type]


def test_round_trip_records_and_columns(conn: sqlite3.Connection, cid: int) -> None:
    records = [
        rec(1, first_name="Ann", last_name="Lee", lang_code="nl", survey_id=7, source="api"),
        rec(2, phone="+32470123456", contact_id=None),
    ]
    result = cache.apply_fetch(conn, cid, "", records, replace=True, synced_at="2024-05-02T00:00Z")
    assert result == cache.ApplyResult(added=2, total=2)
    assert sorted(cache.load_records(conn, cid), key=lambda r: r.email) == records
    columns = cache.load_columns(conn, cid)
    assert list(columns) == list(RECORD_COLUMNS)
    rows = sorted(zip(*columns.values(), strict=True), key=lambda row: str(row[1]))
    assert rows == [r.as_row() for r in records]


def test_empty_scope_columns(conn: sqlite3.Connection, cid: int) -> None:
    assert cache.load_columns(conn, cid) == {name: [] for name in RECORD_COLUMNS}
    assert cache.sync_state(conn, cid) == SyncState(None, None, 0)
    assert cache.load_records(conn, cid, "12") == []


def test_load_records_newest_first(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(3), rec(1), rec(2)], replace=True, synced_at="t")
    assert [r.contact_id for r in cache.load_records(conn, cid)] == [3, 2, 1]


def test_incremental_adds_and_dedupes(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1), rec(2)], replace=True, synced_at="t1")
    result = cache.apply_fetch(
        conn, cid, "", [rec(2), rec(3), rec(3), rec(4)], replace=False, synced_at="t2"
    )
    assert result == cache.ApplyResult(added=2, total=4)
    state = cache.sync_state(conn, cid)
    assert (state.count, state.last_synced_at) == (4, "t2")
    assert state.watermark == rec(4).date_opt_out


def test_duplicates_within_one_fetch_are_kept_once(conn: sqlite3.Connection, cid: int) -> None:
    same_person = rec(5, contact_id=None)
    result = cache.apply_fetch(
        conn, cid, "", [same_person, same_person, rec(5, contact_id=None, email="P5@example.com")],
        replace=True, synced_at="t",
    )
    # The identifier key ignores case, so all three are one opt-out.
    assert result == cache.ApplyResult(added=1, total=1)


def test_replace_swaps_the_scope_and_counts_only_new(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1), rec(2), rec(3)], replace=True, synced_at="t1")
    result = cache.apply_fetch(conn, cid, "", [rec(2), rec(4)], replace=True, synced_at="t2")
    assert result == cache.ApplyResult(added=1, total=2)
    assert sorted(r.contact_id or 0 for r in cache.load_records(conn, cid)) == [2, 4]
    assert cache.sync_state(conn, cid) == SyncState(rec(4).date_opt_out, "t2", 2)


def test_replace_with_nothing_empties_the_scope(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1)], replace=True, synced_at="t1")
    result = cache.apply_fetch(conn, cid, "", [], replace=True, synced_at="t2")
    assert result == cache.ApplyResult(added=0, total=0)
    assert cache.sync_state(conn, cid) == SyncState(None, "t2", 0)


def test_replace_updates_changed_fields(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1, first_name="Old")], replace=True, synced_at="t1")
    cache.apply_fetch(conn, cid, "", [rec(1, first_name="New")], replace=True, synced_at="t2")
    assert [r.first_name for r in cache.load_records(conn, cid)] == ["New"]


def test_scopes_are_independent(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1), rec(2)], replace=True, synced_at="t")
    cache.apply_fetch(conn, cid, "42", [rec(1)], replace=True, synced_at="t")
    cache.apply_fetch(conn, cid, "7", [rec(3)], replace=True, synced_at="t")
    cache.apply_fetch(conn, cid, "42", [], replace=True, synced_at="t")
    assert cache.scopes(conn, cid) == ["", "7", "42"]
    assert cache.sync_state(conn, cid, "").count == 2
    assert cache.sync_state(conn, cid, "42").count == 0
    assert [r.contact_id for r in cache.load_records(conn, cid, "7")] == [3]


def test_watermark_orders_mixed_fractional_digits(conn: sqlite3.Connection, cid: int) -> None:
    # As text, "…:00.9Z" > "…:00.12345Z" is right but "…:00Z" vs "…:00.5Z" and offsets are not;
    # canonical form makes text order equal time order.
    raw = [
        "2024-05-01T10:00:00.9Z",
        "2024-05-01T10:00:00.1234567Z",
        "2024-05-01T10:00:01Z",          # the newest
        "2024-05-01T12:00:00.5+03:00",   # 09:00:00.5 UTC
    ]
    records = [rec(i, date=date) for i, date in enumerate(raw)]
    cache.apply_fetch(conn, cid, "", records, replace=True, synced_at="t")
    state = cache.sync_state(conn, cid)
    assert state.watermark == canonical_timestamp("2024-05-01T10:00:01Z")
    assert state.watermark == "2024-05-01T10:00:01.0000000Z"
    stored = sorted(cache.load_columns(conn, cid)["DateOptOut"])
    assert stored == sorted(canonical_timestamp(d) for d in raw)
    # An incremental fetch with only older rows never moves the watermark back.
    cache.apply_fetch(conn, cid, "", [rec(9, date="2024-05-01T10:00:00.99Z")], replace=False,
                      synced_at="t2")
    assert cache.sync_state(conn, cid).watermark == "2024-05-01T10:00:01.0000000Z"
    cache.apply_fetch(conn, cid, "", [rec(10, date="2024-05-01T10:00:01.0000001Z")],
                      replace=False, synced_at="t3")
    assert cache.sync_state(conn, cid).watermark == "2024-05-01T10:00:01.0000001Z"


def test_incremental_since_subtracts_the_overlap() -> None:
    assert cache.incremental_since(SyncState(None, None, 0)) is None
    state = SyncState("2024-05-01T00:05:00.1234567Z", "t", 3)
    assert cache.incremental_since(state) == "2024-04-30T23:55:00.1234567Z"
    assert cache.INCREMENTAL_OVERLAP.total_seconds() == 600


def test_incremental_overlap_refetch_adds_nothing(conn: sqlite3.Connection, cid: int) -> None:
    first = [rec(1), rec(2, date="2024-05-01T10:00:02.0000000Z"),
             rec(3, date="2024-05-01T10:00:02.0000000Z")]
    cache.apply_fetch(conn, cid, "", first, replace=True, synced_at="t1")
    since = cache.incremental_since(cache.sync_state(conn, cid))
    assert since is not None
    # The platform answers with everything at or after `since`: the old rows again + one new
    # opt-out that shares the watermark's timestamp.
    again = [r for r in first if r.date_opt_out >= since]
    late = rec(4, date="2024-05-01T10:00:02.0000000Z")
    result = cache.apply_fetch(conn, cid, "", [*again, late], replace=False, synced_at="t2")
    assert result == cache.ApplyResult(added=1, total=4)


def failing(records: Iterable[OptOutRecord], after: int, error: BaseException) -> Iterator[
        OptOutRecord]:
    for index, record in enumerate(records):
        if index == after:
            raise error
        yield record


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("error", [RuntimeError("network died"), Cancelled()])
def test_exception_mid_insert_leaves_previous_list_intact(
    conn: sqlite3.Connection, cid: int, replace: bool, error: BaseException
) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1), rec(2)], replace=True, synced_at="t1")
    before = (cache.load_records(conn, cid), cache.sync_state(conn, cid))
    incoming = [rec(n) for n in range(3, 50)]
    with pytest.raises(type(error)):
        cache.apply_fetch(conn, cid, "", failing(incoming, 20, error), replace=replace,
                          synced_at="t2")
    assert (cache.load_records(conn, cid), cache.sync_state(conn, cid)) == before
    assert not conn.in_transaction
    # And the connection is usable for the next fetch.
    assert cache.apply_fetch(conn, cid, "", incoming, replace=False, synced_at="t3").added == 47


def test_failed_first_fetch_leaves_nothing(conn: sqlite3.Connection, cid: int) -> None:
    with pytest.raises(ValueError, match="not an ISO-8601"):
        cache.apply_fetch(conn, cid, "", [rec(1), rec(2, date="yesterday")], replace=True,
                          synced_at="t")
    assert cache.sync_state(conn, cid) == SyncState(None, None, 0)
    assert cache.scopes(conn, cid) == []


def test_clear_forgets_every_scope(conn: sqlite3.Connection, cid: int) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1)], replace=True, synced_at="t")
    cache.apply_fetch(conn, cid, "3", [rec(1)], replace=True, synced_at="t")
    cache.clear(conn, cid)
    assert cache.scopes(conn, cid) == []
    assert conn.execute("SELECT COUNT(*) FROM optouts").fetchone()[0] == 0


def test_columns_survive_awkward_text(conn: sqlite3.Connection, cid: int) -> None:
    awkward = [
        rec(1, first_name='Zoë "the" \\ Ünïcödé 😀', last_name="line\nbreak\ttab\x00nul",
            contact_id=2**53 + 1, survey_id=None),
        rec(2, email="", phone="+32470123456", contact_id=None, survey_id=-1),
    ]
    cache.apply_fetch(conn, cid, "", awkward, replace=True, synced_at="t")
    by_json = cache.load_columns(conn, cid)
    assert by_json == cache.load_columns_by_rows(conn, cid)
    assert set(by_json["FirstName"]) == {'Zoë "the" \\ Ünïcödé 😀', ""}
    assert 2**53 + 1 in by_json["ContactId"]


def test_columns_fall_back_when_sqlite_string_limit_is_hit(
    conn: sqlite3.Connection, cid: int
) -> None:
    records = [rec(n) for n in range(200)]
    cache.apply_fetch(conn, cid, "", records, replace=True, synced_at="t")
    expected = cache.load_columns(conn, cid)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)  # smaller than one JSON column
    with pytest.raises(sqlite3.DataError):
        conn.execute(cache._COLUMNS_AS_JSON, (cid, "")).fetchone()
    assert cache.load_columns(conn, cid) == expected


# -- one record per person (issue 9) ---------------------------------------------------------

BATCH = "2024-06-01T08:00:00.0000000Z"


def test_people_with_contact_id_zero_and_one_timestamp_stay_apart(
    conn: sqlite3.Connection, cid: int
) -> None:
    """The issue's case: a platform lists 100 POSTed opt-outs with ContactId 0 and the batch's
    one timestamp; the ContactId + DateOptOut key kept 1 of them."""
    batch = [rec(n, date=BATCH, contact_id=0) for n in range(100)]
    result = cache.apply_fetch(conn, cid, "", [rec(900), *batch], replace=True, synced_at="t")
    assert result == cache.ApplyResult(added=101, total=101)
    again = cache.apply_fetch(conn, cid, "", batch, replace=False, synced_at="t2")
    assert again == cache.ApplyResult(added=0, total=101)


def test_a_person_keeps_their_earliest_opt_out(conn: sqlite3.Connection, cid: int) -> None:
    early, late = "2024-05-01T08:00:00.0000000Z", "2024-05-09T08:00:00.0000000Z"
    # One fetch listing the person twice, in either order: the earliest is kept.
    for order in ([rec(1, date=late), rec(1, date=early, contact_id=99)],
                  [rec(1, date=early, contact_id=99), rec(1, date=late)]):
        cache.apply_fetch(conn, cid, "", order, replace=True, synced_at="t")
        assert [(r.date_opt_out, r.contact_id) for r in cache.load_records(conn, cid)] == [
            (early, 99)]
    # Incremental: a later opt-out of a cached person adds nothing; an earlier one replaces it.
    assert cache.apply_fetch(conn, cid, "", [rec(1, date="2024-05-20T08:00:00.0000000Z")],
                             replace=False, synced_at="t2").added == 0
    earliest = "2024-04-01T08:00:00.0000000Z"
    assert cache.apply_fetch(conn, cid, "", [rec(1, date=earliest, contact_id=5)],
                             replace=False, synced_at="t3") == cache.ApplyResult(0, 1)
    assert [(r.date_opt_out, r.contact_id) for r in cache.load_records(conn, cid)] == [
        (earliest, 5)]


def test_a_full_fetch_takes_the_platforms_date_even_when_later(
    conn: sqlite3.Connection, cid: int
) -> None:
    cache.apply_fetch(conn, cid, "", [rec(1, date="2024-05-01T08:00:00.0000000Z")],
                      replace=True, synced_at="t1")
    cache.apply_fetch(conn, cid, "", [rec(1, date="2024-05-03T08:00:00.0000000Z")],
                      replace=True, synced_at="t2")
    assert [r.date_opt_out for r in cache.load_records(conn, cid)] == [
        "2024-05-03T08:00:00.0000000Z"]


def old_database(path: Path) -> sqlite3.Connection:
    """A database as the desk left it before the one-per-person keys: ContactId+DateOptOut
    keys, and the issue's loss already in it (11 people of a ContactId-0 batch cached as
    1 + 10)."""
    from optout_desk.store.schema import MIGRATIONS

    # Every migration before the one that added record_keys (wherever the list numbers it).
    before = next(i for i, script in enumerate(MIGRATIONS) if "record_keys" in script)
    raw = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:before]:
        raw.executescript(script)
    raw.execute(f"PRAGMA user_version = {before}")
    raw.execute("INSERT INTO connections (id, name, system, base_url, created_at) "
                "VALUES (1, 'acme', 'checkmarket', 'https://x/', 't')")
    for n in range(10):
        r = rec(n)
        raw.execute(f"INSERT INTO optouts (connection_id, scope, record_key, {cache._DATA_COLUMNS})"
                    " VALUES (1, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"c:{n}|{r.date_opt_out}", *r))
    survivor = rec(100, date=BATCH, contact_id=0)
    raw.execute(f"INSERT INTO optouts (connection_id, scope, record_key, {cache._DATA_COLUMNS})"
                " VALUES (1, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (f"c:0|{BATCH}", *survivor))
    raw.execute("INSERT INTO sync_state (connection_id, scope, watermark, last_synced_at, "
                "record_count) VALUES (1, '', ?, 't0', 11)", (BATCH,))
    raw.close()
    return db.connect(path)


def test_migration_4_rekeys_old_lists_and_asks_for_a_full_fetch(tmp_path: Path) -> None:
    from optout_desk.store.schema import MIGRATIONS

    conn = old_database(tmp_path / "old.sqlite3")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        state = cache.sync_state(conn, 1)
        assert (state.count, state.needs_full_fetch) == (11, True)
        # An incremental fetch after upgrading: the people already cached are not counted
        # again (their old keys are recomputed), and the list still wants a full fetch.
        overlap = [rec(9), rec(100, date=BATCH, contact_id=0), rec(101, date=BATCH, contact_id=0)]
        result = cache.apply_fetch(conn, 1, "", overlap, replace=False, synced_at="t1")
        assert result == cache.ApplyResult(added=1, total=12)
        assert cache.sync_state(conn, 1).needs_full_fetch
        keys = {row[0] for row in conn.execute("SELECT record_key FROM optouts")}
        assert all(key.startswith("p:") for key in keys)
        full = [rec(n) for n in range(10)] + [rec(n, date=BATCH, contact_id=0)
                                              for n in range(100, 200)]
        result = cache.apply_fetch(conn, 1, "", full, replace=True, synced_at="t2")
        assert result == cache.ApplyResult(added=98, total=110)
        assert not cache.sync_state(conn, 1).needs_full_fetch
    finally:
        conn.close()
