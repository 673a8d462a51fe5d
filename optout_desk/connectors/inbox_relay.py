"""A relay: `optout-desk receive` on an always-on host, read through its pull API.

`GET api/v1/events?after=CURSOR&limit=N` with `Authorization: Bearer <token>` answers the
events created or re-delivered after the cursor, oldest first, with the cursor to ask with next
(webhooks/receiver.py). The connection's secret field is TOKEN (keyring, or the environment
variable OPTOUT_DESK_SECRET_<NAME>_TOKEN). The client can *list*: syncing a relay is an
incremental fetch from the last cursor (workflows/inbox.pull_relay).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from optout_desk.connectors.base import CheckResult
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    IncompleteFetchError,
    MalformedResponseError,
    PlatformError,
    RejectedRequestError,
)
from optout_desk.connectors.http import HttpPolicy, HttpSession, SessionClient
from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.records import OptOutRecord, canonical_timestamp
from optout_desk.core.wording import counted

PLATFORM = "Inbox relay"
SECRET_FIELDS = ("TOKEN",)
EVENTS_PATH = "api/v1/events"
PAGE_SIZE = 500


@dataclass(frozen=True)
class RelayPage:
    events: list[dict[str, Any]]  # as webhooks/receiver.py sends them (store.inbox.entry_to_json)
    next_after: int
    more: bool
    total: int | None
    # The relay's newest cursor and its database's identity (None from a relay older than
    # both): what tells a puller its cursor belongs to this relay's store.
    last_seq: int | None = None
    relay_id: str | None = None


class InboxRelayClient(SessionClient):
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise ConfigurationError("The relay connection needs its pull API token.")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._session = HttpSession(base_url, headers, HttpPolicy(timeout_s=timeout_s,
                                                                  max_in_flight=1),
                                    platform=PLATFORM, transport=transport)

    def __repr__(self) -> str:
        return f"InboxRelayClient({self._session.base_url})"

    def check(self) -> CheckResult:
        """One small request: proves the URL and the token; says how many events it holds."""
        page = self.list_events(after=0, limit=1)
        total = page.total if page.total is not None else len(page.events)
        return CheckResult(f"the relay at {self.host} holds {counted(total, 'event')}.", total)

    def list_optouts(self, *, since: str | None = None, survey_id: int | None = None,
                     progress: ProgressCallback = no_progress,
                     cancel: CancelToken = NEVER_CANCELLED) -> list[OptOutRecord]:
        """The opt-outs the relay received (resubscribes are for a person to decide about,
        never a record of the list), optionally only those that happened at or after `since`:
        a relay's list, fetched like any other platform's."""
        records: list[OptOutRecord] = []
        fetched = 0
        seen: set[tuple[str, str]] = set()  # a re-delivered event comes again, later
        total: int | None = None
        for page in self.iter_pages(after=0, cancel=cancel):
            fetched += len(page.events)
            total = page.total
            progress(Progress(fetched, page.total, "events", records=len(records)))
            for event in page.events:
                seen.add((str(event.get("source")), str(event.get("event_id"))))
                record = _record(event)
                if record is not None and (since is None or record.date_opt_out >= since):
                    records.append(record)
        # The last page and its total are one snapshot of the relay (receiver.py): fewer
        # events than it holds is a partial list. (More is fine: a source removed meanwhile.)
        if total is not None and len(seen) < total:
            raise IncompleteFetchError(f"The relay at {self.host}", total, len(seen),
                                       what="events")
        return records

    def list_events(self, *, after: int = 0, limit: int = PAGE_SIZE,
                    cancel: CancelToken = NEVER_CANCELLED) -> RelayPage:
        page, _ = self._session.request("GET", EVENTS_PATH,
                                        params={"after": after, "limit": limit},
                                        interpret=self._interpret, cancel=cancel)
        return page

    def iter_pages(self, *, after: int = 0, cancel: CancelToken = NEVER_CANCELLED
                   ) -> Iterator[RelayPage]:
        """Every page after the cursor, until the relay says there is no more. A relay that
        says more follow but does not move its cursor is an error (stopping there would take
        part of its events for all of them)."""
        while True:
            if cancel.cancelled:
                raise Cancelled()
            page = self.list_events(after=after, cancel=cancel)
            yield page
            if not page.more:
                return
            if page.next_after <= after:
                raise MalformedResponseError(
                    f"The relay at {self.host} said more events follow after cursor {after} "
                    f"but sent cursor {page.next_after} to ask with next, so the rest cannot be "
                    "fetched; what came before is kept. Update `optout-desk` on the relay, or "
                    "report this to whoever runs it.")
            after = page.next_after

    def _interpret(self, response: httpx.Response) -> RelayPage:
        host = self._session.host
        status = response.status_code
        if status == 401:
            raise AuthenticationError(f"The relay at {host} refused the token: enter the "
                                      "token `optout-desk inbox api-token` printed there.")
        if status == 404:
            raise ConfigurationError(f"{host} has no inbox pull API: check the base URL "
                                     "points at `optout-desk receive`.")
        if status >= 500:
            raise PlatformError(f"The relay at {host} answered HTTP {status}; try again "
                                "later.", status, None)
        if status >= 300:
            raise RejectedRequestError(f"The relay at {host} refused the request (HTTP "
                                       f"{status}).", status, None)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("events"), list) or \
                not _whole(body.get("next_after")):
            raise MalformedResponseError(f"The relay at {host} answered something that is "
                                         "not its event list.")
        total, last_seq, relay_id = (body.get(name) for name in ("total", "last_seq",
                                                                  "relay_id"))
        events = [e for e in body["events"] if isinstance(e, dict)]
        return RelayPage(events, body["next_after"], body.get("more") is True,
                         total if _whole(total) else None,
                         last_seq if _whole(last_seq) else None,
                         relay_id if isinstance(relay_id, str) and relay_id else None)


def _whole(value: object) -> bool:
    """A JSON whole number (true and false are not: Python calls them ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _record(event: dict[str, Any]) -> OptOutRecord | None:
    """An opt-out event as a record of the relay's list; None for anything else."""
    if event.get("kind") != "optout":
        return None
    identifier = str(event.get("identifier") or "")
    id_kind = event.get("id_kind")
    try:
        date = canonical_timestamp(str(event.get("occurred_at") or event.get("received_at")))
    except ValueError:
        return None
    email = identifier if id_kind == "email" else ""
    phone = identifier if id_kind == "phone" else str(event.get("phone") or "")
    return OptOutRecord(date, email, phone, source=f"relay: {event.get('source', '')}")
