"""myKaarma Communications API: update opt-out status, and look it up per value.

Facts and unknowns: shared/api-notes.md section 2, seed 002. HTTP Basic auth with the
ServiceSubscriber username and password myKaarma provisions; every call is scoped to one
department UUID (a setting of the connection). Failures arrive in `errors[]` even under HTTP 200,
so every answer's `errors[]` is read; `warnings[]` are kept for the receipt.

What the docs leave open is a setting with a safe default, never a guess:
- `email_type` / `phone_type` ("EMAIL" / "TEXT"): the communicationType names (UNKNOWN enum).
- `entries_per_request` (1): how many values one update may carry is UNKNOWN, so one request
  per value until the operator raises it. `lookup_batch_size` (100) likewise for look-ups.
- `send_customer_uuid` (off) / `customer_uuid`: whether customerUUID is required is UNKNOWN.
  When on, each entry carries its own customer UUID or the connection's.
- `event` ("USER_REQUESTED_OPT_OUT"), `update_type` ("CUSTOMER"), `process_synchronously`
  (true), `api_call_source` ("optout-desk"): the notes' inference for a bulk opt-out tool.
- `opted_out_states` ("OPTED_OUT") / `opted_in_states` ("OPTED_IN"): the optOutState strings are
  UNKNOWN. A state in neither list falls back to `okToCommunicate` when the answer carries one,
  else the status is reported as unknown (`opted_out is None`), never guessed.
- Which scope names the opt-out calls need is UNKNOWN: a 403 names the operation instead.
- A 200 whose body is an HTML page (the login page of a route the account is not provisioned
  for) is a RouteNotProvisionedError: Content-Type is checked before anything is parsed.
- HTTP status of validation failures is UNKNOWN: errors[] are read under any status.
- Look-up answers are matched to the values asked by type and value (the platform may change
  an email's case); a value left unanswered fails the batch (a count that does not reconcile).
- `check()` looks up the status of one harmless reserved address (connection-check@example.com)
  with the GET form: it proves the credentials, the department, that its route is provisioned
  and the read scope. The update scope can only show on the first update (a 403 naming it).

Error texts never carry the username, the password or a submitted value: the platform's
descriptions are scrubbed of them (they may echo the offending value).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx
import orjson

from optout_desk.connectors.base import (
    CheckResult,
    KindRoute,
    LookupAnswer,
    Routes,
    SendResult,
    Setting,
    validate_settings,
)
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponseError,
    MissingRoleError,
    PayloadRejectedError,
    PlatformError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.http import HttpPolicy, HttpSession, SessionClient, retry_after_header
from optout_desk.connectors.pacing import Pacer
from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.identifiers import Identifier, IdKind
from optout_desk.core.plan import Payload, PlanItem, chunked
from optout_desk.core.progress import (
    NEVER_CANCELLED,
    CancelToken,
    Progress,
    ProgressCallback,
    no_progress,
)
from optout_desk.core.wording import counted

log = logging.getLogger(__name__)

PLATFORM = "myKaarma"
DEFAULT_BASE_URL = "https://api.mykaarma.com/communications/"
SECRET_FIELDS = ("USERNAME", "PASSWORD")
SECRET_LABELS = ("Username", "Password")
KINDS = ("email", "phone")
UPDATE_TYPES = ("MESSAGE", "CUSTOMER", "DEPLOYMENT")
OPERATION_UPDATE = "updating opt-out status"
OPERATION_READ = "reading opt-out status"
CHECK_VALUE = "connection-check@example.com"  # RFC 2606 reserved: nobody's address

_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")
_SOURCE = re.compile(r"[^\x00-\x1f]{1,100}")
_SHOWN_ERRORS = 5
# Shorter values are not scrubbed from platform text: no email or phone is that short, and
# replacing every "a" would garble the message.
_SCRUB_MIN = 5


# Declared once: the CLI flags, the Connections dialog and validation all come from these.
SETTINGS: tuple[Setting, ...] = (
    Setting("department_uuid", "Department UUID", str, "",
            "the department every call is made for (your myKaarma representative gives it)",
            required=True, advanced=False, pattern=_UUID,
            what="the department UUID (letters, digits and dashes)"),
    Setting("email_type", "communicationType for emails", str, "EMAIL",
            "myKaarma's name for email (its list of types is not published)",
            advanced=False, pattern=_TOKEN, what="a communicationType name such as EMAIL"),
    Setting("phone_type", "communicationType for phones", str, "TEXT",
            "myKaarma's name for text messages (its list of types is not published)",
            advanced=False, pattern=_TOKEN, what="a communicationType name such as TEXT"),
    Setting("entries_per_request", "Values per request", int, 1,
            "how many values one update carries (not documented: one until you know more)",
            1, 10_000, advanced=False),
    Setting("send_customer_uuid", "Send a customer UUID", bool, False,
            "whether customerUUID is required is not documented", advanced=False),
    Setting("customer_uuid", "Customer UUID", str, "", "sent when a value has none of its own",
            pattern=_UUID, what="a customer UUID (letters, digits and dashes)"),
    Setting("event", "Event", str, "USER_REQUESTED_OPT_OUT", "the update's event",
            pattern=_TOKEN, what="an event name such as USER_REQUESTED_OPT_OUT"),
    Setting("update_type", "Update type", str, "CUSTOMER", "the update's updateType",
            choices=UPDATE_TYPES),
    Setting("api_call_source", "API call source", str, "optout-desk",
            "how updates name their sender", pattern=_SOURCE,
            what="a short text naming this tool"),
    Setting("process_synchronously", "Process synchronously", bool, True,
            "ask myKaarma to apply each update before answering"),
    Setting("lookup_batch_size", "Values per look-up", int, 100,
            "how many values one status look-up asks about", 1, 10_000),
    Setting("opted_out_states", "optOutState meaning opted out", list, ["OPTED_OUT"],
            "the state names are not documented", pattern=_TOKEN,
            what="optOutState names such as OPTED_OUT"),
    Setting("opted_in_states", "optOutState meaning opted in", list, ["OPTED_IN"],
            "the state names are not documented", pattern=_TOKEN,
            what="optOutState names such as OPTED_IN"),
    Setting("lookup_max_age_hours", "Reuse answers for (hours)", float, 24.0,
            "a look-up answer younger than this is not asked again", 0, 8760),
    Setting("concurrency", "Requests at once", int, 4, "requests in flight", 1, 32),
    Setting("requests_per_second", "Requests per second", float, 0.0,
            "pacing (0: as fast as myKaarma answers; its limits are not published)", 0, 1000),
    Setting("timeout_s", "Timeout (s)", float, 30.0, "longest wait for one answer", 1, 600),
    Setting("max_retries", "Retries", int, 5, "retries of a throttled or failed request",
            0, 20),
    Setting("max_retry_wait_s", "Longest retry wait (s)", float, 60.0,
            "a longer Retry-After is reported instead of waited out", 0, 3600),
)


@dataclass(frozen=True)
class MyKaarmaSettings:
    base_url: str = DEFAULT_BASE_URL
    department_uuid: str = ""
    email_type: str = "EMAIL"
    phone_type: str = "TEXT"
    event: str = "USER_REQUESTED_OPT_OUT"
    update_type: str = "CUSTOMER"
    api_call_source: str = "optout-desk"
    process_synchronously: bool = True
    send_customer_uuid: bool = False
    customer_uuid: str = ""
    entries_per_request: int = 1
    lookup_batch_size: int = 100
    opted_out_states: tuple[str, ...] = ("OPTED_OUT",)
    opted_in_states: tuple[str, ...] = ("OPTED_IN",)
    concurrency: int = 4
    requests_per_second: float = 0.0  # 0: no pacing
    timeout_s: float = 30.0
    max_retries: int = 5
    max_retry_wait_s: float = 60.0

    @classmethod
    def from_mapping(cls, base_url: str, values: Mapping[str, Any]) -> MyKaarmaSettings:
        """Settings from a connection profile (the declared SETTINGS); unknown names are
        ignored, bad values refused. The department UUID is required."""
        chosen = validate_settings(SETTINGS, values, require=False)
        known = {f.name for f in fields(cls)}
        typed: dict[str, Any] = {name: tuple(value) if isinstance(value, list) else value
                                 for name, value in chosen.items() if name in known}
        settings = cls(base_url=base_url, **typed)
        if not settings.department_uuid:
            raise ConfigurationError(
                "myKaarma needs the department UUID (your myKaarma representative gives it): "
                "set it on the connection (--department-uuid).")
        if settings.email_type == settings.phone_type:
            raise ConfigurationError("email_type and phone_type must be different "
                                     "communicationType names.")
        overlap = {s.upper() for s in settings.opted_out_states} & {
            s.upper() for s in settings.opted_in_states}
        if overlap:
            raise ConfigurationError(f"The optOutState {', '.join(sorted(overlap))} cannot "
                                     "mean both opted out and opted in.")
        return settings


@dataclass(frozen=True, slots=True)
class Communication:
    """One value to update or look up: kind "email" (an address) or "phone" (E.164)."""

    kind: str
    value: str
    customer_uuid: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One entry of myKaarma's errors[] or warnings[] (description scrubbed)."""

    code: str
    description: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.description}" if self.description else self.code


@dataclass(frozen=True, slots=True)
class UpdateResult:
    entries: int
    warnings: tuple[Notice, ...]
    attempts: int
    http_status: int


class OptOutStatus(NamedTuple):
    """One value's status. A NamedTuple: a look-up makes one per value, 100k at a time."""

    kind: str
    value: str  # as asked
    state: str | None  # myKaarma's optOutState, verbatim
    opted_out: bool | None  # None: the state is not one the settings name
    can_send_optin_request: bool | None
    time_of_change: str | None  # verbatim


class MyKaarmaRequestError(RejectedRequestError):
    """myKaarma answered errors[] (under HTTP 200 or a 4xx): the request failed as a whole and
    sending it again unchanged will fail again."""

    def __init__(self, message: str, errors: tuple[Notice, ...], http_status: int) -> None:
        super().__init__(message, http_status, None)
        self.errors = errors

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.errors)


class RouteNotProvisionedError(RejectedRequestError):
    """myKaarma answered a web page (its login page) instead of JSON: the account is not
    provisioned for this route on this department."""


class MyKaarmaClient(SessionClient):
    """Talks to one myKaarma department with one ServiceSubscriber account. Thread-safe."""

    def __init__(self, settings: MyKaarmaSettings, username: str, password: str, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not username or not password:
            raise ConfigurationError("myKaarma needs both the username and the password.")
        if not settings.department_uuid:
            raise ConfigurationError("myKaarma needs the department UUID (--department-uuid).")
        self.settings = settings
        policy = HttpPolicy(timeout_s=settings.timeout_s, max_retries=settings.max_retries,
                            max_retry_wait_s=settings.max_retry_wait_s,
                            max_in_flight=settings.concurrency)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self._session = HttpSession(settings.base_url, headers, policy, platform=PLATFORM,
                                    transport=transport)
        self._secrets = (username, password, token)  # only to scrub echoed text
        self._pacer = Pacer(settings.requests_per_second)
        self._department = settings.department_uuid
        self._prefix = f"department/{quote(settings.department_uuid, safe='')}/"
        self._types = {"email": settings.email_type, "phone": settings.phone_type}
        self._kinds = {settings.email_type.upper(): "email", settings.phone_type.upper(): "phone"}
        self._out_states = frozenset(s.upper() for s in settings.opted_out_states)
        self._in_states = frozenset(s.upper() for s in settings.opted_in_states)
        # optOutState text -> its meaning: a look-up reads the same few strings 100k times
        self._meanings: dict[str | None, bool | None] = {}

    def __repr__(self) -> str:
        return f"MyKaarmaClient({self._session.base_url}, department {self._department})"

    # -- calls ---------------------------------------------------------------------------

    def check(self, cancel: CancelToken = NEVER_CANCELLED) -> CheckResult:
        """Prove the credentials, the department, its route and the read scope with one GET
        look-up of a reserved address; a sentence saying so."""
        self.lookup_one("email", CHECK_VALUE, cancel=cancel)
        return CheckResult(
            f"myKaarma ({self.host}) accepted the username and password and answers opt-out "
            f"status look-ups for department {self._department}.")

    # -- the connector contract ------------------------------------------------------------

    def send(self, payload: Payload, cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        """One frozen payload of a plan (built by MyKaarmaFormat) as one update. errors[]
        about its values fail this payload only (PayloadRejectedError); the others go on."""
        if payload.route != UPDATE_ROUTE or not isinstance(payload.body, dict):
            raise ConfigurationError(
                "This payload was not made for myKaarma; plan the submission again.")
        try:
            result = self.send_update(payload.body, cancel)
        except MyKaarmaRequestError as exc:
            raise PayloadRejectedError(exc.message, exc.http_status, None, exc.codes) from None
        count = result.entries
        return SendResult(result.http_status,
                          f"myKaarma accepted {count} value{'s' if count != 1 else ''}.",
                          result.attempts, None, tuple(str(w) for w in result.warnings))

    def lookup(self, identifiers: Sequence[tuple[IdKind, str]], *,
               progress: ProgressCallback = no_progress,
               cancel: CancelToken = NEVER_CANCELLED) -> dict[tuple[IdKind, str], LookupAnswer]:
        """Which of `identifiers` (kind, normalised key) myKaarma holds as opted out. A state
        the settings do not name is reported as not opted out, with its state kept."""
        entries = [Communication(_KIND_NAMES[kind], value) for kind, value in identifiers
                   if kind in _KIND_NAMES]
        statuses = self.lookup_statuses(entries, progress=progress, cancel=cancel)
        return {
            (kind, value): LookupAnswer(bool(status.opted_out), status.state or "",
                                        status.time_of_change)
            for (kind, value), status in zip(
                ((k, v) for k, v in identifiers if k in _KIND_NAMES), statuses, strict=True)
        }

    def update_payloads(self, entries: Sequence[Communication]) -> list[dict[str, Any]]:
        """The update bodies for `entries`: `entries_per_request` values each, all opted out."""
        return update_bodies(self.settings, entries)

    def send_update(self, payload: Mapping[str, Any],
                    cancel: CancelToken = NEVER_CANCELLED) -> UpdateResult:
        """Send one update body (from update_payloads). Setting a value opted out again is
        harmless, so the shared policy's retries of transient failures are safe."""
        entries = payload.get("communicationAttributesList")
        values = [str(e.get("communicationValue", "")) for e in entries or []
                  if isinstance(e, Mapping)]
        what = f"opt-out update of {counted(len(values), 'value')}"

        def interpret(response: httpx.Response) -> tuple[tuple[Notice, ...], int]:
            body = self._interpret(response, OPERATION_UPDATE, what, values)
            return self._notices(body.get("warnings"), values), response.status_code

        self._pacer.wait(cancel)
        (warnings, status), attempts = self._session.request(
            "POST", self._prefix + "optoutstatus", json=dict(payload), interpret=interpret,
            cancel=cancel)
        log.info("myKaarma update: %d value(s), %d warning(s), %d attempt(s)", len(values),
                 len(warnings), attempts)
        return UpdateResult(len(values), warnings, attempts, status)

    def update_optout_status(self, entries: Sequence[Communication],
                             cancel: CancelToken = NEVER_CANCELLED) -> UpdateResult:
        """Opt `entries` out in ONE request; more than `entries_per_request` values is refused
        (send update_payloads() one by one instead)."""
        payloads = self.update_payloads(entries)
        if len(payloads) > 1:
            raise BadInputError(
                f"{len(entries)} values need {len(payloads)} myKaarma requests at "
                f"{self.settings.entries_per_request} per request; send them one payload at "
                "a time.")
        return self.send_update(payloads[0], cancel)

    def lookup_one(self, kind: str, value: str,
                   cancel: CancelToken = NEVER_CANCELLED) -> OptOutStatus:
        """The opt-out status of one value (the GET form)."""
        communication_type = self._type_of(kind)
        path = (f"{self._prefix}communicationType/{quote(communication_type, safe='')}/"
                f"communicationValue/{quote(value.strip(), safe='')}/optoutstatus")

        def interpret(response: httpx.Response) -> OptOutStatus:
            body = self._interpret(response, OPERATION_READ, "opt-out status look-up",
                                   [value])
            status = body.get("optOutStatus")
            if not isinstance(status, dict):
                raise MalformedResponseError(
                    f"myKaarma ({self.host}) answered a look-up without an optOutStatus.")
            return self._status(kind, value, status, None)

        self._pacer.wait(cancel)
        result, _ = self._session.request("GET", path, interpret=interpret, cancel=cancel)
        return result

    def lookup_batch(self, entries: Sequence[Communication],
                     cancel: CancelToken = NEVER_CANCELLED) -> list[OptOutStatus]:
        """The statuses of `entries` (at most lookup_batch_size) in one list request, in the
        order asked."""
        if not entries:
            return []
        if len(entries) > self.settings.lookup_batch_size:
            raise BadInputError(f"{len(entries)} values exceed the look-up batch size of "
                                f"{self.settings.lookup_batch_size}; use lookup().")
        asked = [self._lookup_entry(e) for e in entries]
        values = [e.value for e in entries]

        def interpret(response: httpx.Response) -> list[OptOutStatus]:
            what = f"opt-out status look-up of {counted(len(values), 'value')}"
            body = self._interpret(response, OPERATION_READ, what, values)
            return self._match(entries, body.get("optOutStatusList"))

        self._pacer.wait(cancel)
        result, _ = self._session.request(
            "POST", self._prefix + "communications/optoutstatus/list",
            json={"communicationList": asked}, interpret=interpret, cancel=cancel)
        return result

    def lookup_statuses(self, entries: Sequence[Communication], *,
                        progress: ProgressCallback = no_progress,
                        cancel: CancelToken = NEVER_CANCELLED) -> list[OptOutStatus]:
        """The statuses of any number of values, in batches of lookup_batch_size sent
        `concurrency` at a time; in the order asked. A failed batch fails the look-up."""
        size = self.settings.lookup_batch_size
        batches = [entries[i:i + size] for i in range(0, len(entries), size)]
        if not batches:
            return []
        results: dict[int, list[OptOutStatus]] = {}
        done_values = 0
        workers = max(1, min(self.settings.concurrency, len(batches)))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="mykaarma-lookup")
        try:
            pending: dict[Future[list[OptOutStatus]], int] = {
                pool.submit(self.lookup_batch, batch, cancel): number
                for number, batch in enumerate(batches)
            }
            while pending:
                finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in finished:
                    number = pending.pop(future)
                    results[number] = future.result()
                    done_values += len(results[number])
                    progress(Progress(done=len(results), total=len(batches), unit="batches",
                                      records=done_values))
                if cancel.cancelled:
                    raise Cancelled()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [status for number in range(len(batches)) for status in results[number]]

    # -- payloads ------------------------------------------------------------------------

    def _type_of(self, kind: str) -> str:
        return _type_of(self.settings, kind)

    def _customer(self, entry: Communication) -> str:
        return entry.customer_uuid or self.settings.customer_uuid

    def _lookup_entry(self, entry: Communication) -> dict[str, Any]:
        asked: dict[str, Any] = {"communicationType": self._type_of(entry.kind),
                                 "communicationValue": entry.value.strip()}
        if self.settings.send_customer_uuid and self._customer(entry):
            asked["customerUUID"] = self._customer(entry)
        return asked

    # -- answers -------------------------------------------------------------------------

    def _match(self, entries: Sequence[Communication], answers: object) -> list[OptOutStatus]:
        if not isinstance(answers, list):
            raise MalformedResponseError(
                f"myKaarma ({self.host}) answered a look-up without an optOutStatusList.")
        if len(answers) == len(entries):
            in_order = self._match_in_order(entries, answers)
            if in_order is not None:
                return in_order
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        unnamed: list[dict[str, Any]] = []
        for item in answers:
            if not isinstance(item, dict) or not isinstance(item.get("optOutStatus"), dict):
                raise MalformedResponseError(
                    f"myKaarma ({self.host}) answered a look-up item without an optOutStatus.")
            communication = item.get("communication")
            kind = self._kinds.get(str(communication.get("communicationType", "")).upper()) \
                if isinstance(communication, dict) else None
            value = communication.get("communicationValue") \
                if isinstance(communication, dict) else None
            if kind is None or not isinstance(value, str):
                unnamed.append(item)
            else:
                by_key[(kind, _match_key(kind, value))] = item
        statuses: list[OptOutStatus] = []
        for position, entry in enumerate(entries):
            item = by_key.get((entry.kind, _match_key(entry.kind, entry.value)))
            if item is None and unnamed and len(answers) == len(entries):
                item = answers[position]  # no echo to match on: the platform's order
            if item is None:
                raise MalformedResponseError(
                    f"myKaarma ({self.host}) answered "
                    f"{counted(len(answers), 'status', 'statuses')} for "
                    f"{counted(len(entries), 'value')} asked, and value {position + 1} of the "
                    "batch has none; nothing of this batch was used.")
            communication = item.get("communication")
            statuses.append(self._status(entry.kind, entry.value, item["optOutStatus"],
                                         communication if isinstance(communication, dict)
                                         else None))
        return statuses

    def _match_in_order(self, entries: Sequence[Communication],
                        answers: list[Any]) -> list[OptOutStatus] | None:
        """The usual answer, one item per value in the order asked, read in one pass; None
        when any item does not echo the value asked in its place (then _match pairs them)."""
        kinds, status_of = self._kinds, self._status
        statuses: list[OptOutStatus] = []
        append = statuses.append
        try:
            for entry, item in zip(entries, answers, strict=True):
                communication = item["communication"]
                echoed = communication["communicationValue"]
                asked = entry.value.strip()
                if (echoed != asked and echoed.lower() != asked.lower()) or kinds.get(
                        communication["communicationType"].upper()) != entry.kind:
                    return None
                status = item["optOutStatus"]
                if status.__class__ is not dict:
                    return None
                append(status_of(entry.kind, entry.value, status, communication))
        except (KeyError, TypeError, AttributeError):
            return None
        return statuses

    def _meaning(self, state: str | None) -> bool | None:
        """What an optOutState says under the settings: True, False, or None (not named)."""
        if state is None:
            return None
        upper = state.upper()
        if upper in self._out_states:
            return True
        return False if upper in self._in_states else None

    def _status(self, kind: str, value: str, status: dict[str, Any],
                communication: dict[str, Any] | None) -> OptOutStatus:
        state = status.get("optOutState")
        state_text = state if isinstance(state, str) else None
        meanings = self._meanings
        if state_text in meanings:
            opted_out = meanings[state_text]
        else:
            opted_out = meanings.setdefault(state_text, self._meaning(state_text))
        if opted_out is None:
            ok = status.get("okToCommunicate")
            if not isinstance(ok, bool) and communication is not None:
                ok = communication.get("okToCommunicate")
            if isinstance(ok, bool):
                opted_out = not ok
        can_optin = status.get("canSendOptinRequest")
        changed = status.get("timeOfChange")
        return OptOutStatus(kind, value, state_text, opted_out,
                            can_optin if can_optin.__class__ is bool else None,
                            changed if changed is None or changed.__class__ is str
                            else str(changed))

    def _interpret(self, response: httpx.Response, operation: str, what: str,
                   values: Sequence[str]) -> dict[str, Any]:
        """The parsed JSON object, or the typed error this response means."""
        status = response.status_code
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        body = _json_or_none(response) if "json" in kind else None
        if 200 <= status < 300 and isinstance(body, dict) and not body.get("errors"):
            return body  # the usual answer: nothing below applies to it
        detail = self._detail(body, values)
        where = f"myKaarma ({self.host})"
        if status == 429:
            retry_after = retry_after_header(response.headers)
            after = f"{retry_after:g} s" if retry_after is not None else "a while"
            raise ThrottledError(f"{where} is rate-limiting requests for this account; try "
                                 f"again after {after}.", retry_after)
        if status == 401:
            raise AuthenticationError(
                f"{where} refused the Username and Password: check both (they are the "
                "ServiceSubscriber account myKaarma provisioned for you) and that the account "
                f"is active{detail}.")
        if status == 403:
            raise MissingRoleError(
                f"{where} accepted the Username and Password, but the account lacks the API "
                f"scope for {operation} on department {self._department}{detail}; ask your "
                "myKaarma representative to grant it.", operation)
        if status >= 500:
            raise PlatformError(f"{where} answered HTTP {status} to the {what}{detail}; try "
                                "again later.", status, None)
        looks_html = kind == "text/html" or (
            "json" not in kind and response.content.lstrip()[:1] == b"<")
        if looks_html and status < 400:
            raise RouteNotProvisionedError(
                f"{where} answered the {what} with a web page (its login page) instead of "
                f"JSON: the account is not provisioned for this API route on department "
                f"{self._department}; ask your myKaarma representative to enable it.",
                status, None)
        errors = self._notices(body.get("errors"), values) if isinstance(body, dict) else ()
        if errors:
            shown = "; ".join(str(e) for e in errors[:_SHOWN_ERRORS])
            more = (f" (and {len(errors) - _SHOWN_ERRORS} more)"
                    if len(errors) > _SHOWN_ERRORS else "")
            raise MyKaarmaRequestError(
                f"{where} refused the {what} for department {self._department} under HTTP "
                f"{status}: {shown}{more}.", errors, status)
        if status >= 300:
            raise RejectedRequestError(f"{where} refused the {what} (HTTP {status}){detail}.",
                                       status, None)
        if not isinstance(body, dict):
            raise MalformedResponseError(
                f"{where} answered the {what} with HTTP {status} but not the JSON object it "
                f"documents ({kind or 'no content type'}); check the base URL points at "
                "the Communications API.")
        return body

    def _scrub(self, text: str, values: Sequence[str]) -> str:
        if not text:
            return text
        for secret in self._secrets:
            text = text.replace(secret, "***")
        for value in values:
            value = value.strip()
            if len(value) >= _SCRUB_MIN:
                text = re.sub(re.escape(value), "[value]", text, flags=re.IGNORECASE)
        return " ".join(text.split())[:300]

    def _notices(self, items: object, values: Sequence[str]) -> tuple[Notice, ...]:
        if not isinstance(items, list):
            return ()
        notices = []
        for item in items:
            if isinstance(item, dict):
                code = item.get("errorCode", item.get("warningCode"))
                text = item.get("errorDescription", item.get("warningDescription"))
                uid = item.get("errorUID")
                notices.append(Notice(self._scrub(str(code or "UNKNOWN"), values),
                                      self._scrub(str(text or ""), values),
                                      str(uid) if uid else ""))
            elif item:
                notices.append(Notice("UNKNOWN", self._scrub(str(item), values)))
        return tuple(notices)

    def _detail(self, body: object, values: Sequence[str]) -> str:
        """The platform's own words (": …"), scrubbed; "" when it gave none."""
        text = ""
        if isinstance(body, dict):
            errors = self._notices(body.get("errors"), values)
            if errors:
                text = "; ".join(str(e) for e in errors[:_SHOWN_ERRORS])
            else:
                text = str(body.get("message") or body.get("error") or "")
                text = self._scrub(text, values)
        return f" ({text})" if text else ""


def _match_key(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    return "".join(ch for ch in value if ch.isdigit() or ch == "+")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


# -- request bodies and the destination's payloads (pure: planning needs no client) -----------

UPDATE_ROUTE = "optoutstatus"
_KIND_NAMES = {IdKind.EMAIL: "email", IdKind.PHONE: "phone"}


def _type_of(settings: MyKaarmaSettings, kind: str) -> str:
    if kind == "email":
        return settings.email_type
    if kind == "phone":
        return settings.phone_type
    raise BadInputError(f"myKaarma takes email addresses and phone numbers, not '{kind}'.")


def _attribute(settings: MyKaarmaSettings, entry: Communication) -> dict[str, Any]:
    value = entry.value.strip() if isinstance(entry.value, str) else ""
    if not value:
        raise BadInputError("An empty value cannot be submitted to myKaarma.")
    attribute: dict[str, Any] = {"communicationType": _type_of(settings, entry.kind),
                                 "communicationValue": value, "okToCommunicate": False}
    if settings.send_customer_uuid:
        customer = entry.customer_uuid or settings.customer_uuid
        if not customer:
            raise BadInputError(
                "This myKaarma connection sends a customerUUID with every value, but a "
                "value has none: set the connection's customer UUID, or turn "
                "send_customer_uuid off.")
        attribute["customerUUID"] = customer
    return attribute


def update_bodies(settings: MyKaarmaSettings,
                  entries: Sequence[Communication]) -> list[dict[str, Any]]:
    """The update bodies for `entries`: `entries_per_request` values each, all opted out."""
    attributes = [_attribute(settings, e) for e in entries]
    if not attributes:
        raise BadInputError("Nothing to submit: no email addresses and no phone numbers.")
    size = settings.entries_per_request
    bodies = []
    for start in range(0, len(attributes), size):
        body: dict[str, Any] = {
            "communicationAttributesList": attributes[start:start + size],
            "event": settings.event, "updateType": settings.update_type,
            "apiCallSource": settings.api_call_source,
            "processSynchronously": settings.process_synchronously,
        }
        if settings.send_customer_uuid and settings.customer_uuid:
            body["customerUUID"] = settings.customer_uuid
        bodies.append(body)
    return bodies


# Operator words, not the communicationType names (those are settings: "TEXT" may be "SMS").
ROUTES = Routes((KindRoute(IdKind.EMAIL, "email opt-out status"),
                 KindRoute(IdKind.PHONE, "text opt-out status")))


@dataclass(frozen=True)
class MyKaarmaFormat:
    """Update bodies of `entries_per_request` values each (emails as their normalised key,
    phones in E.164), all okToCommunicate false. Setting a value opted out again is harmless,
    so a payload whose answer a crash lost is safe to send again."""

    settings: MyKaarmaSettings

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> MyKaarmaFormat:
        return cls(MyKaarmaSettings.from_mapping(DEFAULT_BASE_URL, values))

    @property
    def batch_size(self) -> int:
        return self.settings.entries_per_request

    def value_for(self, identifier: Identifier) -> str | None:
        return identifier.key if identifier.kind in _KIND_NAMES else None

    def not_taken(self, kind: IdKind) -> str:
        return "myKaarma takes only email addresses and phone numbers"

    def payloads(self, items: Sequence[PlanItem]) -> list[tuple[tuple[PlanItem, ...], Payload]]:
        result = []
        for group in chunked(items, self.settings.entries_per_request):
            [body] = update_bodies(self.settings, [
                Communication(_KIND_NAMES[item.kind], item.value) for item in group])
            result.append((group, Payload(UPDATE_ROUTE, body,
                                          tuple(item.value for item in group), True)))
        return result
