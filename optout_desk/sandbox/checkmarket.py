"""The CheckMarket API v3 simulator: state and request handling, independent of the HTTP server.

Follows shared/api-notes.md section 1: the `Meta/Data/Links` envelope, `$top/$skip` paging
(also `top/skip`), default page size 25, `Links.Next` {Href, Method}, the
`filter=DateOptOut ge DateTime'…'` date filter, `X-Master-Key` + `X-Key` auth with roles,
ThrottleException bodies with a .NET TimeSpan `RetryAfter`, and error bodies
`{ErrorCode, ErrorMessage, ErrorType}`.

Decisions where the vendor's behaviour is UNKNOWN (documented so tests and clients know):
- The tutorial's `filter==DateOptOut…` typo is TOLERATED (one leading "=" of the filter value is
  ignored): the vendor's own sample sends it, and a simulator that refused it would teach nothing.
- `$top` above `max_page_size` (or below 1) is HTTP 400 with an error body naming `top`.
- Throttled requests get HTTP 429 and the ThrottleException body only: no `Retry-After` header,
  so a client must read the body's `RetryAfter`.
- `POST 3/contacts/optouts` answers the standard envelope with `Data: null`.
- Unknown survey ids are HTTP 404; an unsupported filter is HTTP 400.

Switches for platforms that behave worse than documented (all off by default; each can be set
at start-up through SandboxConfig / `optout-desk sandbox` flags, or at runtime by `set_*`):
- a silent page cap: at most `page_cap` rows per page whatever `$top` asks; `Meta.Limit`
  reports the cap, or (`limit_echoes_top`) lies by echoing the `$top` asked. `Links.Next`
  continues after the rows really served.
- one short page: the answer at `$skip == short_page_at` holds only `short_page_rows` rows,
  its Meta and Links unchanged (as if the page were full).
- drip: an answer's bytes are written one at a time, `drip_s` apart, so a client's per-read
  timeout never fires.
- arrivals: `arrivals` new opt-outs are appended while a client pages, `arrivals_per_request`
  on each list request with `$skip` > 0.
- `posted_optouts`: "distinct" (each POSTed address gets its own ContactId and timestamp),
  "contact-zero" / "contact-none" / "contact-huge" (ContactId 0 / null / 2**64 - 1, an
  unsigned -1 no SQLite INTEGER holds; and one timestamp for the whole batch).
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from optout_desk.core.records import canonical_timestamp
from optout_desk.sandbox.checkmarket_hooks import HookRegistry
from optout_desk.sandbox.data import (
    TICKS_PER_SECOND,
    Generator,
    Row,
    email_key,
    format_ticks,
    phone_key,
    survey_ids,
    ticks_of,
)

ROLE_READ = "contacts:read"
ROLE_WRITE = "contacts:write"
ALL_ROLES = frozenset({ROLE_READ, ROLE_WRITE})
ROLE_NAMES = {ROLE_READ: "Contacts (read)", ROLE_WRITE: "Contacts (write)"}
DEFAULT_PAGE_SIZE = 25
FAULT_KINDS = ("500", "503", "drop", "malformed", "429", "body-status")
POSTED_MODES = ("distinct", "contact-zero", "contact-none", "contact-huge")

_SURVEY_PATH = re.compile(r"^3/surveys/(\d+)/contacts/optouts$")
_CLAUSE = re.compile(
    r"^\s*DateOptOut\s+(ge|gt|le|lt|eq)\s+DateTime'([^']+)'\s*$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    method: str
    path: str  # without the leading "/"
    query: str  # the raw query string
    status: int  # HTTP status answered (0 = connection dropped)
    host: str = ""  # the Host header the client sent
    at: float = 0.0  # time.monotonic() when the request arrived
    key: str = ""  # the X-Key used ("" when none); the sandbox's own log, never the client's


@dataclass(slots=True)
class Reply:
    """What the server sends back. `drop` closes the connection without an answer; `drip_s`
    > 0 writes the body one byte at a time, that many seconds apart."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float = 0.0


@dataclass(slots=True)
class _Fault:
    kind: str
    remaining: int
    path_prefix: str
    retry_after_s: float


def timespan(seconds: float) -> str:
    """Seconds as a .NET TimeSpan string: "00:00:01.5000000", "1.02:00:00.0000000"."""
    ticks = round(seconds * TICKS_PER_SECOND)
    days, ticks = divmod(ticks, 86_400 * TICKS_PER_SECOND)
    secs, fraction = divmod(ticks, TICKS_PER_SECOND)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:07d}"
    return f"{days}.{text}" if days else text


def _now_text() -> str:
    return format_ticks(ticks_of(datetime.now(UTC)), trim=False)


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _envelope(status: int, data: object, links: dict[str, Any] | None = None,
              **meta: object) -> bytes:
    return _dumps({
        "Meta": {"Status": status, "Timestamp": _now_text(), **meta},
        "Data": data,
        "Links": links or {},
    })


def error_reply(status: int, message: str, error_type: str, code: int | None = None) -> Reply:
    data = {"ErrorCode": code if code is not None else status, "ErrorMessage": message,
            "ErrorType": error_type}
    return Reply(status, _envelope(status, data))


class CheckMarketState:
    """Thread-safe simulator state: keys and roles, the opt-out list, faults, throttling."""

    def __init__(self, *, records: int = 500, seed: int = 1, surveys: int = 5,
                 max_page_size: int = 1000, throttle_per_minute: int | None = None,
                 throttle_window_s: float = 60.0, latency_ms: float = 0.0,
                 next_link_base: str | None = None, page_cap: int | None = None,
                 limit_echoes_top: bool = False, short_page_at: int | None = None,
                 short_page_rows: int = 0, drip_s: float = 0.0, arrivals: int = 0,
                 arrivals_per_request: int = 1, posted_optouts: str = "distinct") -> None:
        self._lock = threading.RLock()
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        self._generator = Generator(seed, surveys, end)
        self._rows: list[Row] = self._generator.generate(records)
        self._ticks: list[int] = [r.ticks for r in self._rows]
        self._survey_ids = survey_ids(surveys)
        self._by_survey: dict[int, list[Row]] = {s: [] for s in self._survey_ids}
        self._emails: set[str] = set()
        self._phones: set[str] = set()
        for row in self._rows:
            self._index(row)
        self._keys: dict[tuple[str, str], frozenset[str]] = {}
        self._faults: list[_Fault] = []
        self._windows: dict[str, tuple[float, int]] = {}
        self.max_page_size = max_page_size
        self.throttle_per_minute = throttle_per_minute
        self.throttle_window_s = throttle_window_s
        self.latency_ms = latency_ms
        self.next_link_base = next_link_base
        self.base_url = ""  # set by the server once it listens
        self.submitted: list[dict[str, Any]] = []
        self.request_log: list[RequestLogEntry] = []
        self.hooks = HookRegistry()  # webhooks (sandbox/checkmarket_hooks.py)
        self.page_cap: int | None = None
        self.limit_echoes_top = False
        self.short_page_at: int | None = None
        self.short_page_rows = 0
        self.drip_s = 0.0
        self._drips_left: int | None = None  # None: every answer
        self._arrivals_left = 0
        self._arrivals_per_request = 1
        self.posted_optouts = "distinct"
        self.set_page_cap(page_cap, limit_echoes_top=limit_echoes_top)
        self.set_short_page(short_page_at, short_page_rows)
        self.set_drip(drip_s)
        self.set_arrivals(arrivals, arrivals_per_request)
        self.set_posted_optouts(posted_optouts)

    # -- the contract ------------------------------------------------------------------

    def add_key(self, master_key: str, key: str, roles: set[str]) -> None:
        unknown = set(roles) - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        with self._lock:
            self._keys[(master_key, key)] = frozenset(roles)

    def add_optouts(self, count: int) -> list[dict[str, Any]]:
        """`count` new generated opt-outs dated after every existing one (returned as copies)."""
        with self._lock:
            after = self._ticks[-1] if self._ticks else ticks_of(datetime.now(UTC))
            rows = self._generator.more(count, after)
            for row in rows:
                self._append(row)
            return [dict(r.data) for r in rows]

    def optouts(self, survey_id: int | None = None) -> list[dict[str, Any]]:
        """Every opt-out in API order (DateOptOut, ContactId), as copies of the JSON objects."""
        with self._lock:
            rows = self._rows if survey_id is None else self._by_survey.get(survey_id, [])
            return [dict(r.data) for r in rows]

    @property
    def survey_ids(self) -> list[int]:
        return list(self._survey_ids)

    def inject_faults(self, kind: str, count: int, path_prefix: str = "",
                      retry_after_s: float = 0.2) -> None:
        """Answer the next `count` requests whose path starts with `path_prefix` (no leading
        "/", e.g. "3/contacts") with fault `kind`. `retry_after_s` is the RetryAfter of "429"."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(_Fault(kind, count, path_prefix.lstrip("/"), retry_after_s))

    def set_latency(self, ms: float) -> None:
        self.latency_ms = ms

    def set_page_cap(self, cap: int | None, *, limit_echoes_top: bool = False) -> None:
        """Serve at most `cap` rows per page (None: as many as `$top` asks). Meta.Limit tells
        the cap, or echoes the `$top` asked when `limit_echoes_top`."""
        if cap is not None and cap < 1:
            raise ValueError("a page cap must be at least 1")
        with self._lock:
            self.page_cap, self.limit_echoes_top = cap, limit_echoes_top

    def set_short_page(self, skip: int | None, rows: int = 0) -> None:
        """The answer at `$skip == skip` holds only `rows` rows, Meta and Links unchanged
        (None: no short page)."""
        if skip is not None and (skip < 0 or rows < 0):
            raise ValueError("a short page needs a $skip and a row count of 0 or more")
        with self._lock:
            self.short_page_at, self.short_page_rows = skip, rows

    def set_drip(self, seconds: float, count: int | None = None) -> None:
        """Write answers one byte at a time, `seconds` apart (0: off): the next `count`
        answers, or every answer when `count` is None."""
        if seconds < 0 or (count is not None and count < 0):
            raise ValueError("drip seconds and count must not be negative")
        with self._lock:
            self.drip_s, self._drips_left = seconds, count

    def set_arrivals(self, count: int, per_request: int = 1) -> None:
        """Append `count` new opt-outs while a client pages: `per_request` on each list
        request with `$skip` > 0, until `count` have arrived."""
        if count < 0 or per_request < 1:
            raise ValueError("arrivals must be 0 or more, at least 1 per request")
        with self._lock:
            self._arrivals_left, self._arrivals_per_request = count, per_request

    def set_posted_optouts(self, mode: str) -> None:
        """How POSTed opt-outs are listed: one of POSTED_MODES (see the module docstring)."""
        if mode not in POSTED_MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(POSTED_MODES)}")
        self.posted_optouts = mode

    def requests_to(self, path_prefix: str) -> list[RequestLogEntry]:
        with self._lock:
            return [e for e in self.request_log if e.path.startswith(path_prefix)]

    # -- request handling --------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one request. `target` is the request line's path with query; `headers` have
        lower-case names."""
        arrived = time.monotonic()
        path, _, query = target.partition("?")
        path = path.lstrip("/")
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)  # runs on the request's own thread
        try:
            reply = self._answer(method, path, query, headers, body)
        except Exception as exc:  # a simulator bug must still answer like a server would
            reply = error_reply(500, f"Sandbox error: {type(exc).__name__}", "InternalServerError")
        reply.drip_s = self._take_drip()
        entry = RequestLogEntry(method, path, query, 0 if reply.drop else reply.status,
                                headers.get("host", ""), arrived, headers.get("x-key", ""))
        with self._lock:
            self.request_log.append(entry)
        return reply

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Reply:
        fault = self._take_fault(path)
        if fault is not None:
            return self._fault_reply(fault)
        if path == "3/hooks" or path.startswith("3/hooks/"):
            denied = self._authorise(headers, ROLE_READ)  # Panelist.Optout: Contacts (read)
            return denied or self.hooks.handle(
                method, path, headers, body,
                lambda status, data: Reply(status, _envelope(status, data)), error_reply,
                {s: f"Survey {s}" for s in self._survey_ids})
        is_optouts = path == "3/contacts/optouts"
        survey = _SURVEY_PATH.match(path)
        if not (is_optouts or survey or path == "3/throttle"):
            return error_reply(404, f"No resource matches '{path}'.", "NotFoundException")
        if method not in ("GET", "POST") or (method == "POST" and not is_optouts):
            return error_reply(405, f"{method} is not allowed on '{path}'.",
                               "MethodNotAllowedException")
        role = ROLE_WRITE if method == "POST" else ROLE_READ
        denied = self._authorise(headers, role)
        if denied is not None:
            return denied
        throttled = self._throttle(headers.get("x-key", ""))
        if throttled is not None:
            return throttled
        if path == "3/throttle":
            return self._throttle_reply(0.2, self.throttle_per_minute or 0)
        if method == "POST":
            return self._post_optouts(body)
        survey_id = int(survey.group(1)) if survey else None
        if survey_id is not None and survey_id not in self._by_survey:
            return error_reply(404, f"Survey {survey_id} does not exist in this account.",
                               "NotFoundException")
        return self._list(path, query, survey_id)

    def _authorise(self, headers: dict[str, str], role: str) -> Reply | None:
        pair = (headers.get("x-master-key", ""), headers.get("x-key", ""))
        roles = self._keys.get(pair)
        if roles is None:
            return error_reply(401, "Authorization has been denied for this request: the "
                               "X-Master-Key / X-Key pair is not valid.",
                               "AuthenticationException")
        if role not in roles:
            return error_reply(403, f"The key does not have the required role: "
                               f"{ROLE_NAMES[role]}.", "ForbiddenException")
        return None

    def _throttle(self, key: str) -> Reply | None:
        limit = self.throttle_per_minute
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= self.throttle_window_s:
                started, count = now, 0
            count += 1
            self._windows[key] = (started, count)
        if count <= limit:
            return None
        return self._throttle_reply(max(0.0, started + self.throttle_window_s - now), limit)

    def _throttle_reply(self, retry_after_s: float, limit: int) -> Reply:
        data = {
            "Message": f"API calls quota exceeded! maximum admitted {limit} per Minute.",
            "MaxRequests": limit,
            "Per": "Minute",
            "RetryAfter": timespan(retry_after_s),
            "Links": {},
        }
        return Reply(429, _envelope(429, data))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    return fault
            return None

    def _take_drip(self) -> float:
        with self._lock:
            if self.drip_s <= 0 or self._drips_left == 0:
                return 0.0
            if self._drips_left is not None:
                self._drips_left -= 1
            return self.drip_s

    def _arrive(self, skip: int) -> None:
        """Opt-outs arriving while a client pages (the `arrivals` switch); under the lock."""
        if skip > 0 and self._arrivals_left > 0:
            count = min(self._arrivals_left, self._arrivals_per_request)
            self._arrivals_left -= count
            for row in self._generator.more(count, self._ticks[-1] if self._ticks
                                            else ticks_of(datetime.now(UTC))):
                self._append(row)

    def _fault_reply(self, fault: _Fault) -> Reply:
        if fault.kind == "drop":
            return Reply(0, drop=True)
        if fault.kind == "malformed":
            return Reply(200, b'{"Meta": {"Status": 200, "Timestamp": "20')
        if fault.kind == "429":
            return self._throttle_reply(fault.retry_after_s, self.throttle_per_minute or 60)
        if fault.kind == "body-status":
            data = {"ErrorCode": 500, "ErrorMessage": "An unexpected error occurred.",
                    "ErrorType": "InternalServerError"}
            return Reply(200, _envelope(500, data))
        status = int(fault.kind)
        message = ("The service is temporarily unavailable." if status == 503
                   else "An unexpected error occurred.")
        return error_reply(status, message, "InternalServerError")

    def _list(self, path: str, query: str, survey_id: int | None) -> Reply:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        top_text = params.get("$top", params.get("top"))
        skip_text = params.get("$skip", params.get("skip", "0"))
        filter_text = params.get("filter", params.get("$filter"))
        try:
            top = int(top_text) if top_text is not None else DEFAULT_PAGE_SIZE
            skip = int(skip_text)
        except ValueError:
            return error_reply(400, "The query parameters 'top' and 'skip' must be whole "
                               "numbers.", "ValidationException")
        if not 1 <= top <= self.max_page_size:
            return error_reply(400, f"The value of 'top' must be between 1 and "
                               f"{self.max_page_size}.", "ValidationException")
        if skip < 0:
            return error_reply(400, "The value of 'skip' must not be negative.",
                               "ValidationException")
        bounds: tuple[int, int | None] = (0, None)
        if filter_text:
            parsed = _parse_filter(filter_text)
            if parsed is None:
                return error_reply(400, "The filter could not be understood; supported: "
                                   "DateOptOut ge|gt|le|lt|eq DateTime'YYYY-MM-DDTHH:MM:SS', "
                                   "joined by 'and'.", "ValidationException")
            bounds = parsed
        with self._lock:
            self._arrive(skip)
            rows = self._rows if survey_id is None else self._by_survey[survey_id]
            ticks = self._ticks if survey_id is None else [r.ticks for r in rows]
            low = bisect.bisect_left(ticks, bounds[0])
            high = len(rows) if bounds[1] is None else bisect.bisect_right(ticks, bounds[1])
            high = max(low, high)
            total = high - low
            served = top if self.page_cap is None else min(top, self.page_cap)
            limit = top if self.limit_echoes_top else served
            page = rows[low + skip: min(high, low + skip + served)]
            if skip == self.short_page_at:
                page = page[:self.short_page_rows]
        fragments = []
        for row in page:
            if row.fragment is None:
                row.fragment = _dumps(row.data)
            fragments.append(row.fragment)
        # Links and Meta describe a full page of `served` rows (also on the short page).
        links: dict[str, Any] = {"Self": {"Href": self._href(path, top, skip, filter_text),
                                          "Method": "GET"}}
        if skip + served < total:
            links["Next"] = {"Href": self._href(path, top, skip + served, filter_text),
                             "Method": "GET"}
        if skip > 0:
            links["Previous"] = {"Href": self._href(path, top, max(0, skip - served),
                                                    filter_text), "Method": "GET"}
        stop = min(total, skip + served) if skip == self.short_page_at else skip + len(page)
        meta = {
            "Status": 200, "Timestamp": _now_text(), "TotalRowCount": total, "Limit": limit,
            "Offset": skip, "TotalPageCount": -(-total // limit),
            "StartRec": skip + 1 if stop > skip else 0, "StopRec": stop,
            "IsFiltered": bool(filter_text),
        }
        body = b"".join((b'{"Meta":', _dumps(meta), b',"Data":[', b",".join(fragments),
                         b'],"Links":', _dumps(links), b"}"))
        return Reply(200, body)

    def _href(self, path: str, top: int, skip: int, filter_text: str | None) -> str:
        base = self.next_link_base or self.base_url
        href = f"{base.rstrip('/')}/{path}?$top={top}&$skip={skip}"
        if filter_text:
            href += "&filter=" + quote(filter_text.lstrip("="), safe="'")
        return href

    def _post_optouts(self, body: bytes) -> Reply:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return error_reply(400, "The request body is not valid JSON.", "ValidationException")
        if not isinstance(payload, dict):
            return error_reply(400, "The request body must be an object with EmailAddresses "
                               "and/or PhoneNumbers.", "ValidationException")
        emails = payload.get("EmailAddresses") or []
        phones = payload.get("PhoneNumbers") or []
        if not isinstance(emails, list) or not isinstance(phones, list) or not all(
            isinstance(v, str) for v in [*emails, *phones]
        ):
            return error_reply(400, "EmailAddresses and PhoneNumbers must be lists of text.",
                               "ValidationException")
        if not emails and not phones:
            return error_reply(400, "Give at least one address in EmailAddresses or "
                               "PhoneNumbers.", "ValidationException")
        with self._lock:
            self.submitted.append(payload)
            # "distinct": every row its own timestamp; otherwise the whole batch shares one.
            batch_ticks = None if self.posted_optouts == "distinct" else self._next_ticks()
            for email in emails:
                if email.strip() and email_key(email) not in self._emails:
                    self._append(self._posted_row(batch_ticks, email=email.strip()))
            for phone in phones:
                if phone.strip() and phone_key(phone) not in self._phones:
                    self._append(self._posted_row(batch_ticks, phone=phone.strip()))
        return Reply(200, _envelope(200, None))

    def _next_ticks(self) -> int:
        now = ticks_of(datetime.now(UTC))
        return max(now, (self._ticks[-1] + 1) if self._ticks else now)  # strictly increasing

    def _posted_row(self, batch_ticks: int | None, *, email: str = "", phone: str = "") -> Row:
        ticks = self._next_ticks() if batch_ticks is None else batch_ticks
        contact_id: int | None
        if self.posted_optouts == "distinct":
            contact_id = self._generator.next_contact_id()
        else:
            contact_id = {"contact-zero": 0, "contact-huge": 2**64 - 1}.get(self.posted_optouts)
        data = {
            "DateOptOut": format_ticks(ticks), "LangCode": "", "ContactId": contact_id,
            "FirstName": "", "LastName": "", "Email": email or None, "Phone": phone or None,
            "CountryId": None, "OptoutSourceId": 2, "IsOptedOut": True,
        }
        return Row(ticks, contact_id or 0, data, (), email_key(email) if email else "",
                   phone_key(phone) if phone else "")

    def _append(self, row: Row) -> None:
        self._rows.append(row)
        self._ticks.append(row.ticks)
        self._index(row)
        self.hooks.optout_added(dict(row.data), tuple(row.surveys))

    def _index(self, row: Row) -> None:
        if row.email_key:
            self._emails.add(row.email_key)
        if row.phone_key:
            self._phones.add(row.phone_key)
        for survey in row.surveys:
            self._by_survey[survey].append(row)


def _parse_filter(text: str) -> tuple[int, int | None] | None:
    """`DateOptOut ge DateTime'…' [and DateOptOut lt DateTime'…']` -> inclusive tick bounds."""
    low, high = 0, None
    for clause in re.split(r"\s+and\s+", text.lstrip("="), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if not match:
            return None
        op, literal = match.group(1).lower(), match.group(2)
        try:
            ticks = _literal_ticks(literal)
        except ValueError:
            return None
        if op in ("ge", "eq"):
            low = max(low, ticks)
        if op == "gt":
            low = max(low, ticks + 1)
        if op in ("le", "eq"):
            high = ticks if high is None else min(high, ticks)
        if op == "lt":
            high = ticks - 1 if high is None else min(high, ticks - 1)
    return low, high


def _literal_ticks(literal: str) -> int:
    canonical = canonical_timestamp(literal)
    moment = datetime.strptime(canonical[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return ticks_of(moment) + int(canonical[20:27])
