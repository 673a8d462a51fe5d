"""Connections as the operator manages them: add, edit, remove, test, open a client.

A connection is a profile in the database (no secrets) plus its keys, which live in the session
store, an environment variable or the OS keyring (see optout_desk.secrets). These functions keep
the two in step: adding stores the keys before the profile (a keyring failure saves nothing),
removing forgets the keys before the profile (a locked keyring leaves the connection in place
to retry, instead of orphaning keys nobody can see).

`test_connection` reports a failed check as ConnectionCheck(ok=False, message=…, error=…) for
every connector or keyring error, for the CLI and the GUI alike; only "no such connection"
(BadInputError) is raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from optout_desk import secrets as secret_store
from optout_desk.connectors import registry
from optout_desk.connectors.base import Capability, Client
from optout_desk.connectors.errors import ConnectorError
from optout_desk.core.errors import BadInputError, DeskError
from optout_desk.store import cache, connections, inbox
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of `test_connection`. `error` keeps the typed error for the GUI."""

    ok: bool
    total_optouts: int | None
    message: str
    error: DeskError | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ConnectionOverview:
    """One line of the connection list."""

    profile: ConnectionProfile
    label: str  # the system as the operator knows it
    secrets_location: str  # "stored in Secret Service", "environment variable …", …
    last_synced_at: str | None  # account-wide list
    cached: int  # account-wide list

    @property
    def where(self) -> str:
        """Region, or the host of a custom URL."""
        if self.profile.region:
            return self.profile.region
        return self.profile.base_url.split("://", 1)[-1].rstrip("/")


def prepare_profile(
    name: str,
    system: str,
    *,
    region: str | None = None,
    base_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ConnectionProfile:
    """Validate everything about a new connection except its keys, without saving anything
    (so a CLI can refuse bad input before asking for keys)."""
    connections.validate_name(name)
    registry.system_info(system)
    url = registry.base_url_for(system, region, base_url)
    chosen = registry.parse_given(system, settings or {})
    _validate_settings(system, url, chosen)
    db = connect()
    try:
        if connections.exists(db, name):
            raise BadInputError(
                f"A connection named {name!r} already exists; pick another name or edit that one."
            )
    finally:
        db.close()
    return ConnectionProfile(
        name=name,
        system=system,
        base_url=url,
        region="" if base_url else (region or ""),
        settings=chosen,
    )


def add_connection(
    name: str,
    system: str,
    *,
    region: str | None = None,
    base_url: str | None = None,
    secrets: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
    session_only: bool = False,
) -> ConnectionProfile:
    """Save a new connection and its keys.

    `secrets` holds the keys to store (in the keyring, or for this session only). A field left
    out must already be set as an environment variable; it then stays there and is not copied.
    """
    profile = prepare_profile(
        name, system, region=region, base_url=base_url, settings=settings
    )
    fields = registry.system_info(system).secret_fields
    missing = [f for f in fields if not secrets.get(f) and not _in_environment(name, f)]
    if missing:
        raise BadInputError(missing_keys_message(name, system, missing))
    # Checked where they are entered (typed, pasted, or left in the environment), before
    # anything is stored.
    registry.check_secrets(system, {f: secrets.get(f) or _from_environment(name, f)
                                    for f in fields})
    stored: list[str] = []
    try:
        for secret_field in fields:
            if secrets.get(secret_field):
                secret_store.store_secret(
                    name, secret_field, secrets[secret_field], session_only=session_only
                )
                stored.append(secret_field)
        db = connect()
        try:
            saved = connections.add(db, profile)
        finally:
            db.close()
    except BaseException:
        # Leave nothing behind: keys of a connection that was not saved would be orphans.
        if stored:
            try:
                secret_store.delete_secrets(name, stored)
            except DeskError:
                log.warning("could not forget the keys of a connection that was not added")
        raise
    log.info("added connection %s (%s, %d keys stored)", name, system, len(stored))
    return saved


# Why an edit dropped the cached lists (EditedConnection.why).
MOVED = "address"
NEW_KEYS = "keys"


@dataclass(frozen=True)
class EditedConnection:
    profile: ConnectionProfile
    # Opt-outs dropped from the cache because the address or the keys changed (None: neither).
    dropped: int | None = None
    why: str | None = None  # MOVED or NEW_KEYS when dropped is not None


def edit_connection(
    name: str,
    *,
    region: str | None = None,
    base_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    session_only: bool = False,
) -> EditedConnection:
    """Change a connection: a new region or URL, settings (a value of None removes it) and/or
    new keys (only the fields given are replaced). Another address is another server (another
    data centre is another account), and other keys may be another account on the same server:
    either way the lists cached with the old ones are dropped, so the next fetch is a full one
    instead of merging another account's opt-outs into them (and reconcile never compares
    against a list of the wrong account). Keys entered again unchanged keep the cache."""
    db = connect()
    try:
        profile = connections.get(db, name)
        old_url = profile.base_url
        if region is not None or base_url is not None:
            profile.base_url = registry.base_url_for(profile.system, region, base_url)
            profile.region = "" if base_url else (region or "")
        if settings:
            merged = dict(profile.settings)
            for key in settings:
                merged.pop(key, None)
            merged.update(registry.parse_given(profile.system, settings))
            profile.settings = merged
        _validate_settings(profile.system, profile.base_url, profile.settings)
        given = {f: v for f, v in (secrets or {}).items() if v}
        registry.check_secrets(profile.system, given)
        why = MOVED if not _same_address(profile.base_url, old_url) else \
            NEW_KEYS if _keys_differ(name, given, session_only=session_only) else None
        dropped = None
        if why is not None:
            # Before the new address or keys are saved: if anything stops between the two, the
            # worst left is an empty cache, never the old list under the new account.
            assert profile.id is not None
            dropped = sum(cache.sync_state(db, profile.id, scope).count
                          for scope in cache.scopes(db, profile.id))
            cache.clear(db, profile.id)
            inbox.forget_relay(db, name)
            log.info("connection %s has another %s: %d cached opt-outs dropped", name,
                     "address" if why == MOVED else "set of keys", dropped)
        for secret_field, value in given.items():
            secret_store.store_secret(name, secret_field, value, session_only=session_only)
        connections.update(db, profile)
        return EditedConnection(connections.get(db, name), dropped, why)
    finally:
        db.close()


def _keys_differ(name: str, given: Mapping[str, str], *, session_only: bool) -> bool:
    """Whether any key given differs from the one the connection uses now. A key not stored
    anywhere counts as different (the cache is a copy of the platform's list that a full
    fetch gets back; another account's list kept would be silently wrong). A keyring that
    cannot be read cannot take the new keys either: that error goes to the caller before
    anything changed (unless the keys are for this session only)."""
    for secret_field, value in given.items():
        try:
            if secret_store.read_secret(name, secret_field) != value:
                return True
        except secret_store.MissingSecretError:
            return True
        except DeskError:
            if not session_only:
                raise
            return True
    return False


def _same_address(a: str, b: str) -> bool:
    """The same server, however the URL was written (a trailing slash, the host's case)."""
    def key(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return key(a) == key(b)


def remove_connection(name: str) -> int:
    """Remove a connection, its keys (session and keyring) and its cached opt-outs; returns
    how many cached opt-outs went with it."""
    db = connect()
    try:
        profile = connections.get(db, name)
        assert profile.id is not None
        cached = sum(
            cache.sync_state(db, profile.id, scope).count for scope in cache.scopes(db, profile.id)
        )
        secret_store.delete_secrets(name, registry.system_info(profile.system).secret_fields)
        connections.remove(db, name)
        inbox.forget_relay(db, name)  # a relay's cursor must not outlive it
    finally:
        db.close()
    log.info("removed connection %s", name)
    return cached


def get_connection(name: str) -> ConnectionProfile:
    db = connect()
    try:
        return connections.get(db, name)
    finally:
        db.close()


def list_connections(*, describe_secrets: bool = True) -> list[ConnectionOverview]:
    """Every connection with where its keys live and its account-wide cache. Describing the
    keys asks the keyring (bounded by its timeout): call from a worker thread in the GUI."""
    db = connect()
    try:
        profiles = connections.list_all(db)
        states = {
            p.name: cache.sync_state(db, p.id) for p in profiles if p.id is not None
        }
    finally:
        db.close()
    overviews = []
    for profile in profiles:
        info = registry.SYSTEMS.get(profile.system)
        state = states[profile.name]
        overviews.append(
            ConnectionOverview(
                profile=profile,
                label=info.label if info else profile.system,
                secrets_location=(
                    secrets_location(profile) if describe_secrets else ""
                ),
                last_synced_at=state.last_synced_at,
                cached=state.count,
            )
        )
    return overviews


def connections_that(capability: Capability) -> list[ConnectionProfile]:
    """The connections whose system can do `capability` (what a page offers them for)."""
    db = connect()
    try:
        profiles = connections.list_all(db)
    finally:
        db.close()
    return [p for p in profiles
            if (info := registry.SYSTEMS.get(p.system)) is not None and info.can(capability)]


def secrets_location(profile: ConnectionProfile) -> str:
    """Where a connection's keys live, in one phrase ("stored in Secret Service")."""
    info = registry.SYSTEMS.get(profile.system)
    if info is None:
        return "unknown system"
    places = {
        label: secret_store.describe_location(profile.name, secret_field)
        for secret_field, label in zip(info.secret_fields, info.secret_labels, strict=True)
    }
    distinct = set(places.values())
    if len(distinct) == 1:
        return distinct.pop()
    if all(place.startswith("environment variable ") for place in distinct):
        return f"environment variables {secret_store.env_var_name(profile.name, '')}*"
    return "; ".join(f"{label.lower()}: {place}" for label, place in places.items())


def open_connection_client(name: str) -> tuple[ConnectionProfile, Client]:
    """The connection's profile and an open client (the caller closes it)."""
    profile = get_connection(name)
    info = registry.system_info(profile.system)
    keys = secret_store.read_secrets(name, info.secret_fields)
    client = registry.open_client(profile.system, profile.base_url, keys, profile.settings)
    return profile, client


def test_connection(name: str) -> ConnectionCheck:
    """One small request with the connection's keys: do they work, how many opt-outs are
    there? Connector and keyring failures come back as ok=False with their message."""
    get_connection(name)  # "No connection named …" is bad input, raised
    try:
        profile, client = open_connection_client(name)
        with closing(client):
            result = client.check()
    except (ConnectorError, secret_store.SecretsError) as exc:
        log.info("connection test of %s failed: %s", name, type(exc).__name__)
        return ConnectionCheck(ok=False, total_optouts=None, message=exc.message, error=exc)
    info = registry.system_info(profile.system)
    return ConnectionCheck(
        ok=True,
        total_optouts=result.total_optouts,
        message=f"The connection {name!r} works: {result.message} It can "
                f"{info.abilities()}.",
    )


def check_unsaved(
    system: str,
    *,
    region: str | None = None,
    base_url: str | None = None,
    secrets: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    existing: str | None = None,
) -> ConnectionCheck:
    """`test_connection` for what the connection dialog holds, before anything is saved: the
    keys typed (or, editing `existing`, its stored keys for the fields left empty). Nothing is
    written to the database or the keyring."""
    info = registry.system_info(system)
    url = registry.base_url_for(system, region, base_url)
    chosen = registry.parse_given(system, settings or {})
    keys = {k: v for k, v in (secrets or {}).items() if v}
    try:
        missing = [field for field in info.secret_fields if field not in keys]
        if existing is not None and missing:
            keys.update(secret_store.read_secrets(existing, missing))
        client = registry.open_client(system, url, keys, chosen)
        with closing(client):
            result = client.check()
    except (ConnectorError, secret_store.SecretsError) as exc:
        log.info("check of unsaved %s connection failed: %s", system, type(exc).__name__)
        return ConnectionCheck(ok=False, total_optouts=None, message=exc.message, error=exc)
    return ConnectionCheck(ok=True, total_optouts=result.total_optouts,
                           message=f"These keys work: {result.message}")


# pytest would otherwise collect `test_connection` from modules that import it.
test_connection.__test__ = False  # type: ignore[attr-defined]


def missing_keys_message(name: str, system: str, fields: list[str]) -> str:
    info = registry.system_info(system)
    labels = dict(zip(info.secret_fields, info.secret_labels, strict=True))
    names = " and ".join(secret_store.env_var_name(name, f) for f in fields)
    what = " and ".join(labels.get(f, f).lower() for f in fields)
    return (
        f"The connection {name!r} needs its {what}: run this in a terminal to type them, or "
        f"set {names}."
    )


def _in_environment(name: str, secret_field: str) -> bool:
    return bool(_from_environment(name, secret_field))


def _from_environment(name: str, secret_field: str) -> str:
    return os.environ.get(secret_store.env_var_name(name, secret_field), "").strip()


def _validate_settings(system: str, base_url: str, settings: Mapping[str, Any]) -> None:
    """Refuse settings the connector cannot use, at the time they are entered."""
    registry.settings_for(system, settings)
