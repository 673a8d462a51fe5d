"""The Dynamic Yield simulator: Reconnect opt-outs and the `message-optout-v1` push event, in two
data centres that share no data.

Follows shared/api-notes.md section 3 and seed 003. Both data centres are served by one loopback
server as path prefixes: `http://127.0.0.1:PORT/us/v2/` plays `https://dy-api.com/v2/` and
`…/eu/v2/` plays `https://dy-api.eu/v2/`. Each key is valid in one data centre only and is sent
as `DY-API-Key`. Routes (under a prefix):
- `POST userdata/channels/{channel}/opt-out` with `{"identifier": {"type", "value"}}` and an
  optional `associatedDevice {"dyid"}`;
- `POST collect/user/event` with `user` (`{id}` or `{dyid, dyid_server}`), `sessionId` or
  `session {dy|custom}`, and `events[]` of `{name, properties: {dyType, …}}`; a
  `message-optout-v1` event needs `pushID`.

Decisions where the vendor's behaviour is UNKNOWN (switches, so tests can take either side):
- Status codes: a missing key is 401; a key this data centre does not know (e.g. the other
  data centre's) is `unknown_key_status` (401; 403 to test the other reading); a client-side key
  is 403. Error bodies are `{"error": <reason>, "message": <text>}`, the simulator's own shape.
- Channels: `email` and `web-push` (`add_channel` for more); any other is 400 naming it.
  Identifier types: `email` (an address) and `pushID` (a token), on any channel. A bad email
  is echoed in the error message, as a careless platform would: a client must scrub it.
- Success is 200 with an empty body (`success_body` "empty"); "no-content" answers 204 and
  "json" 200 `{"status": "ok"}`.
- `associatedDevice` is optional unless `require_associated_device`.
- An empty `events[]` is accepted (`empty_batch_status` 200); any other status refuses it, to test
  a client's connection check against a platform that does not take one. `max_events_per_request`
  (None = no limit) caps a batch.
- Rate limit: `rate_limit` requests per `rate_window_s` per key (None = none); beyond it HTTP 429
  with a `Retry-After` header in whole seconds (at least 1), as HTTP defines it.
- Opting out twice is a success (opt-outs are a set).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Self

from optout_desk.sandbox.checkmarket import Reply
from optout_desk.sandbox.loopback import LoopbackServer
from optout_desk.sandbox.service import Fault, ServiceBase, common_fault, json_reply

DATA_CENTRES = ("us", "eu")
SERVER_SIDE = "server"
CLIENT_SIDE = "client"
OPTOUT_EVENT = "message-optout-v1"
FAULT_KINDS = ("500", "503", "drop", "429")
SUCCESS_BODIES = ("empty", "no-content", "json")

_ROUTE = re.compile(r"^(us|eu)/v2/(.*)$")
_CHANNEL = re.compile(r"^userdata/channels/([^/]+)/opt-out$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(slots=True)
class _DataCentre:
    optouts: set[tuple[str, str, str]] = field(default_factory=set)  # channel, type, value
    push_ids: set[str] = field(default_factory=set)  # from message-optout-v1 events
    events: list[dict[str, Any]] = field(default_factory=list)


class DynamicYieldState(ServiceBase):
    """Thread-safe simulator state: keys per data centre, opt-outs per data centre, switches."""

    FAULT_KINDS = FAULT_KINDS

    def __init__(self, *, latency_ms: float = 0.0, unknown_key_status: int = 401,
                 success_body: str = "empty", require_associated_device: bool = False,
                 empty_batch_status: int = 200, max_events_per_request: int | None = None,
                 rate_limit: int | None = None, rate_window_s: float = 1.0) -> None:
        super().__init__(latency_ms=latency_ms)
        if success_body not in SUCCESS_BODIES:
            raise ValueError(f"success_body is one of {', '.join(SUCCESS_BODIES)}")
        self.unknown_key_status = unknown_key_status
        self.success_body = success_body
        self.require_associated_device = require_associated_device
        self.empty_batch_status = empty_batch_status
        self.max_events_per_request = max_events_per_request
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.channels: set[str] = {"email", "web-push"}
        self.identifier_types: set[str] = {"email", "pushID"}
        self._keys: dict[str, tuple[str, str]] = {}  # key -> (data centre, kind)
        self._centres = {dc: _DataCentre() for dc in DATA_CENTRES}
        self._windows: dict[str, tuple[float, int]] = {}
        # (data centre, route, body) of every request applied, in arrival order: what
        # reliability checks compare a journal's payloads with.
        self.accepted: list[tuple[str, str, dict[str, Any]]] = []

    # -- set-up and inspection -----------------------------------------------------------

    def add_key(self, key: str, data_centre: str, kind: str = SERVER_SIDE) -> None:
        if data_centre not in DATA_CENTRES or kind not in (SERVER_SIDE, CLIENT_SIDE):
            raise ValueError("data_centre is 'us' or 'eu'; kind is 'server' or 'client'")
        with self._lock:
            self._keys[key] = (data_centre, kind)

    def add_channel(self, name: str) -> None:
        with self._lock:
            self.channels.add(name)

    def opt_outs(self, data_centre: str) -> set[tuple[str, str, str]]:
        """(channel, identifier type, value key) opted out through the User Data API."""
        with self._lock:
            return set(self._centres[data_centre].optouts)

    def opted_out_emails(self, data_centre: str, channel: str = "email") -> set[str]:
        return {v for c, t, v in self.opt_outs(data_centre) if c == channel and t == "email"}

    def opted_out_push_ids(self, data_centre: str) -> set[str]:
        """Push tokens opted out by a message-optout-v1 event or a pushID channel opt-out."""
        with self._lock:
            centre = self._centres[data_centre]
            return set(centre.push_ids) | {v for _, t, v in centre.optouts if t == "pushID"}

    def events(self, data_centre: str) -> list[dict[str, Any]]:
        """Every event accepted, in arrival order (copies)."""
        with self._lock:
            return [dict(e) for e in self._centres[data_centre].events]

    # -- requests ------------------------------------------------------------------------

    def _log_key(self, headers: dict[str, str]) -> str:
        return headers.get("dy-api-key", "")

    def _fault_reply(self, fault: Fault, path: str) -> Reply:
        reply = common_fault(fault)
        assert reply is not None, fault.kind
        return reply

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> Reply:
        route = _ROUTE.match(path)
        rest = route.group(2) if route else ""
        channel = _CHANNEL.match(rest)
        is_event = rest == "collect/user/event"
        if route is None or not (channel or is_event):
            return _error(404, "not_found", f"No resource matches /{path}.")
        if method != "POST":
            return _error(405, "method_not_allowed", f"{method} is not allowed on /{path}.")
        data_centre = route.group(1)
        key = headers.get("dy-api-key", "")
        denied = self._authorise(key, data_centre)
        if denied is not None:
            return denied
        throttled = self._throttle(key)
        if throttled is not None:
            return throttled
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _error(400, "bad_request", "The request body is not valid JSON.")
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "The request body must be a JSON object.")
        if channel is not None:
            return self._opt_out(data_centre, channel.group(1), payload)
        return self._event(data_centre, payload)

    def _authorise(self, key: str, data_centre: str) -> Reply | None:
        if not key:
            return _error(401, "unauthorized", "Missing DY-API-Key header.")
        with self._lock:
            known = self._keys.get(key)
        if known is None or known[0] != data_centre:
            return _error(self.unknown_key_status, "unauthorized",
                          "The API key is not valid for this data center.")
        if known[1] == CLIENT_SIDE:
            return _error(403, "forbidden", "Client-side API keys cannot be used with this "
                          "host; use a server-side API key.")
        return None

    def _throttle(self, key: str) -> Reply | None:
        limit = self.rate_limit
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= self.rate_window_s:
                started, count = now, 0
            count += 1
            self._windows[key] = (started, count)
        if count <= limit:
            return None
        wait = max(1, math.ceil(started + self.rate_window_s - now))
        return _error(429, "too_many_requests", f"Rate limit of {limit} requests per "
                      f"{self.rate_window_s:g} s exceeded.", {"Retry-After": str(wait)})

    def _success(self) -> Reply:
        if self.success_body == "no-content":
            return Reply(204)
        if self.success_body == "json":
            return json_reply(200, {"status": "ok"})
        return Reply(200)

    def _opt_out(self, data_centre: str, channel: str, payload: dict[str, Any]) -> Reply:
        if channel not in self.channels:
            return _error(400, "bad_request", f"Unknown channel '{channel}'; known: "
                          f"{', '.join(sorted(self.channels))}.")
        identifier = payload.get("identifier")
        if not isinstance(identifier, dict):
            return _error(400, "bad_request", "identifier must be an object with type and value.")
        kind, value = identifier.get("type"), identifier.get("value")
        if kind not in self.identifier_types:
            return _error(400, "bad_request", f"identifier.type '{kind}' is not one of "
                          f"{', '.join(sorted(self.identifier_types))}.")
        if not isinstance(value, str) or not value.strip():
            return _error(400, "bad_request", "identifier.value must be a non-empty string.")
        if kind == "email" and not _EMAIL.match(value.strip()):
            return _error(400, "bad_request", f"identifier.value '{value}' is not a valid "
                          "email address.")
        device = payload.get("associatedDevice")
        if device is not None and not isinstance(device, dict):
            return _error(400, "bad_request", "associatedDevice must be an object.")
        if self.require_associated_device and device is None:
            return _error(400, "bad_request", "associatedDevice is required.")
        stored = value.strip().lower() if kind == "email" else value.strip()
        with self._lock:
            self._centres[data_centre].optouts.add((channel, str(kind), stored))
            self.accepted.append((data_centre, f"channel:{channel}", payload))
        return self._success()

    def _event(self, data_centre: str, payload: dict[str, Any]) -> Reply:
        user = payload.get("user")
        if not isinstance(user, dict) or not (user.get("id") or user.get("dyid")):
            return _error(400, "bad_request", "user must be an object with id (API-only "
                          "sections) or dyid and dyid_server.")
        session = payload.get("session")
        has_session = bool(payload.get("sessionId")) or (
            isinstance(session, dict) and bool(session.get("dy") or session.get("custom")))
        if not has_session:
            return _error(400, "bad_request", "Give sessionId, or session with dy or custom.")
        events = payload.get("events")
        if not isinstance(events, list):
            return _error(400, "bad_request", "events must be a list.")
        if not events and self.empty_batch_status != 200:
            return _error(self.empty_batch_status, "bad_request", "events must not be empty.")
        limit = self.max_events_per_request
        if limit is not None and len(events) > limit:
            return _error(400, "bad_request", f"At most {limit} events are accepted per "
                          "request.")
        push_ids: list[str] = []
        for number, event in enumerate(events):
            properties = event.get("properties") if isinstance(event, dict) else None
            if not isinstance(properties, dict) or not isinstance(properties.get("dyType"), str):
                return _error(400, "bad_request", f"events[{number}].properties.dyType is "
                              "missing.")
            if properties["dyType"] == OPTOUT_EVENT:
                push_id = properties.get("pushID")
                if not isinstance(push_id, str) or not push_id.strip():
                    return _error(400, "bad_request", f"events[{number}]: a {OPTOUT_EVENT} "
                                  "event needs pushID.")
                push_ids.append(push_id.strip())
        with self._lock:
            centre = self._centres[data_centre]
            centre.push_ids.update(push_ids)
            centre.events.extend(e for e in events if isinstance(e, dict))
            self.accepted.append((data_centre, "collect/user/event", payload))
        return self._success()


def _error(status: int, reason: str, message: str,
           headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": reason, "message": message}, headers)


# -- the simulator on loopback -------------------------------------------------------------


@dataclass
class DynamicYieldConfig:
    latency_ms: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    us_key: str | None = None  # demo server-side keys; random when None
    eu_key: str | None = None
    unknown_key_status: int = 401
    success_body: str = "empty"
    require_associated_device: bool = False
    empty_batch_status: int = 200
    max_events_per_request: int | None = None
    rate_limit: int | None = None
    rate_window_s: float = 1.0


class DynamicYieldSandbox:
    """`with DynamicYieldSandbox() as dy: dy.us_url, dy.eu_url, dy.us_key, dy.eu_key …`;
    `client_key` is a US client-side key (refused with 403)."""

    def __init__(self, config: DynamicYieldConfig | None = None) -> None:
        self.config = c = config or DynamicYieldConfig()
        self.state = DynamicYieldState(
            latency_ms=c.latency_ms, unknown_key_status=c.unknown_key_status,
            success_body=c.success_body, require_associated_device=c.require_associated_device,
            empty_batch_status=c.empty_batch_status,
            max_events_per_request=c.max_events_per_request, rate_limit=c.rate_limit,
            rate_window_s=c.rate_window_s,
        )
        self.us_key = c.us_key or "sbx-dy-us-" + secrets.token_hex(8)
        self.eu_key = c.eu_key or "sbx-dy-eu-" + secrets.token_hex(8)
        self.client_key = "sbx-dy-client-" + secrets.token_hex(8)
        self.state.add_key(self.us_key, "us")
        self.state.add_key(self.eu_key, "eu")
        self.state.add_key(self.client_key, "us", CLIENT_SIDE)
        self._server = LoopbackServer(self.state, host=c.host, port=c.port,
                                      name="dynamic-yield")

    @property
    def port(self) -> int:
        return self._server.port

    def base_url(self, data_centre: str) -> str:
        """http://127.0.0.1:PORT/{us|eu}/v2/ once started; "" before."""
        if data_centre not in DATA_CENTRES:
            raise ValueError("data_centre is 'us' or 'eu'")
        origin = self._server.origin
        return f"{origin}/{data_centre}/v2/" if origin else ""

    @property
    def us_url(self) -> str:
        return self.base_url("us")

    @property
    def eu_url(self) -> str:
        return self.base_url("eu")

    def key_for(self, data_centre: str) -> str:
        return self.us_key if data_centre == "us" else self.eu_key

    def start(self) -> Self:
        self._server.start()
        self.state.base_url = self._server.origin + "/"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DynamicYieldSandbox(us_url={self.us_url!r}, eu_url={self.eu_url!r})"
