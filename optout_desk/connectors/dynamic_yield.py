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
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from optout_desk.connectors import setting_values as sv
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    MissingRoleError,
    PlatformError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.http import HttpPolicy, HttpSession, retry_after_header
from optout_desk.connectors.pacing import Pacer
from optout_desk.core.errors import BadInputError
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
        """Settings from a connection profile; unknown names are ignored, bad values refused."""
        limits: dict[str, tuple[type, float, float]] = {
            "concurrency": (int, 1, 64), "requests_per_second": (float, 0, 1000),
            "timeout_s": (float, 1, 600), "max_retries": (int, 0, 20),
            "max_retry_wait_s": (float, 0, 3600),
        }
        what = "a channel name such as email or web-push"
        chosen: dict[str, Any] = {}
        for name in (f.name for f in fields(cls) if f.name != "base_url"):
            value = values.get(name)
            if value is None:
                continue
            if name in limits:
                kind, low, high = limits[name]
                chosen[name] = sv.number(name, value, kind, low, high)
            elif name == "send_associated_device":
                chosen[name] = sv.flag(name, value)
            elif name == "extra_channels":
                chosen[name] = sv.names(name, value, _CHANNEL, what)
            else:
                chosen[name] = sv.name(name, value, _CHANNEL, what)
        return cls(base_url=base_url, **chosen)


@dataclass(frozen=True, slots=True)
class SendResult:
    http_status: int
    attempts: int


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    verified: bool  # False: DY answered, but the key could not be proven without real data
    message: str


class DynamicYieldClient:
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

    @property
    def host(self) -> str:
        return self._session.host

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> DynamicYieldClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------

    def check(self, cancel: CancelToken = NEVER_CANCELLED) -> CheckOutcome:
        """Post an event batch without events: proves the key without sending anyone's data.
        Raises on 401/403 (the key), 429/5xx after retries, and network failures."""
        body = {"user": {"id": CHECK_ID}, "sessionId": CHECK_ID, "events": []}
        try:
            self._send(EVENT_PATH, body, "connection check (an empty event batch)", [], cancel)
        except RejectedRequestError as exc:
            return CheckOutcome(False, (
                f"Dynamic Yield ({self.host}) answered HTTP {exc.http_status} to the connection "
                "check (an empty event batch), so the key could not be proven without sending "
                "an opt-out; the first submission shows whether it is accepted."))
        return CheckOutcome(True, f"Dynamic Yield ({self.host}) accepted the API key.")

    def opt_out_body(self, identifier_type: str, value: str) -> dict[str, Any]:
        """The body of one opt-out request (the same identifier always gives the same body)."""
        if not isinstance(identifier_type, str) or not _IDENTIFIER_TYPE.fullmatch(
                identifier_type):
            raise BadInputError(f"'{identifier_type}' is not an identifier type Dynamic Yield "
                                "could take (such as email or pushID).")
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            raise BadInputError("An empty value cannot be submitted to Dynamic Yield.")
        body: dict[str, Any] = {"identifier": {"type": identifier_type, "value": text}}
        if self.settings.send_associated_device:
            body["associatedDevice"] = {"dyid": ""}
        return body

    def send_opt_out(self, channel: str, body: Mapping[str, Any],
                     cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
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
                cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        return self.send_opt_out(channel, self.opt_out_body(identifier_type, value), cancel)

    def opt_out_email(self, email: str, cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        return self.opt_out(self.settings.email_channel, IDENTIFIER_EMAIL, email, cancel)

    def push_event_body(self, push_id: str) -> dict[str, Any]:
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

    def send_event(self, body: Mapping[str, Any],
                   cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        """Send one collect/user/event body (from push_event_body)."""
        tokens = [str(e.get("properties", {}).get("pushID", "")) for e in body.get("events", [])
                  if isinstance(e, Mapping) and isinstance(e.get("properties"), Mapping)]
        return self._send(EVENT_PATH, dict(body), "push opt-out event", tokens, cancel)

    def push_optout(self, push_id: str, cancel: CancelToken = NEVER_CANCELLED) -> SendResult:
        return self.send_event(self.push_event_body(push_id), cancel)

    # -- requests ------------------------------------------------------------------------

    def _send(self, path: str, body: dict[str, Any], what: str, values: Sequence[str],
              cancel: CancelToken) -> SendResult:
        def interpret(response: httpx.Response) -> int:
            self._interpret(response, what, values)
            return response.status_code

        self._pacer.wait(cancel)
        status, attempts = self._session.request("POST", path, json=body, interpret=interpret,
                                                 cancel=cancel)
        return SendResult(status, attempts)

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
