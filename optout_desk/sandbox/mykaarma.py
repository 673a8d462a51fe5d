"""The myKaarma Communications API simulator: opt-out status updates and look-ups per department.

Follows shared/api-notes.md section 2 and seed 002 (MK-UPD): base path `/communications/`, HTTP
Basic auth, department UUIDs in the path, `POST department/{uuid}/optoutstatus` with
`communicationAttributesList[{communicationType, communicationValue, okToCommunicate,
customerUUID}]`, `event`, `updateType`, `apiCallSource`, `processSynchronously`, answered by
`{errors: [], warnings: []}`; `GET department/{uuid}/communicationType/{type}/communicationValue/
{value}/optoutstatus` and `POST department/{uuid}/communications/optoutstatus/list`. Failures of
the request's content arrive in `errors[] {errorCode, errorDescription, errorUID}` UNDER HTTP 200.

Decisions where the vendor's behaviour is UNKNOWN (switches, so tests can take either side):
- Error codes are the simulator's own (the Communications API publishes none; the names follow
  the Payments API's pattern): INVALID_DEPARTMENT, INVALID_COMMUNICATION_TYPE,
  INVALID_COMMUNICATION_VALUE, INVALID_REQUEST_DATA, INVALID_EVENT, INVALID_UPDATE_TYPE,
  TOO_MANY_COMMUNICATIONS, CUSTOMER_UUID_REQUIRED, INTERNAL_ERROR; 401 bodies carry
  NULL_CREDENTIALS / WRONG_CREDENTIAL, 403 bodies ACCESS_FORBIDDEN with "ApiScope does not exist".
  Descriptions echo the offending value, as a careless platform would: a client must scrub them.
- The HTTP status of a body-level failure is `validation_status` (200; 400 to test the other
  reading). An unknown department (or one this account may not use) is such a failure.
- An unprovisioned department answers every route with HTTP 200 and an HTML login page
  (text/html), before authentication, like the gateway the third-party notes describe.
- Scope names are UNKNOWN: the simulator invents SCOPE_UPDATE and SCOPE_READ; an account lacking
  the one a call needs gets HTTP 403 JSON containing "ApiScope does not exist".
- communicationType values: EMAIL (an email address) and TEXT (a phone in E.164); more with
  `add_communication_type`. optOutState strings: `opted_out_state` "OPTED_OUT" and
  `opted_in_state` "OPTED_IN" (switches); a value never seen is opted in, timeOfChange null.
  canSendOptinRequest is true for opted-out values (its meaning is UNKNOWN). timeOfChange is
  ISO-8601 UTC text. A look-up's `communication` echoes type and value as sent plus
  `okToCommunicate` from the state.
- How many entries one update may carry is UNKNOWN: `max_entries_per_request` (None = no limit;
  over it → TOO_MANY_COMMUNICATIONS); same for a list look-up (`max_lookup_batch`).
- Whether customerUUID is required is UNKNOWN: `require_customer_uuid` (off; on → each entry
  without its own or the body's customerUUID is CUSTOMER_UUID_REQUIRED).
- `warn_already_opted_out` (off): a success warns ALREADY_OPTED_OUT per entry already opted out.
- Whether an update with some bad entries applies the good ones is UNKNOWN: `partial_apply`
  (off: nothing is applied when errors[] is not empty).
- `event` and `updateType` are optional but must be one of the documented values when given
  (every snapshot's event names are accepted); `okToCommunicate` is required per entry.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import unquote

import orjson

from optout_desk.sandbox.checkmarket import Reply
from optout_desk.sandbox.data import Generator
from optout_desk.sandbox.loopback import LoopbackServer
from optout_desk.sandbox.service import Fault, ServiceBase, common_fault, json_reply

BASE_PATH = "communications/"
SCOPE_UPDATE = "communication.optoutstatus.update"
SCOPE_READ = "communication.optoutstatus.read"
ALL_SCOPES = frozenset({SCOPE_UPDATE, SCOPE_READ})
EVENTS = frozenset({
    "STOP_MESSAGE_RECEIVED", "STOP_SUSPECTED_MESSAGE_RECEIVED", "OPTIN_MESSAGE_RECEIVED",
    "OPTIN_TEXT_CONSENT_VIA_MESSAGE_RECEIVED", "GENERIC_MESSAGE_RECEIVED",
    "USER_REQUESTED_SEND_OPTIN_REQUEST", "USER_REQUESTED_OPT_OUT", "COMMUNICATION_VALUE_CREATION",
    "COMMUNICATION_STATUS_NOT_FOUND", "DOUBLE_OPTIN_ROLLOUT", "DOUBLE_OPTIN_ROLLBACK",
    "COMMUNICATION_VALUE_UPDATE",
})
UPDATE_TYPES = ("MESSAGE", "CUSTOMER", "DEPLOYMENT")
FAULT_KINDS = ("500", "503", "drop", "429", "html-login", "errors-under-200", "malformed")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_UPDATE = re.compile(r"^department/([^/]+)/optoutstatus$")
_LIST = re.compile(r"^department/([^/]+)/communications/optoutstatus/list$")
_ONE = re.compile(
    r"^department/([^/]+)/communicationType/([^/]+)/communicationValue/([^/]+)/optoutstatus$")
_DEPARTMENT = re.compile(r"^department/([^/]+)/")

LOGIN_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>myKaarma - Sign in</title></head>
<body><form method="post" action="/login"><h1>Sign in to myKaarma</h1>
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>
"""


@dataclass(slots=True)
class _Account:
    password: str
    scopes: frozenset[str]
    departments: frozenset[str]


@dataclass(slots=True)
class _Status:
    opted_out: bool
    time_of_change: str


@dataclass(slots=True)
class _Problems:
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def error(self, code: str, description: str) -> None:
        self.errors.append({"errorCode": code, "errorDescription": description,
                            "errorUID": str(uuid.uuid4())})

    def warning(self, code: str, description: str) -> None:
        self.warnings.append({"warningCode": code, "warningDescription": description})


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class MyKaarmaState(ServiceBase):
    """Thread-safe simulator state: accounts, departments, opt-out status per department."""

    FAULT_KINDS = FAULT_KINDS

    def __init__(self, *, latency_ms: float = 0.0, validation_status: int = 200,
                 max_entries_per_request: int | None = None,
                 max_lookup_batch: int | None = None, require_customer_uuid: bool = False,
                 warn_already_opted_out: bool = False, partial_apply: bool = False,
                 opted_out_state: str = "OPTED_OUT", opted_in_state: str = "OPTED_IN") -> None:
        super().__init__(latency_ms=latency_ms)
        self.validation_status = validation_status
        self.max_entries_per_request = max_entries_per_request
        self.max_lookup_batch = max_lookup_batch
        self.require_customer_uuid = require_customer_uuid
        self.warn_already_opted_out = warn_already_opted_out
        self.partial_apply = partial_apply
        self.opted_out_state = opted_out_state
        self.opted_in_state = opted_in_state
        self.communication_types: dict[str, str] = {"EMAIL": "email", "TEXT": "phone"}
        self._accounts: dict[str, _Account] = {}
        self._unprovisioned: set[str] = set()
        self._statuses: dict[str, dict[tuple[str, str], _Status]] = {}
        self.submitted: list[dict[str, Any]] = []  # bodies of updates that were applied

    # -- set-up --------------------------------------------------------------------------

    def add_account(self, username: str, password: str, departments: set[str] | list[str],
                    scopes: set[str] | frozenset[str] = ALL_SCOPES) -> None:
        unknown = set(scopes) - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes: {sorted(unknown)}")
        with self._lock:
            self._accounts[username] = _Account(password, frozenset(scopes),
                                                frozenset(departments))
            for department in departments:
                self._statuses.setdefault(department, {})

    def mark_unprovisioned(self, department_uuid: str) -> None:
        """Every route of this department answers the HTML login page."""
        with self._lock:
            self._unprovisioned.add(department_uuid)

    def add_communication_type(self, name: str, kind: str) -> None:
        """Accept another communicationType whose values are emails or E.164 phones."""
        if kind not in ("email", "phone"):
            raise ValueError("kind is 'email' or 'phone'")
        with self._lock:
            self.communication_types[name] = kind

    def add_optouts(self, department_uuid: str, values: list[tuple[str, str]],
                    time_of_change: str | None = None) -> int:
        """Mark (communicationType, value) pairs opted out; returns how many were new."""
        added = 0
        with self._lock:
            statuses = self._statuses.setdefault(department_uuid, {})
            for kind, value in values:
                key = (kind, self._key(kind, value))
                if not (key in statuses and statuses[key].opted_out):
                    added += 1
                statuses[key] = _Status(True, time_of_change or _now_text())
        return added

    # -- inspection ----------------------------------------------------------------------

    def opted_out(self, department_uuid: str) -> set[tuple[str, str]]:
        """(communicationType, value key) pairs opted out in this department."""
        with self._lock:
            return {k for k, s in self._statuses.get(department_uuid, {}).items()
                    if s.opted_out}

    def opted_out_values(self, department_uuid: str, communication_type: str) -> set[str]:
        return {value for kind, value in self.opted_out(department_uuid)
                if kind == communication_type}

    def state_of(self, department_uuid: str, communication_type: str, value: str) -> str:
        with self._lock:
            status = self._statuses.get(department_uuid, {}).get(
                (communication_type, self._key(communication_type, value)))
        return self.opted_out_state if status and status.opted_out else self.opted_in_state

    # -- requests ------------------------------------------------------------------------

    def _log_key(self, headers: dict[str, str]) -> str:
        credentials = _basic(headers.get("authorization", ""))
        return credentials[0] if credentials else ""

    def _fault_reply(self, fault: Fault, path: str) -> Reply:
        if fault.kind == "html-login":
            return Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
        if fault.kind == "errors-under-200":
            problems = _Problems()
            problems.error("INTERNAL_ERROR", "An unexpected error occurred while processing "
                           "the request.")
            return json_reply(200, {"errors": problems.errors, "warnings": []})
        if fault.kind == "malformed":
            return Reply(200, b'{"errors": [], "warn')
        reply = common_fault(fault)
        assert reply is not None, fault.kind
        return reply

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Reply:
        if not path.startswith(BASE_PATH):
            return self._not_found(path)
        route = path[len(BASE_PATH):]
        department_match = _DEPARTMENT.match(route)
        department = unquote(department_match.group(1)) if department_match else ""
        with self._lock:
            unprovisioned = department in self._unprovisioned
        if unprovisioned:
            return Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
        update, listing, one = _UPDATE.match(route), _LIST.match(route), _ONE.match(route)
        if not (update or listing or one):
            return self._not_found(path)
        wanted = "GET" if one else "POST"
        if method != wanted:
            return json_reply(405, {"errors": [{"errorCode": "METHOD_NOT_ALLOWED",
                                                "errorDescription": f"{method} is not allowed "
                                                f"on /{path}.", "errorUID": str(uuid.uuid4())}],
                                    "warnings": []})
        denied = self._authenticate(headers, department, SCOPE_READ if (one or listing)
                                    else SCOPE_UPDATE)
        if denied is not None:
            return denied
        if one:
            return self._lookup_one(department, unquote(one.group(2)), unquote(one.group(3)))
        payload, problem = _json_object(body)
        if payload is None:
            return self._failed(problem)
        if listing:
            return self._lookup_list(department, payload)
        return self._update(department, payload)

    def _not_found(self, path: str) -> Reply:
        return json_reply(404, {"errors": [{"errorCode": "NOT_FOUND", "errorDescription":
                                            f"No resource matches /{path}.",
                                            "errorUID": str(uuid.uuid4())}], "warnings": []})

    def _failed(self, problems: _Problems) -> Reply:
        return json_reply(self.validation_status, {"errors": problems.errors,
                                                   "warnings": problems.warnings})

    def _authenticate(self, headers: dict[str, str], department: str,
                      scope: str) -> Reply | None:
        credentials = _basic(headers.get("authorization", ""))
        problems = _Problems()
        challenge = {"WWW-Authenticate": 'Basic realm="myKaarma"'}
        if credentials is None:
            problems.error("NULL_CREDENTIALS", "No credentials were sent: use HTTP Basic "
                           "authentication.")
            return json_reply(401, {"errors": problems.errors, "warnings": []}, challenge)
        with self._lock:
            account = self._accounts.get(credentials[0])
        if account is None or not secrets.compare_digest(account.password, credentials[1]):
            problems.error("WRONG_CREDENTIAL", "The username or password is not valid.")
            return json_reply(401, {"errors": problems.errors, "warnings": []}, challenge)
        if department not in account.departments:
            problems.error("INVALID_DEPARTMENT", f"Department {department} does not exist or "
                           "is not available to this account.")
            return self._failed(problems)
        if scope not in account.scopes:
            problems.error("ACCESS_FORBIDDEN", f"ApiScope does not exist: {scope} for "
                           f"department {department}.")
            return json_reply(403, {"errors": problems.errors, "warnings": []})
        return None

    def _key(self, kind: str, value: str) -> str:
        return value.strip().lower() if self.communication_types.get(kind) == "email" else \
            value.strip()

    def _check_value(self, where: str, kind: object, value: object,
                     problems: _Problems) -> bool:
        if not isinstance(kind, str) or kind not in self.communication_types:
            problems.error("INVALID_COMMUNICATION_TYPE", f"{where}: communicationType "
                           f"'{kind}' is not one of {', '.join(self.communication_types)}.")
            return False
        if not isinstance(value, str):
            problems.error("INVALID_COMMUNICATION_VALUE", f"{where}: communicationValue is "
                           "missing.")
            return False
        if self.communication_types[kind] == "email" and not _EMAIL.match(value.strip()):
            problems.error("INVALID_COMMUNICATION_VALUE", f"{where}: communicationValue "
                           f"'{value}' is not a valid email address.")
            return False
        if self.communication_types[kind] == "phone" and not _E164.match(value.strip()):
            problems.error("INVALID_COMMUNICATION_VALUE", f"{where}: communicationValue "
                           f"'{value}' is not a phone number in E.164 format (+15551234567).")
            return False
        return True

    def _update(self, department: str, payload: dict[str, Any]) -> Reply:
        problems = _Problems()
        entries = payload.get("communicationAttributesList")
        if not isinstance(entries, list) or not entries:
            problems.error("INVALID_REQUEST_DATA", "communicationAttributesList must be a "
                           "non-empty list.")
            return self._failed(problems)
        limit = self.max_entries_per_request
        if limit is not None and len(entries) > limit:
            problems.error("TOO_MANY_COMMUNICATIONS", f"communicationAttributesList has "
                           f"{len(entries)} entries; at most {limit} are accepted per request.")
            return self._failed(problems)
        event, update_type = payload.get("event"), payload.get("updateType")
        if event is not None and event not in EVENTS:
            problems.error("INVALID_EVENT", f"event '{event}' is not a known event.")
        if update_type is not None and update_type not in UPDATE_TYPES:
            problems.error("INVALID_UPDATE_TYPE", f"updateType '{update_type}' is not one of "
                           f"{', '.join(UPDATE_TYPES)}.")
        sync = payload.get("processSynchronously")
        if sync is not None and not isinstance(sync, bool):
            problems.error("INVALID_REQUEST_DATA", "processSynchronously must be true or false.")
        body_customer = payload.get("customerUUID")
        valid: list[tuple[str, str, bool]] = []
        for number, entry in enumerate(entries):
            where = f"communicationAttributesList[{number}]"
            if not isinstance(entry, dict):
                problems.error("INVALID_REQUEST_DATA", f"{where} must be an object.")
                continue
            kind, value = entry.get("communicationType"), entry.get("communicationValue")
            if not self._check_value(where, kind, value, problems):
                continue
            ok = entry.get("okToCommunicate")
            if not isinstance(ok, bool):
                problems.error("INVALID_REQUEST_DATA", f"{where}: okToCommunicate must be "
                               "true or false.")
                continue
            if self.require_customer_uuid and not (entry.get("customerUUID") or body_customer):
                problems.error("CUSTOMER_UUID_REQUIRED", f"{where}: customerUUID is required.")
                continue
            assert isinstance(kind, str) and isinstance(value, str)
            valid.append((kind, value, ok))
        if problems.errors and not self.partial_apply:
            return self._failed(problems)
        now = _now_text()
        with self._lock:
            statuses = self._statuses.setdefault(department, {})
            for number, (kind, value, ok) in enumerate(valid):
                key = (kind, self._key(kind, value))
                before = statuses.get(key)
                if self.warn_already_opted_out and not ok and before and before.opted_out:
                    problems.warning("ALREADY_OPTED_OUT", f"communicationAttributesList["
                                     f"{number}]: the value is already opted out.")
                    continue  # an opt-out keeps the time it was first made
                statuses[key] = _Status(not ok, now)
            self.submitted.append(payload)
        status = self.validation_status if problems.errors else 200
        return json_reply(status, {"errors": problems.errors, "warnings": problems.warnings})

    def _status_json(self, department: str, kind: str, value: str) -> dict[str, Any]:
        with self._lock:
            status = self._statuses.get(department, {}).get((kind, self._key(kind, value)))
        opted_out = bool(status and status.opted_out)
        return {
            "optOutState": self.opted_out_state if opted_out else self.opted_in_state,
            "canSendOptinRequest": opted_out,
            "timeOfChange": status.time_of_change if status else None,
        }

    def _lookup_one(self, department: str, kind: str, value: str) -> Reply:
        problems = _Problems()
        if not self._check_value("communicationValue", kind, value, problems):
            return self._failed(problems)
        return json_reply(200, {"optOutStatus": self._status_json(department, kind, value),
                                "requestUUID": str(uuid.uuid4()), "errors": [],
                                "warnings": []})

    def _lookup_list(self, department: str, payload: dict[str, Any]) -> Reply:
        problems = _Problems()
        entries = payload.get("communicationList")
        if not isinstance(entries, list) or not entries:
            problems.error("INVALID_REQUEST_DATA", "communicationList must be a non-empty list.")
            return self._failed(problems)
        limit = self.max_lookup_batch
        if limit is not None and len(entries) > limit:
            problems.error("TOO_MANY_COMMUNICATIONS", f"communicationList has {len(entries)} "
                           f"entries; at most {limit} are accepted per request.")
            return self._failed(problems)
        answers: list[dict[str, Any]] = []
        types, out_state, in_state = self.communication_types, self.opted_out_state, \
            self.opted_in_state
        with self._lock:  # once per request: this loop runs 500 times per batch
            statuses = self._statuses.get(department, {})
            for number, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    problems.error("INVALID_REQUEST_DATA",
                                   f"communicationList[{number}] must be an object.")
                    continue
                kind, value = entry.get("communicationType"), entry.get("communicationValue")
                kind_of = types.get(kind) if kind.__class__ is str else None
                key = value.strip() if isinstance(value, str) else ""
                if kind_of is None or not (_EMAIL if kind_of == "email" else _E164).match(key):
                    # the rare bad value: _check_value says what is wrong with it
                    self._check_value(f"communicationList[{number}]", kind, value, problems)
                    continue
                assert isinstance(kind, str) and isinstance(value, str)
                found = statuses.get((kind, key.lower() if kind_of == "email" else key))
                opted_out = found is not None and found.opted_out
                answers.append({
                    "communication": {"communicationType": kind, "communicationValue": value,
                                      "okToCommunicate": not opted_out},
                    "optOutStatus": {
                        "optOutState": out_state if opted_out else in_state,
                        "canSendOptinRequest": opted_out,
                        "timeOfChange": found.time_of_change if found else None,
                    },
                })
        status_code = self.validation_status if problems.errors else 200
        # Valid entries are answered even beside errors: a client ignoring errors[] would
        # silently miss the others.
        return json_reply(status_code, {"optOutStatusList": answers,
                                        "requestUUID": str(uuid.uuid4()),
                                        "errors": problems.errors,
                                        "warnings": problems.warnings})


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = text.partition(":")
    return (username, password) if sep else None


def _json_object(body: bytes) -> tuple[dict[str, Any] | None, _Problems]:
    problems = _Problems()
    try:
        payload = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        problems.error("INVALID_REQUEST_DATA", "The request body is not valid JSON.")
        return None, problems
    if not isinstance(payload, dict):
        problems.error("INVALID_REQUEST_DATA", "The request body must be a JSON object.")
        return None, problems
    return payload, problems


# -- the simulator on loopback -------------------------------------------------------------


@dataclass
class MyKaarmaConfig:
    seed: int = 1
    optouts: int = 200  # pre-existing opt-outs generated in the demo department
    latency_ms: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    username: str | None = None  # demo credentials; random when None
    password: str | None = None
    validation_status: int = 200
    max_entries_per_request: int | None = None
    max_lookup_batch: int | None = None
    require_customer_uuid: bool = False
    warn_already_opted_out: bool = False
    partial_apply: bool = False
    opted_out_state: str = "OPTED_OUT"
    opted_in_state: str = "OPTED_IN"


class MyKaarmaSandbox:
    """`with MyKaarmaSandbox() as mk: mk.base_url, mk.username, mk.password,
    mk.department_uuid …`. The demo account may use `department_uuid` (with generated
    opt-outs) and `unprovisioned_department_uuid` (which answers the HTML login page);
    `unknown_department_uuid` is one no account may use."""

    def __init__(self, config: MyKaarmaConfig | None = None) -> None:
        self.config = c = config or MyKaarmaConfig()
        self.state = MyKaarmaState(
            latency_ms=c.latency_ms, validation_status=c.validation_status,
            max_entries_per_request=c.max_entries_per_request,
            max_lookup_batch=c.max_lookup_batch, require_customer_uuid=c.require_customer_uuid,
            warn_already_opted_out=c.warn_already_opted_out, partial_apply=c.partial_apply,
            opted_out_state=c.opted_out_state, opted_in_state=c.opted_in_state,
        )
        rng = random.Random(f"mykaarma-{c.seed}")
        self.department_uuid, self.unprovisioned_department_uuid, self.unknown_department_uuid = (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3))
        self.username = c.username or "sbx-mk-" + secrets.token_hex(4)
        self.password = c.password or "sbx-pw-" + secrets.token_hex(8)
        self.state.add_account(self.username, self.password,
                               [self.department_uuid, self.unprovisioned_department_uuid])
        self.state.mark_unprovisioned(self.unprovisioned_department_uuid)
        self._seed_optouts(c.seed, c.optouts)
        self._server = LoopbackServer(self.state, host=c.host, port=c.port, name="mykaarma")

    def _seed_optouts(self, seed: int, count: int) -> None:
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        for row in Generator(seed + 2000, 0, end).generate(count):
            when = str(row.data["DateOptOut"])
            pairs = ([("EMAIL", row.email_key)] if row.email_key else []) + (
                [("TEXT", row.phone_key)] if row.phone_key else [])
            self.state.add_optouts(self.department_uuid, pairs, when)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT/communications/ once started; "" before."""
        origin = self._server.origin
        return f"{origin}/{BASE_PATH}" if origin else ""

    def start(self) -> Self:
        self._server.start()
        self.state.base_url = self.base_url
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MyKaarmaSandbox(base_url={self.base_url!r})"
