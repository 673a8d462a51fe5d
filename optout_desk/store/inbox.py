"""The webhook inbox: sources (one secret URL each), the events they delivered, forwarding.

A source is a platform account that posts webhooks to `/hooks/<token>`. Only the SHA-256 of the
token is stored here; the token itself lives in the keyring (field HOOK_TOKEN under the source's
name) so the desk can show the URL again.

An event is stored once per source and platform event id (LOX24's `id`, CheckMarket's webhook
id + contact id + date); a repeated delivery adds one to `deliveries`. Every insert and every
new delivery takes the next `seq`, the cursor of the relay's pull API, so a client that pulls
"after N" also sees updated delivery counts.

Functions here run inside the caller's transaction (the receiver's event store and writer, or the
short transactions of the workflows): none of them commits.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from optout_desk.core.errors import BadInputError

SYSTEMS = ("checkmarket", "lox24")
KIND_OPTOUT = "optout"
KIND_RESUBSCRIBE = "resubscribe"
HOOK_REGISTERED = "registered"
HOOK_ACTIVE = "active"
HOOK_FAILED = "activation-failed"
PUBLIC_URL = "public_url"
API_TOKEN_HASH = "api_token_hash"
HEARTBEAT = "receiver_heartbeat"  # JSON {url, pid, at}: a receiver process is running
RELAY_ID = "relay_id"  # this database's identity as a relay (see relay_id())


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_token(token: str) -> str:
    """What is stored of a URL or API token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Source:
    id: int
    name: str
    system: str
    token_hash: str
    connection: str | None
    webhook_id: int | None
    survey_id: int | None
    hook_state: str
    hook_message: str
    created_at: str
    last_event_at: str | None


@dataclass(frozen=True)
class InboxEvent:
    """One event as parsed from a delivery (webhooks/payloads.py) or pulled from a relay."""

    source: str
    system: str
    event_id: str
    event: str
    kind: str
    id_kind: str
    identifier: str
    occurred_at: str
    phone: str = ""
    reason_id: int | None = None
    reason_label: str = ""
    free_text: str = ""
    campaign: str = ""
    user_id: int | None = None
    group_id: int | None = None
    short_link: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """What storing one delivery did: the row, its delivery count, whether it is new."""

    row_id: int
    deliveries: int

    @property
    def created(self) -> bool:
        return self.deliveries == 1


@dataclass(frozen=True)
class Entry:
    """A stored event with what the desk did with it."""

    row_id: int
    seq: int
    event: InboxEvent
    received_at: str
    last_delivery_at: str
    deliveries: int
    forwarded_to: tuple[str, ...]


# -- sources ---------------------------------------------------------------------------------


def add_source(conn: sqlite3.Connection, name: str, system: str, token_hash: str,
               connection: str | None = None) -> Source:
    from optout_desk.store.connections import validate_name

    validate_name(name)
    if system not in SYSTEMS:
        raise BadInputError(f"Unknown webhook system '{system}': use one of {', '.join(SYSTEMS)}.")
    if find_source(conn, name) is not None:
        raise BadInputError(f"An inbox source named {name!r} already exists; pick another name "
                            "or remove that one first.")
    conn.execute(
        "INSERT INTO inbox_sources (name, system, token_hash, connection, created_at) "
        "VALUES (?, ?, ?, ?, ?)", (name, system, token_hash, connection, utc_now()))
    return get_source(conn, name)


_SOURCE_COLUMNS = ("id, name, system, token_hash, connection, webhook_id, survey_id, hook_state, "
                   "hook_message, created_at, last_event_at")


def find_source(conn: sqlite3.Connection, name: str) -> Source | None:
    row = conn.execute(f"SELECT {_SOURCE_COLUMNS} FROM inbox_sources WHERE name = ?",
                       (name,)).fetchone()
    return None if row is None else Source(*row)


def get_source(conn: sqlite3.Connection, name: str) -> Source:
    source = find_source(conn, name)
    if source is None:
        raise BadInputError(f"No inbox source named {name!r}. `optout-desk inbox sources` "
                            "lists them.")
    return source


def list_sources(conn: sqlite3.Connection) -> list[Source]:
    rows = conn.execute(f"SELECT {_SOURCE_COLUMNS} FROM inbox_sources ORDER BY name")
    return [Source(*row) for row in rows]


def remove_source(conn: sqlite3.Connection, name: str) -> None:
    """Forget a source (its URL stops working). Its events stay: they are evidence."""
    get_source(conn, name)
    conn.execute("DELETE FROM inbox_sources WHERE name = ?", (name,))


def set_hook(conn: sqlite3.Connection, name: str, *, state: str, message: str = "",
             webhook_id: int | None = None, survey_id: int | None = None) -> None:
    """Record the CheckMarket webhook's state. A registration that arrives after the handshake
    already activated the same webhook does not turn it back to "registered"."""
    conn.execute(
        "UPDATE inbox_sources SET "
        "hook_state = CASE WHEN ? = 'registered' AND hook_state = 'active' "
        "  AND webhook_id IS ? THEN hook_state ELSE ? END, "
        "hook_message = CASE WHEN ? = 'registered' AND hook_state = 'active' "
        "  AND webhook_id IS ? THEN hook_message ELSE ? END, "
        "webhook_id = COALESCE(?, webhook_id), survey_id = COALESCE(?, survey_id) "
        "WHERE name = ?",
        (state, webhook_id, state, state, webhook_id, message, webhook_id, survey_id, name))


# -- events ----------------------------------------------------------------------------------


def _next_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM inbox_events").fetchone()[0])


# One event's columns in the order _UPSERT binds them after (seq, received_at): built with
# event_row() by the caller (the receiver does it on its event loop, so the writer's thread,
# which holds the write lock, only binds and steps).
EventRow = tuple[Any, ...]

_UPSERT = (
    "INSERT INTO inbox_events (seq, received_at, last_delivery_at, source, system, event_id, "
    "event, kind, id_kind, identifier, phone, occurred_at, reason_id, reason_label, free_text, "
    "campaign, user_id, group_id, short_link, details_json, deliveries) "
    "VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
    "?18, ?19, 1) "
    "ON CONFLICT (source, event_id) DO UPDATE SET deliveries = deliveries + 1, "
    "last_delivery_at = excluded.last_delivery_at, seq = excluded.seq")
# What a batch's events are now, in one row (one step of the statement, not one per event):
# [[source, event_id, id, deliveries], ...] for a JSON list of [source, event_id].
_BATCH_STATE = (
    "SELECT json_group_array(json_array(e.source, e.event_id, e.id, e.deliveries)) "
    "FROM json_each(?1) AS k JOIN inbox_events AS e "
    "ON e.source = json_extract(k.value, '$[0]') "
    "AND e.event_id = json_extract(k.value, '$[1]')")


def _details_json(details: dict[str, Any]) -> str:
    try:
        return orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson cannot write (an int past 64 bits): the standard way
        return json.dumps(details, ensure_ascii=False, sort_keys=True)


def event_row(event: InboxEvent) -> EventRow:
    """The event's columns as record_rows() binds them."""
    return (event.source, event.system, event.event_id, event.event, event.kind,
            event.id_kind, event.identifier, event.phone, event.occurred_at, event.reason_id,
            event.reason_label, event.free_text, event.campaign, event.user_id,
            event.group_id, event.short_link, _details_json(event.details))


def record_rows(conn: sqlite3.Connection, rows: Sequence[EventRow],
                received_at: str) -> list[Recorded]:
    """Store deliveries (each an event_row()) received at `received_at`, in order: a new row
    each, or one more delivery of a row already there (also when the same event comes twice
    in `rows`: the second is a duplicate of the first). One executemany inserts them all, one
    statement reads back what they did, and each source's last_event_at is set once: a batch
    of 30 costs four statements, not ninety."""
    if not rows:
        return []
    seq = _next_seq(conn)
    conn.executemany(_UPSERT, [(seq + n, received_at, *row) for n, row in enumerate(rows)])
    keys = orjson.dumps(list(dict.fromkeys((row[0], row[2]) for row in rows))).decode()
    state = {(source, event_id): (row_id, deliveries) for source, event_id, row_id, deliveries
             in orjson.loads(conn.execute(_BATCH_STATE, (keys,)).fetchone()[0])}
    # An event k times in `rows` got k deliveries here, one per occurrence, in order.
    still_to_come: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row[0], row[2])
        still_to_come[key] = still_to_come.get(key, -1) + 1
    recorded = []
    for row in rows:
        key = (row[0], row[2])
        row_id, deliveries = state[key]
        later = still_to_come[key]
        still_to_come[key] = later - 1
        recorded.append(Recorded(int(row_id), int(deliveries) - later))
    conn.executemany("UPDATE inbox_sources SET last_event_at = ? WHERE name = ?",
                     [(received_at, source) for source in sorted({row[0] for row in rows})])
    return recorded


def record(conn: sqlite3.Connection, event: InboxEvent, received_at: str) -> Recorded:
    """Store one delivery: a new row, or one more delivery of a row already there."""
    return record_rows(conn, [event_row(event)], received_at)[0]


def merge_relayed(conn: sqlite3.Connection, event: InboxEvent, received_at: str,
                  last_delivery_at: str, deliveries: int) -> bool:
    """Store an event pulled from a relay (its counts are the relay's); True when new."""
    known = conn.execute("SELECT 1 FROM inbox_events WHERE source = ? AND event_id = ?",
                         (event.source, event.event_id)).fetchone() is not None
    conn.execute(
        "INSERT INTO inbox_events (seq, source, system, event_id, event, kind, id_kind, "
        "identifier, phone, occurred_at, received_at, last_delivery_at, deliveries, reason_id, "
        "reason_label, free_text, campaign, user_id, group_id, short_link, details_json) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (source, event_id) DO UPDATE SET "
        "deliveries = MAX(deliveries, excluded.deliveries), "
        "last_delivery_at = MAX(last_delivery_at, excluded.last_delivery_at)",
        (_next_seq(conn), event.source, event.system, event.event_id, event.event, event.kind,
         event.id_kind, event.identifier, event.phone, event.occurred_at, received_at,
         last_delivery_at, deliveries, event.reason_id, event.reason_label, event.free_text,
         event.campaign, event.user_id, event.group_id, event.short_link,
         _details_json(event.details)),
    )
    return not known


_EVENT_COLUMNS = ("id, seq, source, system, event_id, event, kind, id_kind, identifier, phone, "
                  "occurred_at, received_at, last_delivery_at, deliveries, reason_id, "
                  "reason_label, free_text, campaign, user_id, group_id, short_link, "
                  "details_json")


def _entry(row: Sequence[Any], forwarded: dict[int, list[str]]) -> Entry:
    (row_id, seq, source, system, event_id, event, kind, id_kind, identifier, phone,
     occurred_at, received_at, last_delivery_at, deliveries, reason_id, reason_label,
     free_text, campaign, user_id, group_id, short_link, details_json) = row
    details = json.loads(details_json) if details_json else {}
    return Entry(
        row_id, seq,
        InboxEvent(source, system, event_id, event, kind, id_kind, identifier, occurred_at,
                   phone, reason_id, reason_label, free_text, campaign, user_id, group_id,
                   short_link, details if isinstance(details, dict) else {}),
        received_at, last_delivery_at, deliveries, tuple(forwarded.get(row_id, ())))


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """An entry as the pull API sends it (and `inbox list --output x.jsonl` writes it)."""
    e = entry.event
    return {
        "seq": entry.seq, "event_id": e.event_id, "source": e.source, "system": e.system,
        "event": e.event, "kind": e.kind, "id_kind": e.id_kind, "identifier": e.identifier,
        "phone": e.phone, "occurred_at": e.occurred_at, "received_at": entry.received_at,
        "last_delivery_at": entry.last_delivery_at, "deliveries": entry.deliveries,
        "reason_id": e.reason_id, "reason_label": e.reason_label, "free_text": e.free_text,
        "campaign": e.campaign, "user_id": e.user_id, "group_id": e.group_id,
        "short_link": e.short_link, "details": e.details,
    }


def forwarded_destinations(conn: sqlite3.Connection) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    for row_id, destination in conn.execute(
            "SELECT event_row, destination FROM inbox_forwards ORDER BY event_row, destination"):
        result.setdefault(row_id, []).append(destination)
    return result


def list_entries(conn: sqlite3.Connection, source: str | None = None,
                 rows: Iterable[int] | None = None) -> list[Entry]:
    """Entries in the order they first arrived (optionally of one source, or given rows)."""
    forwarded = forwarded_destinations(conn)
    query = f"SELECT {_EVENT_COLUMNS} FROM inbox_events"
    params: list[Any] = []
    if source is not None:
        query += " WHERE source = ?"
        params.append(source)
    if rows is not None:
        wanted = sorted(set(rows))
        if not wanted:
            return []
        query += (" AND" if params else " WHERE") + \
            f" id IN ({','.join('?' * len(wanted))})"
        params.extend(wanted)
    query += " ORDER BY id"
    return [_entry(row, forwarded) for row in conn.execute(query, params)]


def changes_after(conn: sqlite3.Connection, after: int, limit: int) -> list[Entry]:
    """Entries created or re-delivered after cursor `after`, oldest change first (pull API)."""
    rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM inbox_events WHERE seq > ? "
                        "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    return [_entry(row, {}) for row in rows]


def optout_identifiers(conn: sqlite3.Connection) -> set[str]:
    """Every identifier with an opt-out entry (a later subscribe never removes one)."""
    rows = conn.execute("SELECT identifier FROM inbox_events WHERE kind = ? "
                        "UNION SELECT phone FROM inbox_events WHERE kind = ? AND phone != ''",
                        (KIND_OPTOUT, KIND_OPTOUT))
    return {row[0] for row in rows}


def last_received_at(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT MAX(last_delivery_at) FROM inbox_events").fetchone()
    return row[0] if row else None


def count_events(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM inbox_events").fetchone()[0])


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest change cursor (0 for an empty inbox): no cursor a puller holds can be past
    it unless this is not the store it pulled from."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM inbox_events").fetchone()[0])


# -- forwarding ------------------------------------------------------------------------------


def mark_forwarded(conn: sqlite3.Connection, rows: Iterable[int], destination: str,
                   plan_id: int | None) -> int:
    now = utc_now()
    cursor = conn.executemany(
        "INSERT OR IGNORE INTO inbox_forwards (event_row, destination, plan_id, forwarded_at) "
        "VALUES (?, ?, ?, ?)", ((row, destination, plan_id, now) for row in rows))
    return int(cursor.rowcount)


def add_forward_request(conn: sqlite3.Connection, rows: Sequence[int]) -> int:
    cursor = conn.execute(
        "INSERT INTO inbox_forward_requests (created_at, event_rows) VALUES (?, ?)",
        (utc_now(), json.dumps(sorted(set(rows)))))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def pending_forward_requests(conn: sqlite3.Connection) -> list[tuple[int, list[int]]]:
    rows = conn.execute("SELECT id, event_rows FROM inbox_forward_requests WHERE settled = 0 "
                        "ORDER BY id")
    return [(request_id, [int(r) for r in json.loads(text)]) for request_id, text in rows]


def settle_forward_request(conn: sqlite3.Connection, request_id: int) -> None:
    conn.execute("UPDATE inbox_forward_requests SET settled = 1 WHERE id = ?", (request_id,))


# -- settings --------------------------------------------------------------------------------


def get_setting(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM inbox_settings WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def set_setting(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO inbox_settings (name, value) VALUES (?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))


def relay_cursor_setting(connection: str) -> str:
    """Where the desk keeps its cursor into the relay behind `connection`."""
    return f"cursor:{connection}"


def relay_id_setting(connection: str) -> str:
    """Where the desk keeps the relay_id that cursor belongs to."""
    return f"relay:{connection}"


def forget_relay(conn: sqlite3.Connection, connection: str) -> None:
    """The connection is gone: a new one of the same name pulls from the beginning."""
    conn.execute("DELETE FROM inbox_settings WHERE name IN (?, ?)",
                 (relay_cursor_setting(connection), relay_id_setting(connection)))


def relay_id(conn: sqlite3.Connection) -> str:
    """This database's identity as a relay, made the first time it is asked for. A desk that
    pulls from a relay keeps it beside its cursor: a relay whose database was replaced (a
    reinstall, another host) has another one, and the cursor means nothing there."""
    found = get_setting(conn, RELAY_ID)
    if found is None:
        conn.execute("INSERT OR IGNORE INTO inbox_settings (name, value) VALUES (?, ?)",
                     (RELAY_ID, secrets.token_hex(16)))
        found = get_setting(conn, RELAY_ID)
    assert found is not None
    return found


# -- what a submission plan did for the inbox (reads the journal's tables) -------------------


def plan_delivered_keys(conn: sqlite3.Connection, plan_id: int) -> set[str]:
    """Keys the plan's destination now has: items of acknowledged batches, and those left out
    as already on its list."""
    rows = conn.execute(
        "SELECT i.key FROM items i LEFT JOIN batches b ON b.plan_id = i.plan_id "
        "AND b.seq = i.seq WHERE i.plan_id = ? AND i.key IS NOT NULL AND "
        "((i.seq IS NOT NULL AND b.state = 'acknowledged') "
        " OR i.outcome = 'already_on_destination')", (plan_id,))
    return {row[0] for row in rows}


def plans_tagged(conn: sqlite3.Connection, tag: str) -> list[tuple[int, str, str]]:
    """(plan id, destination connection, status) of plans saved with source_file = tag."""
    rows = conn.execute(
        "SELECT id, connection, status FROM plans WHERE json_extract(plan_json, "
        "'$.source_file') = ? ORDER BY id", (tag,))
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
