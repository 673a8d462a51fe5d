"""Dynamic Yield: Reconnect opt-outs (User Data API) and the `message-optout-v1` push event.

Facts and unknowns: shared/api-notes.md section 3, seed 003. A server-side API key of one data
centre (US `dy-api.com`, EU `dy-api.eu`; they share no data) is sent as `DY-API-Key`.
- Email (and any channel's) opt-out: `POST userdata/channels/{channel}/opt-out` with
  `{"identifier": {"type": "email", "value": …}}`; one identifier per request, so a caller sends
  them concurrently (`concurrency`, default 4: the session's in-flight limit) and paced
  (`requests_per_second`, 0 = none).
- Push token opt-out: `POST collect/user/event` with one `message-optout-v1` event carrying
  `pushID` (the server-side form of seed 003, for API-only sections: `user.id` + `sessionId`).

What the docs leave open is a setting with a safe default, or said here:
- Channel names beyond `email` and `web-push` are UNKNOWN: `email_channel`, `push_channel` and
  `extra_channels` (none) are settings, and a channel not among them is refused before sending.
- Whether `associatedDevice` is needed is UNKNOWN: `send_associated_device` (off) adds
  `{"dyid": ""}`, the form public sample code sends without a device.
- Which user a push opt-out belongs to is UNKNOWN (the desk knows only the token): `user.id` and
  `sessionId` are derived from a hash of the token, so the same token always gives the same body
  (resending it is harmless and a plan's hash is stable) and no other identifier is invented.
- Status codes and bodies are UNKNOWN: any 2xx is success and its body is not read (DY may
  answer nothing at all); 401 and 403 say what kind of key is needed and where; 429 and 5xx are
  retried by the shared HTTP policy, honouring Retry-After.
- DY has no documented read call. `check()` posts an event batch with no events: a 2xx proves
  the key without sending anyone's data; any other refusal except 401/403/429/5xx is reported as
  "not proven" (`verified=False`) rather than as a failure, since DY may not take empty batches.

Error texts never carry the key or a submitted value (platform text is scrubbed of both).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from optout_desk.connectors.base import (
    CheckResult,
    KindRoute,
    Routes,
    SendResult,
    Setting,
    validate_settings,
)
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    MissingRoleError,
    PlatformError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.http import HttpPolicy, HttpSession, SessionClient, retry_after_header
from optout_desk.connectors.pacing import Pacer
from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import Identifier, IdKind
from optout_desk.core.plan import Payload, PlanItem
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken

log = logging.getLogger(__name__)

PLATFORM = "Dynamic Yield"
REGIONS: dict[str, str] = {"us": "https://dy-api.com/v2/", "eu": "https://dy-api.eu/v2/"}
SECRET_FIELDS = ("API_KEY",)
SECRET_LABELS = ("API key (server-side)",)
EVENT_PATH = "collect/user/event"
OPTOUT_EVENT = "message-optout-v1"
EVENT_NAME = "Push Opt-Out"  # seed 003's example; DY says the name is not used to identify it
IDENTIFIER_EMAIL = "email"
IDENTIFIER_PUSH = "pushID"
KEY_KIND = "server-side API key"
CHECK_ID = "optout-desk-connection-check"

_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_IDENTIFIER_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
# Shorter values are not scrubbed from platform text: no email, phone or real token is that
# short, and replacing every "t" would garble the message.
_SCRUB_MIN = 5


_CHANNEL_WHAT = "a channel name such as email or web-push"

# Declared once: the CLI flags, the Connections dialog and validation all come from these.
SETTINGS: tuple[Setting, ...] = (
    Setting("email_channel", "Email channel", str, "email",
            "the Reconnect channel email opt-outs go to", advanced=False, pattern=_CHANNEL,
            what=_CHANNEL_WHAT),
    Setting("push_channel", "Push channel", str, "web-push",
            "the channel push-token opt-outs belong to", advanced=False, pattern=_CHANNEL,
            what=_CHANNEL_WHAT),
    Setting("extra_channels", "Other channels", list, [],
            "channel names beyond email and web-push (not documented: only what your account "
            "has)", pattern=_CHANNEL, what=_CHANNEL_WHAT),
    Setting("send_associated_device", "Send associatedDevice", bool, False,
            "send an empty associatedDevice with each opt-out"),
    Setting("concurrency", "Requests at once", int, 4,
            "one identifier per request, so several are sent at once", 1, 64, advanced=False),
    Setting("requests_per_second", "Requests per second", float, 0.0,
            "pacing (0: as fast as Dynamic Yield answers; its limits are not published)",
            0, 1000),
    Setting("timeout_s", "Timeout (s)", float, 30.0, "longest wait for one answer", 1, 600),
    Setting("max_retries", "Retries", int, 5, "retries of a throttled or failed request",
            0, 20),
    Setting("max_retry_wait_s", "Longest retry wait (s)", float, 60.0,
            "a longer Retry-After is reported instead of waited out", 0, 3600),
)


@dataclass(frozen=True)
class DynamicYieldSettings:
    base_url: str = REGIONS["us"]
    email_channel: str = "email"
    push_channel: str = "web-push"
    extra_channels: tuple[str, ...] = ()
    send_associated_device: bool = False
    concurrency: int = 4
    requests_per_second: float = 0.0  # 0: no pacing
    timeout_s: float = 30.0
    max_retries: int = 5
    max_retry_wait_s: float = 60.0

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.email_channel, self.push_channel,
                                    *self.extra_channels)))

    @classmethod
    def from_mapping(cls, base_url: str, values: Mapping[str, Any]) -> DynamicYieldSettings:
        """Settings from a connection profile (the declared SETTINGS); unknown names are
        ignored, bad values refused."""
        chosen = validate_settings(SETTINGS, values)
        typed: dict[str, Any] = {name: tuple(value) if isinstance(value, list) else value
                                 for name, value in chosen.items()}
        return cls(base_url=base_url, **typed)


@dataclass(frozen=True, slots=True)
class Sent:
    """One request Dynamic Yield accepted."""

    http_status: int
    attempts: int


class DynamicYieldClient(SessionClient):
    """Talks to one Dynamic Yield data centre with one server-side key. Thread-safe: callers
    send opt-outs from several threads; the session bounds the requests in flight."""

    def __init__(self, settings: DynamicYieldSettings, api_key: str, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_key:
            raise ConfigurationError("Dynamic Yield needs the server-side API key.")
        self.settings = settings
        policy = HttpPolicy(timeout_s=settings.timeout_s, max_retries=settings.max_retries,
                            max_retry_wait_s=settings.max_retry_wait_s,
                            max_in_flight=settings.concurrency)
        headers = {"DY-API-Key": api_key, "Accept": "application/json"}
        self._session = HttpSession(settings.base_url, headers, policy, platform=PLATFORM,
                                    transport=transport)
        self._key = api_key  # only to scrub echoed text
        self._pacer = Pacer(settings.requests_per_second)

    def __repr__(self) -> str:
        return f"DynamicYieldClient({self._session.base_url})"

    # -- calls ---------------------------------------------------------------------------

    def check(self, cancel: CancelToken = NEVER_CANCELLED) -> CheckResult:
        """Post an event batch without events: proves the key without sending anyone's data.
        Raises on 401/403 (the key), 429/5xx after retries, and network failures."""
        body = {"user": {"id": CHECK_ID}, "sessionId": CHECK_ID, "events": []}
        try:
            self._send(EVENT_PATH, body, "connection check (an empty event batch)", [], cancel)
        except RejectedRequestError as exc:
            return CheckResult(
                f"Dynamic Yield ({self.host}) answered HTTP {exc.http_status} to the "
                "connection check (an empty event batch), so the key could not be proven "
                "without sending an opt-out; the first submission shows whether it is "
                "accepted.", proven=False)
        return CheckResult(f"Dynamic Yield ({self.host}) accepted the API key.")

    def send(self, payload: Payload, cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        """One frozen payload of a plan (built by DynamicYieldFormat): an email opt-out on its
        channel, or a push opt-out event."""
        if not isinstance(payload.body, dict):
            raise ConfigurationError(
                "This payload was not made for Dynamic Yield; plan the submission again.")
        if payload.route == EVENT_PATH:
            result = self.send_event(payload.body, cancel)
            what = "the push opt-out event"
        elif payload.route.startswith(CHANNEL_ROUTE):
            channel = payload.route[len(CHANNEL_ROUTE):]
            result = self.send_opt_out(channel, payload.body, cancel)
            what = f"the opt-out on channel {channel}"
        else:
            raise ConfigurationError(
                "This payload was not made for Dynamic Yield; plan the submission again.")
        return SendResult(result.http_status, f"Dynamic Yield accepted {what}.",
                          result.attempts)

    def opt_out_body(self, identifier_type: str, value: str) -> dict[str, Any]:
        """The body of one opt-out request (the same identifier always gives the same body)."""
        return opt_out_body(self.settings, identifier_type, value)

    def send_opt_out(self, channel: str, body: Mapping[str, Any],
                     cancel: CancelToken = NEVER_CANCELLED) -> Sent:
        """Send one opt-out body (from opt_out_body) on a configured channel."""
        if channel not in self.settings.channels:
            raise BadInputError(
                f"The Dynamic Yield channel '{channel}' is not configured on this connection "
                f"(configured: {', '.join(self.settings.channels)}); add it to extra_channels "
                "only if Dynamic Yield supports it.")
        identifier = body.get("identifier")
        value = identifier.get("value") if isinstance(identifier, Mapping) else None
        path = f"userdata/channels/{quote(channel, safe='')}/opt-out"
        return self._send(path, dict(body), f"opt-out on channel '{channel}'",
                          [value] if isinstance(value, str) else [], cancel)

    def opt_out(self, channel: str, identifier_type: str, value: str,
                cancel: CancelToken = NEVER_CANCELLED) -> Sent:
        return self.send_opt_out(channel, self.opt_out_body(identifier_type, value), cancel)

    def opt_out_email(self, email: str, cancel: CancelToken = NEVER_CANCELLED) -> Sent:
        return self.opt_out(self.settings.email_channel, IDENTIFIER_EMAIL, email, cancel)

    def push_event_body(self, push_id: str) -> dict[str, Any]:
        """The collect/user/event body opting one push token out (stable for a token)."""
        return push_event_body(push_id)

    def send_event(self, body: Mapping[str, Any],
                   cancel: CancelToken = NEVER_CANCELLED) -> Sent:
        """Send one collect/user/event body (from push_event_body)."""
        tokens = [str(e.get("properties", {}).get("pushID", "")) for e in body.get("events", [])
                  if isinstance(e, Mapping) and isinstance(e.get("properties"), Mapping)]
        return self._send(EVENT_PATH, dict(body), "push opt-out event", tokens, cancel)

    def push_optout(self, push_id: str, cancel: CancelToken = NEVER_CANCELLED) -> Sent:
        return self.send_event(self.push_event_body(push_id), cancel)

    # -- requests ------------------------------------------------------------------------

    def _send(self, path: str, body: dict[str, Any], what: str, values: Sequence[str],
              cancel: CancelToken) -> Sent:
        def interpret(response: httpx.Response) -> int:
            self._interpret(response, what, values)
            return response.status_code

        self._pacer.wait(cancel)
        status, attempts = self._session.request("POST", path, json=body, interpret=interpret,
                                                 cancel=cancel)
        return Sent(status, attempts)

    def _interpret(self, response: httpx.Response, what: str, values: Sequence[str]) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return  # DY may answer nothing: a 2xx is the acknowledgement
        where = f"{PLATFORM} ({self.host})"
        detail = self._detail(response, values)
        if status == 429:
            retry_after = retry_after_header(response.headers)
            after = f"{retry_after:g} s" if retry_after is not None else "a while"
            raise ThrottledError(f"{where} is rate-limiting requests for this key; try again "
                                 f"after {after}.", retry_after)
        if status == 401:
            raise AuthenticationError(
                f"{where} refused the API key (HTTP 401){detail}: use a server-side key "
                "(Dynamic Yield: Settings › API Keys) of this data centre; US keys work only "
                "on dy-api.com, EU keys only on dy-api.eu.")
        if status == 403:
            raise MissingRoleError(
                f"{where} refused the API key (HTTP 403){detail}: it must be a server-side key "
                "(a client-side key only works on the direct hosts) of this data centre, "
                "allowed to make this call.", KEY_KIND)
        if status >= 500:
            raise PlatformError(f"{where} answered HTTP {status} to the {what}{detail}; try "
                                "again later.", status, None)
        raise RejectedRequestError(f"{where} refused the {what} (HTTP {status}){detail}.",
                                   status, None)

    def _detail(self, response: httpx.Response, values: Sequence[str]) -> str:
        """The platform's own words (" (…)"), scrubbed of the key and the values sent."""
        if "json" not in response.headers.get("content-type", "").lower():
            return ""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return ""
        text = ""
        if isinstance(body, dict):
            error = body.get("error")
            errors = body.get("errors")
            if isinstance(body.get("message"), str):
                text = body["message"]
            elif isinstance(error, dict):
                text = str(error.get("message") or "")
            elif isinstance(errors, list) and errors:
                first = errors[0]
                text = str(first.get("message", "")) if isinstance(first, dict) else str(first)
            elif isinstance(error, str):
                text = error
        text = text.replace(self._key, "***")
        for value in values:
            if len(value.strip()) >= _SCRUB_MIN:
                text = re.sub(re.escape(value.strip()), "[value]", text, flags=re.IGNORECASE)
        text = " ".join(text.split())[:300]
        return f" ({text})" if text else ""


# -- request bodies and the destination's payloads (pure: planning needs no client) -----------

CHANNEL_ROUTE = "channel:"  # + the channel's name; the route of an email opt-out


def opt_out_body(settings: DynamicYieldSettings, identifier_type: str,
                 value: str) -> dict[str, Any]:
    """The body of one opt-out request (the same identifier always gives the same body)."""
    if not isinstance(identifier_type, str) or not _IDENTIFIER_TYPE.fullmatch(identifier_type):
        raise BadInputError(f"'{identifier_type}' is not an identifier type Dynamic Yield "
                            "could take (such as email or pushID).")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise BadInputError("An empty value cannot be submitted to Dynamic Yield.")
    body: dict[str, Any] = {"identifier": {"type": identifier_type, "value": text}}
    if settings.send_associated_device:
        body["associatedDevice"] = {"dyid": ""}
    return body


def push_event_body(push_id: str) -> dict[str, Any]:
    """The collect/user/event body opting one push token out (stable for a token)."""
    token = push_id.strip() if isinstance(push_id, str) else ""
    if not token:
        raise BadInputError("An empty push token cannot be submitted to Dynamic Yield.")
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]
    return {
        "user": {"id": f"optout-desk-{digest}"},
        "sessionId": f"optout-desk-{digest}",
        "events": [{"name": EVENT_NAME,
                    "properties": {"dyType": OPTOUT_EVENT, "pushID": token}}],
    }


ROUTES = Routes((KindRoute(IdKind.EMAIL, "email channel"),
                 KindRoute(IdKind.PUSH_TOKEN, "push opt-out event")))


@dataclass(frozen=True)
class DynamicYieldFormat:
    """One identifier per request (the API takes one): emails as an opt-out on the email
    channel, push tokens as a message-optout-v1 event. An email opt-out is a state, safe to
    send again after a lost answer; whether a repeated event is harmless is not documented, so
    a push event whose answer was lost is left for the operator to check."""

    settings: DynamicYieldSettings
    batch_size: int = 1

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> DynamicYieldFormat:
        return cls(DynamicYieldSettings.from_mapping(REGIONS["us"], values))

    def value_for(self, identifier: Identifier) -> str | None:
        return identifier.key if identifier.kind in ROUTES.kinds else None

    def not_taken(self, kind: IdKind) -> str:
        return ("Dynamic Yield takes email addresses (email channel) and push tokens; its "
                "SMS channel is not documented")

    def payloads(self, items: Sequence[PlanItem]) -> list[tuple[tuple[PlanItem, ...], Payload]]:
        result: list[tuple[tuple[PlanItem, ...], Payload]] = []
        for item in items:
            if item.kind is IdKind.EMAIL:
                payload = Payload(CHANNEL_ROUTE + self.settings.email_channel,
                                  opt_out_body(self.settings, IDENTIFIER_EMAIL, item.value),
                                  (item.value,), True)
            else:
                payload = Payload(EVENT_PATH, push_event_body(item.value), (item.value,),
                                  False)
            result.append(((item,), payload))
        return result
