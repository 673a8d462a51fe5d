"""What a destination is known to hold, through the connector contract whatever the platform.

- A system that can LIST: its cached list (fetched by workflows/sync.py).
- A system that can LOOK UP: the answers it gave (store/lookups.py), asked again when older than
  the connection's limit; `look_up` asks with progress, cancel and the connection's pacing.
- Neither: nothing is known, and the preview says so rather than pretending.

Keys are the identifiers' normalised keys (core/identifiers), the same ones a spreadsheet's
identifiers carry, so "already on the destination" compares like with like.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

from optout_desk.connectors import registry
from optout_desk.connectors.base import Capability, LookupAnswer
from optout_desk.core.identifiers import IdKind, normalise_email_column, phone_normaliser
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.store import cache, connections, lookups
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect

log = logging.getLogger(__name__)

DEFAULT_ANSWER_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class KnownKeys:
    """The keys a destination holds as opted out, and how that is known (for the preview)."""

    keys: frozenset[str]
    detail: str  # the left-out reason's detail: "already on acme's cached opt-out list"
    source: str  # "cached list" | "look-up answers" | "" when nothing can be known


def phone_region(profile: ConnectionProfile) -> str:
    """The region national phone numbers of this connection's list are read in."""
    from optout_desk.files.mapping import default_region

    region = profile.settings.get("phone_region")
    return str(region).upper() if region else default_region()


def known_optout_keys(db: sqlite3.Connection, profile: ConnectionProfile) -> KnownKeys:
    info = registry.system_info(profile.system)
    assert profile.id is not None
    if info.can(Capability.LIST):
        columns = cache.load_columns(db, profile.id, "")
        keys: set[str] = set()
        for identifier in normalise_email_column([text or None for text in columns["Email"]]):
            if identifier is not None and identifier.key:
                keys.add(identifier.key)
        phones = phone_normaliser(phone_region(profile)).many(
            [text or None for text in columns["Phone"]])
        keys.update(i.key for i in phones if i is not None and i.key)
        return KnownKeys(frozenset(keys), f"already on {profile.name}'s cached opt-out list",
                         "cached list")
    if info.can(Capability.LOOKUP):
        values = lookups.opted_out_values(db, profile.id)
        return KnownKeys(frozenset(value for _, value in values),
                         f"{profile.name} answered that it is already opted out",
                         "look-up answers")
    return KnownKeys(frozenset(), "", "")


def answer_age(profile: ConnectionProfile) -> timedelta:
    hours = profile.settings.get("lookup_max_age_hours")
    try:
        return timedelta(hours=float(hours)) if hours is not None else DEFAULT_ANSWER_AGE
    except (TypeError, ValueError):
        return DEFAULT_ANSWER_AGE


@dataclass(frozen=True)
class LookupOutcome:
    answers: dict[tuple[IdKind, str], LookupAnswer]
    asked: int  # identifiers sent to the platform by this call
    reused: int  # answered from kept answers younger than the connection's limit


def look_up(
    connection: str,
    identifiers: Iterable[tuple[IdKind, str]],
    *,
    refresh: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> LookupOutcome:
    """Which of `identifiers` (kind, value as the platform takes it) the connection holds as
    opted out: kept answers younger than the connection's limit are reused unless `refresh`,
    the rest asked (the answers are kept, with their time)."""
    from optout_desk.workflows.connections import open_connection_client

    wanted = list(dict.fromkeys(identifiers))
    db = connect()
    try:
        profile = connections.get(db, connection)
        assert profile.id is not None
        stored = {} if refresh else lookups.fresh_answers(
            db, profile.id, ((str(k), v) for k, v in wanted), answer_age(profile))
    finally:
        db.close()
    answers: dict[tuple[IdKind, str], LookupAnswer] = {}
    ask: list[tuple[IdKind, str]] = []
    for kind, value in wanted:
        kept = stored.get((str(kind), value))
        if kept is None:
            ask.append((kind, value))
        else:
            answers[(kind, value)] = LookupAnswer(kept.opted_out, kept.state, kept.changed_at)
    progress(Progress(len(answers), len(wanted), "identifiers",
                      f"{len(answers):,} answered earlier; asking {profile.name} for "
                      f"{len(ask):,}…"))
    if ask:
        _, client = open_connection_client(connection)
        with closing(client):
            asker = registry.as_lookup(client, profile.system)
            offset = len(answers)

            def report(p: Progress) -> None:
                progress(Progress(offset + p.done, len(wanted), "identifiers", p.message))

            fresh = asker.lookup(ask, progress=report, cancel=cancel)
        cancel.raise_if_cancelled()
        db = connect()
        try:
            lookups.save_answers(db, profile.id, {
                (str(kind), value): (a.opted_out, a.state, a.changed_at)
                for (kind, value), a in fresh.items()})
        finally:
            db.close()
        answers.update(fresh)
    log.info("look-up on %s: %d asked, %d reused, %d opted out", connection, len(ask),
             len(wanted) - len(ask), sum(a.opted_out for a in answers.values()))
    return LookupOutcome(answers, len(ask), len(wanted) - len(ask))
