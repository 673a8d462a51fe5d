"""The webhook inbox as the operator uses it: sources, the CheckMarket handshake, listing and
export, forwarding to destinations, and pulling from a relay.

- A source gets a long random URL token (256 bits). The token goes to the keyring (field
  HOOK_TOKEN under the source's name) so the URL can be shown again; the database keeps only
  its SHA-256. Without a keyring (`keep_token=False`) the URL is shown once and never again.
- CheckMarket: `register_hook` creates the webhook (POST 3/hooks) for the source's URL. The
  receiver answers the Webhook.Created handshake and then calls `activate_from_handshake` on a
  worker thread, which activates the webhook at once with the X-Hook-Key and the connection's
  keys. Doing it in the receiver means nobody has to be at the desk when CheckMarket calls,
  and the key is used seconds after it arrives and then dropped. When that fails (the
  connection's keys are not on the receiver's host, CheckMarket refused), the key is kept in
  the keyring (field HOOK_KEY) only until `activate_source` uses it, then deleted.
- A resubscribe (LOX24 phone.subscribe) is listed for a person to decide about; it is never
  forwarded and never lifts an opt-out.
- Forwarding builds a submission plan of the new opt-outs (workflows.submit: preview, journal,
  receipt as always) and marks each entry forwarded to that destination once its batch was
  acknowledged (or the destination already had it).
"""

from __future__ import annotations

import itertools
import logging
import secrets as random_tokens
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from optout_desk import secrets as secret_store
from optout_desk.connectors import registry
from optout_desk.connectors.checkmarket_hooks import CheckMarketHooks, Webhook
from optout_desk.core.errors import BadInputError, DeskError
from optout_desk.core.identifiers import Identifier, IdKind
from optout_desk.core.plan import Plan, PlanInput
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.records import STORABLE_INTEGERS
from optout_desk.store import connections, inbox
from optout_desk.store.db import connect
from optout_desk.store.inbox import Entry, InboxEvent, Source

if TYPE_CHECKING:  # the relay's client (httpx) is imported only when a relay is pulled
    from optout_desk.connectors.inbox_relay import RelayPage

log = logging.getLogger(__name__)

HOOK_TOKEN = "HOOK_TOKEN"
HOOK_KEY = "HOOK_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:8787"
EXPORT_SUFFIXES = (".csv", ".xlsx", ".jsonl")
COLUMNS = ("event_id", "source", "system", "event", "kind", "identifier", "id_kind", "phone",
           "occurred_at", "received_at", "deliveries", "reason_id", "reason_label",
           "free_text", "campaign", "user_id", "group_id", "short_link", "status")
STATUS_NEW = "new"
STATUS_DECIDE = "resubscribe: decide"
STATUS_SUBSCRIBE = "subscribe (no opt-out known)"
FORWARD_TAG = "Inbox forward #"


def _db() -> sqlite3.Connection:
    return connect()


def _transaction(work: Callable[[sqlite3.Connection], Any]) -> Any:
    db = _db()
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result
    finally:
        db.close()


# -- sources ---------------------------------------------------------------------------------


def new_token() -> str:
    return random_tokens.token_urlsafe(32)


def add_source(name: str, system: str, *, connection: str | None = None,
               keep_token: bool = True, session_only: bool = False) -> tuple[Source, str]:
    """Create a source; returns it and its URL token (show it to the operator, log it never)."""
    if system not in inbox.SYSTEMS:
        raise BadInputError(f"Unknown webhook system '{system}': use checkmarket or lox24.")
    if connection is not None:
        if system != "checkmarket":
            raise BadInputError("--connection is for CheckMarket sources (the connection "
                                "that registers and activates the webhook).")
        profile = _get_connection(connection)
        if profile.system != "checkmarket":
            raise BadInputError(f"The connection {connection!r} is not a CheckMarket one.")
    db = _db()
    try:
        connections.validate_name(name)
        if inbox.find_source(db, name) is not None:
            raise BadInputError(f"An inbox source named {name!r} already exists; pick another "
                                "name or remove that one first.")
    finally:
        db.close()
    token = new_token()
    if keep_token:
        secret_store.store_secret(name, HOOK_TOKEN, token, session_only=session_only)
    try:
        source = _transaction(lambda db: inbox.add_source(db, name, system,
                                                          inbox.hash_token(token), connection))
    except BaseException:
        if keep_token:
            secret_store.delete_secrets(name, [HOOK_TOKEN])
        raise
    log.info("added inbox source %s (%s)", name, system)
    return source, token


def hook_url(token: str, base_url: str | None = None) -> str:
    return f"{(base_url or public_base_url()).rstrip('/')}/hooks/{token}"


def source_url(name: str, base_url: str | None = None) -> str:
    """The source's webhook URL, its token read from the keyring."""
    get_source(name)
    try:
        token = secret_store.read_secret(name, HOOK_TOKEN)
    except secret_store.MissingSecretError:
        raise BadInputError(f"The URL of {name!r} was shown once when it was added and is not "
                            "kept; remove the source and add it again for a new one.") from None
    return hook_url(token, base_url)


def get_source(name: str) -> Source:
    db = _db()
    try:
        return inbox.get_source(db, name)
    finally:
        db.close()


def list_sources() -> list[Source]:
    db = _db()
    try:
        return inbox.list_sources(db)
    finally:
        db.close()


def remove_source(name: str) -> Source:
    """Forget a source and its token; its URL answers 404 from then on. Its entries stay."""
    source = get_source(name)
    secret_store.delete_secrets(name, [HOOK_TOKEN, HOOK_KEY])
    _transaction(lambda db: inbox.remove_source(db, name))
    log.info("removed inbox source %s", name)
    return source


def public_base_url() -> str:
    db = _db()
    try:
        return inbox.get_setting(db, inbox.PUBLIC_URL) or DEFAULT_BASE_URL
    finally:
        db.close()


def set_public_base_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise BadInputError(f"'{url}' is not a usable public URL: give e.g. "
                            "https://hooks.example.com (no query).")
    clean = url.strip().rstrip("/")
    _transaction(lambda db: inbox.set_setting(db, inbox.PUBLIC_URL, clean))
    return clean


def new_api_token() -> str:
    """A new bearer token for the pull API (replaces the old one); only its hash is kept."""
    token = new_token()
    _transaction(lambda db: inbox.set_setting(db, inbox.API_TOKEN_HASH, inbox.hash_token(token)))
    log.info("a new pull API token was made")
    return token


def receiver_heartbeat(max_age_s: float = 45.0) -> dict[str, Any] | None:
    """The receiver process writing to this database, if one beat recently."""
    import json

    db = _db()
    try:
        text = inbox.get_setting(db, inbox.HEARTBEAT)
    finally:
        db.close()
    try:
        beat = json.loads(text or "{}")
    except ValueError:
        return None
    at = beat.get("at") if isinstance(beat, dict) else None
    if not isinstance(at, int | float) or time.time() - at > max_age_s:
        return None
    return beat if isinstance(beat, dict) else None


# -- CheckMarket webhooks --------------------------------------------------------------------


def _get_connection(name: str) -> connections.ConnectionProfile:
    db = _db()
    try:
        return connections.get(db, name)
    finally:
        db.close()


def hooks_client(connection: str) -> CheckMarketHooks:
    profile = _get_connection(connection)
    if profile.system != "checkmarket":
        raise BadInputError(f"The connection {connection!r} is not a CheckMarket one.")
    info = registry.system_info(profile.system)
    keys = secret_store.read_secrets(connection, info.secret_fields)
    timeout = float(profile.settings.get("timeout_s", 30.0))
    return CheckMarketHooks(profile.base_url, keys["MASTER_KEY"], keys["KEY"], timeout_s=timeout)


@dataclass(frozen=True)
class Registration:
    source: Source
    webhook: Webhook
    target_url: str
    created_source: bool
    token: str | None  # only when the source was created here (shown once by the CLI)


def register_hook(name: str, connection: str, base_url: str, *, survey_id: int | None = None,
                  open_hooks: Callable[[str], CheckMarketHooks] | None = None) -> Registration:
    """Create the CheckMarket webhook for source `name` (created when missing) at
    `base_url` + /hooks/<token>; the receiver must be reachable there for the handshake."""
    db = _db()
    try:
        existing = inbox.find_source(db, name)
    finally:
        db.close()
    token: str | None = None
    if existing is None:
        _source, token = add_source(name, "checkmarket", connection=connection)
        target = hook_url(token, base_url)
    else:
        if existing.system != "checkmarket":
            raise BadInputError(f"The source {name!r} is a {existing.system} source; "
                                "register a CheckMarket one.")
        target = source_url(name, base_url)
        if existing.connection != connection:
            _get_connection(connection)
            _transaction(lambda db: db.execute(
                "UPDATE inbox_sources SET connection = ? WHERE name = ?", (connection, name)))
    hooks = (open_hooks or hooks_client)(connection)
    webhook = hooks.create(target, survey_id=survey_id)
    _transaction(lambda db: inbox.set_hook(
        db, name, state=inbox.HOOK_REGISTERED, webhook_id=webhook.webhook_id,
        survey_id=survey_id, message="Registered; waiting for CheckMarket's Webhook.Created."))
    log.info("registered CheckMarket webhook %d for source %s", webhook.webhook_id, name)
    return Registration(get_source(name), webhook, target, existing is None, token)


def wait_for_activation(name: str, timeout_s: float = 20.0,
                        cancel: CancelToken = NEVER_CANCELLED) -> Source:
    """The source once its webhook is active or failed, or as it is after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        source = get_source(name)
        if source.hook_state in (inbox.HOOK_ACTIVE, inbox.HOOK_FAILED) or \
                time.monotonic() > deadline:
            return source
        if cancel.wait(0.1):
            return source


def activate_from_handshake(source: Source, handshake: Any) -> tuple[str, str]:
    """Called by the receiver after it acknowledged Webhook.Created: activate right away.
    Returns (hook state, message) for the source; never raises for an expected failure."""
    if source.connection is None:
        return _keep_key(source, handshake, "The source has no CheckMarket connection to "
                         "activate with")
    try:
        hooks_client(source.connection).activate(handshake.webhook_id, handshake.hook_key)
    except DeskError as exc:
        log.info("source %s: activation failed: %s", source.name, type(exc).__name__)
        return _keep_key(source, handshake, f"Activation failed: {exc.message}")
    return inbox.HOOK_ACTIVE, f"Active (webhook {handshake.webhook_id})."


def _keep_key(source: Source, handshake: Any, why: str) -> tuple[str, str]:
    try:
        secret_store.store_secret(source.name, HOOK_KEY, handshake.hook_key)
    except DeskError:
        return inbox.HOOK_FAILED, (f"{why.rstrip('.')}. The hook key could not be kept (no "
                                   "keyring here): register the webhook again.")
    return inbox.HOOK_FAILED, (f"{why.rstrip('.')}. Retry with `optout-desk inbox activate "
                               f"{source.name}`.")


def activate_source(name: str, connection: str | None = None) -> Source:
    """Activate a webhook whose automatic activation failed, with the kept hook key."""
    source = get_source(name)
    conn_name = connection or source.connection
    if conn_name is None:
        raise BadInputError(f"Say which CheckMarket connection activates {name!r} "
                            "(--connection).")
    if source.webhook_id is None:
        raise BadInputError(f"{name!r} has no CheckMarket webhook yet: run `optout-desk inbox "
                            "register` first.")
    try:
        key = secret_store.read_secret(name, HOOK_KEY)
    except secret_store.MissingSecretError:
        raise BadInputError(f"No hook key is kept for {name!r} (it arrives with CheckMarket's "
                            "Webhook.Created): register the webhook again.") from None
    hooks_client(conn_name).activate(source.webhook_id, key)
    secret_store.delete_secrets(name, [HOOK_KEY])
    webhook_id = source.webhook_id
    _transaction(lambda db: inbox.set_hook(db, name, state=inbox.HOOK_ACTIVE,
                                           message=f"Active (webhook {webhook_id}).",
                                           webhook_id=webhook_id))
    return get_source(name)


# -- listing and export ----------------------------------------------------------------------


def load_entries(source: str | None = None) -> tuple[list[Entry], set[str]]:
    """Every entry (of one source), and the identifiers that have an opt-out entry."""
    db = _db()
    try:
        if source is not None and inbox.find_source(db, source) is None and \
                not _has_entries(db, source):
            inbox.get_source(db, source)  # "No inbox source named …"
        return inbox.list_entries(db, source), inbox.optout_identifiers(db)
    finally:
        db.close()


def _has_entries(db: sqlite3.Connection, source: str) -> bool:
    return db.execute("SELECT 1 FROM inbox_events WHERE source = ? LIMIT 1",
                      (source,)).fetchone() is not None


def status_of(entry: Entry, optout_ids: set[str]) -> str:
    if entry.event.kind == inbox.KIND_RESUBSCRIBE:
        return STATUS_DECIDE if entry.event.identifier in optout_ids else STATUS_SUBSCRIBE
    if entry.forwarded_to:
        return "forwarded to " + ", ".join(entry.forwarded_to)
    return STATUS_NEW


def entry_row(entry: Entry, optout_ids: set[str]) -> tuple[Any, ...]:
    e = entry.event
    return (e.event_id, e.source, e.system, e.event, e.kind, e.identifier, e.id_kind, e.phone,
            e.occurred_at, entry.received_at, entry.deliveries, e.reason_id, e.reason_label,
            e.free_text, e.campaign, e.user_id, e.group_id, e.short_link,
            status_of(entry, optout_ids))


def export_entries(path: Path, source: str | None = None) -> int:
    """Write the entries to .csv, .xlsx (formula-safe) or .jsonl (one object per event)."""
    from optout_desk.files.export import export_rows, write_jsonl

    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise BadInputError(f"Cannot write {path.name}: the output must end in .csv, .xlsx "
                            "or .jsonl.")
    entries, optout_ids = load_entries(source)
    if suffix == ".jsonl":
        return write_jsonl(path, ({**inbox.entry_to_json(entry),
                                   "status": status_of(entry, optout_ids)}
                                  for entry in entries))
    return export_rows(path, COLUMNS, (entry_row(entry, optout_ids) for entry in entries),
                       sheet_name="Inbox")


# -- forwarding ------------------------------------------------------------------------------


def forward_candidates(entries: Sequence[Entry], destination: str | None = None) -> list[Entry]:
    """Opt-outs not yet forwarded (to `destination`, or to anywhere). Never a resubscribe."""
    return [entry for entry in entries if entry.event.kind == inbox.KIND_OPTOUT and (
        destination not in entry.forwarded_to if destination else not entry.forwarded_to)]


def plan_inputs(entries: Sequence[Entry]) -> list[PlanInput]:
    """Each entry's identifiers as submission inputs (its row number: the inbox row)."""
    inputs: list[PlanInput] = []
    for entry in entries:
        e = entry.event
        kind = IdKind.EMAIL if e.id_kind == "email" else IdKind.PHONE
        basis = f"inbox, {e.system} {e.event}"
        inputs.append(PlanInput(Identifier(kind, e.identifier, e.identifier, basis=basis),
                                f"inbox {e.source}", entry.row_id))
        if e.phone:
            inputs.append(PlanInput(Identifier(IdKind.PHONE, e.phone, e.phone, basis=basis),
                                    f"inbox {e.source}", entry.row_id))
    return inputs


def mark_delivered(plan_id: int, destination: str, rows: Sequence[int]) -> int:
    """Mark the entries (of `rows`) whose identifiers the plan delivered; returns how many."""
    def work(db: sqlite3.Connection) -> int:
        keys = inbox.plan_delivered_keys(db, plan_id)
        done = [entry.row_id for entry in inbox.list_entries(db, rows=rows)
                if entry.event.identifier in keys or (entry.event.phone and
                                                      entry.event.phone in keys)]
        return inbox.mark_forwarded(db, done, destination, plan_id)

    marked = int(_transaction(work))
    log.info("plan %d: %d inbox entries marked forwarded to %s", plan_id, marked, destination)
    return marked


@dataclass(frozen=True)
class ForwardOutcome:
    destination: str
    candidates: int
    plan: Plan | None
    submitted: Any  # workflows.submit.SubmitOutcome, or None when nothing was sent
    marked: int


def forward_entries(destination: str, *, source: str | None = None,
                    rows: Sequence[int] | None = None,
                    confirm: Callable[[Plan], bool] = lambda _plan: True,
                    progress: ProgressCallback = no_progress,
                    cancel: CancelToken = NEVER_CANCELLED,
                    receipt: Path | None = None,
                    open_client: Callable[[str], Any] | None = None) -> ForwardOutcome:
    """Submit the new opt-outs (of a source, or given rows) to `destination`, exactly as
    previewed (`confirm(plan)` sees the plan first), and mark each entry forwarded there."""
    from optout_desk.workflows import submit

    entries, _ = load_entries(source)
    if rows is not None:
        wanted = set(rows)
        entries = [entry for entry in entries if entry.row_id in wanted]
    todo = forward_candidates(entries, destination)
    if not todo:
        return ForwardOutcome(destination, 0, None, None, 0)
    plan = submit.prepare_plan(destination, plan_inputs(todo))
    todo_rows = [entry.row_id for entry in todo]
    if not plan.batches:  # everything is on the destination already
        return ForwardOutcome(destination, len(todo), plan, None,
                              _mark_left_out(plan, destination, todo))
    if not confirm(plan):
        return ForwardOutcome(destination, len(todo), plan, None, 0)
    plan_id = submit.save_plan(plan, source_file=f"inbox ({len(todo)} opt-outs)")
    outcome = submit.execute_plan(plan_id, progress=progress, cancel=cancel, receipt=receipt,
                                  open_client=open_client)
    return ForwardOutcome(destination, len(todo), plan, outcome,
                          mark_delivered(plan_id, destination, todo_rows))


def _mark_left_out(plan: Plan, destination: str, todo: Sequence[Entry]) -> int:
    """Nothing to send: mark the entries the destination already lists."""
    already = {item.key for item in plan.left_out if str(item.reason) == "already_on_destination"}
    done = [e.row_id for e in todo if e.event.identifier in already or
            (e.event.phone and e.event.phone in already)]
    return int(_transaction(lambda db: inbox.mark_forwarded(db, done, destination, None)))


def request_forward(rows: Sequence[int]) -> tuple[str, list[PlanInput]]:
    """For the desktop: the inputs to hand to the Submit page and the origin tag its plan is
    journaled with (its source_file), by which `settle_forward_requests` finds it later."""
    entries, _ = load_entries()
    wanted = set(rows)
    todo = forward_candidates([entry for entry in entries if entry.row_id in wanted])
    if not todo:
        raise BadInputError("No new opt-outs to forward: they were forwarded already, or "
                            "they are resubscribes (those are for a person to decide about).")
    request_id = _transaction(lambda db: inbox.add_forward_request(
        db, [entry.row_id for entry in todo]))
    return f"{FORWARD_TAG}{request_id}", plan_inputs(todo)


def settle_forward_requests() -> int:
    """Mark the entries of every finished plan that came from the Inbox; returns how many
    entries were newly marked. A request is settled once a plan of it completed (or all its
    plans were discarded)."""
    db = _db()
    try:
        pending = inbox.pending_forward_requests(db)
        tagged = {request_id: inbox.plans_tagged(db, f"{FORWARD_TAG}{request_id}")
                  for request_id, _rows in pending}
    finally:
        db.close()
    marked = 0
    for request_id, rows in pending:
        plans = tagged[request_id]
        for plan_id, destination, status in plans:
            if status in ("completed", "failed", "discarded"):  # not while pending/running
                marked += mark_delivered(plan_id, destination, rows)
        if any(s == "completed" for _, _, s in plans) or (
                plans and all(s == "discarded" for _, _, s in plans)):
            _settle(request_id)
    return marked


def _settle(request_id: int) -> None:
    _transaction(lambda db: inbox.settle_forward_request(db, request_id))


# -- relays ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    connection: str
    fetched: int
    new: int
    cursor: int
    # Why the pull started again from the beginning (the relay's store is not the one the
    # cursor came from), or None.
    restarted: str | None = None


def _event_from_json(relay: str, data: dict[str, Any]) -> tuple[InboxEvent, str, str, int]:
    def text(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    def number(name: str) -> int | None:  # what an SQLite INTEGER holds, or nothing
        value = data.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and \
            value in STORABLE_INTEGERS else None

    for name in ("event_id", "source", "kind", "identifier", "occurred_at", "received_at"):
        if not text(name):
            raise BadInputError(f"The relay {relay!r} sent an event without {name}.")
    if text("kind") not in (inbox.KIND_OPTOUT, inbox.KIND_RESUBSCRIBE):
        raise BadInputError(f"The relay {relay!r} sent an event of an unknown kind.")
    details = data.get("details")
    event = InboxEvent(
        source=f"{relay}/{text('source')}", system=text("system"), event_id=text("event_id"),
        event=text("event"), kind=text("kind"), id_kind=text("id_kind") or "phone",
        identifier=text("identifier"), occurred_at=text("occurred_at"), phone=text("phone"),
        reason_id=number("reason_id"), reason_label=text("reason_label"),
        free_text=text("free_text"), campaign=text("campaign"), user_id=number("user_id"),
        group_id=number("group_id"), short_link=text("short_link"),
        details=details if isinstance(details, dict) else {},
    )
    return (event, text("received_at"), text("last_delivery_at") or text("received_at"),
            max(1, number("deliveries") or 1))


def pull_relay(connection: str, *, progress: ProgressCallback = no_progress,
               cancel: CancelToken = NEVER_CANCELLED,
               open_relay: Callable[[str, str], Any] | None = None) -> PullResult:
    """Fetch what the relay received since the last pull into the local inbox. Each page and
    the cursor after it are committed together, so an interrupted pull resumes where it was.
    A cursor that cannot belong to the relay's store (another relay_id, or past its newest
    change: the relay was reinstalled or restored) is dropped and the pull starts again from
    the beginning; entries already here are merged, not counted twice."""
    from optout_desk.connectors.inbox_relay import InboxRelayClient

    profile = _get_connection(connection)
    if profile.system != "inbox-relay":
        raise BadInputError(f"The connection {connection!r} is not an inbox relay.")
    token = secret_store.read_secret(connection, "TOKEN")
    client = (open_relay or InboxRelayClient)(profile.base_url, token)
    cursor_name = inbox.relay_cursor_setting(connection)
    relay_name = inbox.relay_id_setting(connection)
    db = _db()
    try:
        cursor = int(inbox.get_setting(db, cursor_name) or 0)
        known_relay = inbox.get_setting(db, relay_name)
    finally:
        db.close()
    fetched = new = 0
    with client:
        pages = client.iter_pages(after=cursor, cancel=cancel)
        first = next(pages)  # there is always one, if only an empty one
        restarted = _cursor_foreign(first, cursor, known_relay)
        if restarted is not None:
            log.warning("relay %s: %s; pulling from the start", connection, restarted)
            cursor = 0
            pages = client.iter_pages(after=0, cancel=cancel)
        else:
            pages = itertools.chain([first], pages)
        for page in pages:
            parsed = [_event_from_json(connection, e) for e in page.events]

            def store(db: sqlite3.Connection, parsed: list[Any] = parsed,
                      page: RelayPage = page) -> int:
                added = sum(inbox.merge_relayed(db, *item) for item in parsed)
                inbox.set_setting(db, cursor_name, str(page.next_after))
                if page.relay_id is not None:
                    inbox.set_setting(db, relay_name, page.relay_id)
                return added

            new += int(_transaction(store))
            fetched += len(parsed)
            cursor = page.next_after
            progress(Progress(fetched, page.total, "events"))
    log.info("pulled %d events (%d new) from relay %s", fetched, new, connection)
    return PullResult(connection, fetched, new, cursor, restarted)


def _cursor_foreign(page: RelayPage, cursor: int, known_relay: str | None) -> str | None:
    """Why `cursor` cannot be a cursor of the relay that answered `page` (the first page
    after it), or None. Without the check, a reinstalled relay looks like one with nothing new
    until its own cursor passes ours, and then the events before it are never pulled."""
    if cursor == 0:
        return None
    if page.relay_id is not None and known_relay is not None and page.relay_id != known_relay:
        return "its event store is not the one this desk pulled from before (it was " \
            "replaced or reinstalled)"
    if page.last_seq is not None and cursor > page.last_seq:
        return f"its newest change is {page.last_seq:,}, before this desk's cursor " \
            f"{cursor:,} (its event store was replaced or restored from a backup)"
    return None
