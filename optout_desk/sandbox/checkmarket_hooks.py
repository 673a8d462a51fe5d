"""The CheckMarket simulator's webhooks (api-notes 1.9): `POST 3/hooks`, `GET 3/hooks/{id}`,
`POST 3/hooks/{id}/activate`, the Webhook.Created handshake and Panelist.Optout deliveries.

- Creating a hook answers `Data: {WebhookId, RegisteredDate, SurveyId, EventName, ClientUrl,
  IsActive: false, SurveyTitle}` and then, on the delivery thread, posts Webhook.Created
  (`{ActivationRequired, WebhookId, EventName}`) to the TargetUrl with a fresh `X-Hook-Key`.
- Activation needs that `X-Hook-Key` (plus the usual keys, checked by the caller); a wrong or
  missing one is HTTP 400. Nothing is delivered to a hook that is not active.
- Each opt-out appended to the simulated account afterwards is posted as Panelist.Optout to
  every active Panelist.Optout hook (of its survey, when the hook names one).

Decisions where CheckMarket's behaviour is UNKNOWN: deliveries are retried 3 times (0.2 s,
1 s, 3 s apart) on a connection error or a non-2xx; `SurveyId` may be omitted (an account-wide
hook). The simulator only ever posts to loopback addresses: a TargetUrl elsewhere is accepted
and recorded as not delivered, so nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

EVENTS = ("Panelist.Optout", "Respondent.Complete", "Survey.Created",
          "ApiRequest.ThrottlingLimitReached")
RETRY_DELAYS_S = (0.2, 1.0, 3.0)


@dataclass
class Hook:
    webhook_id: int
    event_name: str
    target_url: str
    survey_id: int | None
    key: str = field(repr=False)
    active: bool = False
    registered: str = ""


@dataclass(frozen=True)
class Delivery:
    webhook_id: int
    event: str
    status: int  # the last HTTP status (0: no answer, -1: not sent, not loopback)
    attempts: int


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HookRegistry:
    """The account's webhooks and their delivery thread. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[int, Hook] = {}
        self._next_id = 1
        self._queue: queue.SimpleQueue[tuple[Hook, dict[str, Any], dict[str, str]] | None] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.deliveries: list[Delivery] = []
        self._queued = 0
        self.retry_delays_s = RETRY_DELAYS_S

    # -- the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
               envelope: Any, error: Any, survey_titles: dict[int, str]) -> Any:
        """Answer a 3/hooks request (keys already checked). `envelope(status, data)` and
        `error(status, message, type)` build the simulator's replies."""
        parts = path.split("/")
        if path == "3/hooks" and method == "POST":
            return self._create(body, envelope, error, survey_titles)
        if len(parts) == 3 and parts[2].isdigit() and method == "GET":
            hook = self._hooks.get(int(parts[2]))
            if hook is None:
                return error(404, f"Webhook {parts[2]} does not exist.", "NotFoundException")
            return envelope(200, self._data(hook, survey_titles))
        if len(parts) == 4 and parts[2].isdigit() and parts[3] == "activate" and \
                method == "POST":
            return self._activate(int(parts[2]), headers, envelope, error, survey_titles)
        return error(405 if path.startswith("3/hooks") else 404,
                     f"{method} is not allowed on '{path}'.", "MethodNotAllowedException")

    def _create(self, body: bytes, envelope: Any, error: Any,
                survey_titles: dict[int, str]) -> Any:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return error(400, "The request body is not valid JSON.", "ValidationException")
        if not isinstance(payload, dict):
            return error(400, "The request body must be an object.", "ValidationException")
        event, target = payload.get("EventName"), payload.get("TargetUrl")
        survey = payload.get("SurveyId")
        if event not in EVENTS:
            return error(400, f"EventName must be one of {', '.join(EVENTS)}.",
                         "ValidationException")
        if not isinstance(target, str) or urlsplit(target).scheme not in ("http", "https"):
            return error(400, "TargetUrl must be an http(s) URL.", "ValidationException")
        if survey is not None and (not isinstance(survey, int) or survey not in survey_titles):
            return error(404, f"Survey {survey} does not exist in this account.",
                         "NotFoundException")
        with self._lock:
            hook = Hook(self._next_id, event, target, survey, secrets.token_hex(16),
                        registered=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            self._hooks[hook.webhook_id] = hook
            self._next_id += 1
        created = {"ActivationRequired": True, "WebhookId": hook.webhook_id,
                   "EventName": "Webhook.Created"}
        self._send(hook, created, {"X-Hook-Key": hook.key})
        return envelope(200, self._data(hook, survey_titles))

    def _activate(self, webhook_id: int, headers: dict[str, str], envelope: Any, error: Any,
                  survey_titles: dict[int, str]) -> Any:
        hook = self._hooks.get(webhook_id)
        if hook is None:
            return error(404, f"Webhook {webhook_id} does not exist.", "NotFoundException")
        presented = headers.get("x-hook-key", "")
        if not presented or not secrets.compare_digest(presented, hook.key):
            return error(400, "The X-Hook-Key is missing or not the key of this webhook.",
                         "ValidationException")
        hook.active = True
        return envelope(200, self._data(hook, survey_titles))

    def _data(self, hook: Hook, survey_titles: dict[int, str]) -> dict[str, Any]:
        return {"WebhookId": hook.webhook_id, "RegisteredDate": hook.registered,
                "SurveyId": hook.survey_id, "EventName": hook.event_name,
                "ClientUrl": hook.target_url, "IsActive": hook.active,
                "SurveyTitle": survey_titles.get(hook.survey_id or 0, "")}

    def hooks(self) -> list[Hook]:
        with self._lock:
            return list(self._hooks.values())

    # -- deliveries ----------------------------------------------------------------------

    def optout_added(self, contact: dict[str, Any], surveys: tuple[int, ...]) -> None:
        """A new opt-out: post Panelist.Optout to every active hook that wants it."""
        for hook in self.hooks():
            if not hook.active or hook.event_name != "Panelist.Optout":
                continue
            if hook.survey_id is not None and hook.survey_id not in surveys:
                continue
            body = {"Contact": {**contact, "Surveys": [
                {"SurveyId": s, "Title": f"Survey {s}", "PanelistStatusId": 7}
                for s in surveys]}, "WebhookId": hook.webhook_id,
                "EventName": "Panelist.Optout", "Links": {}}
            self._send(hook, body, {})

    def _send(self, hook: Hook, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver_all, daemon=True,
                                                name="sandbox-webhooks")
                self._thread.start()
            self._queued += 1
        self._queue.put((hook, body, headers))

    def _deliver_all(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                hook, body, headers = item
                self.deliveries.append(self._deliver(client, hook, body, headers))

    def _deliver(self, client: httpx.Client, hook: Hook, body: dict[str, Any],
                 headers: dict[str, str]) -> Delivery:
        event = str(body.get("EventName"))
        if not _loopback(hook.target_url):
            return Delivery(hook.webhook_id, event, -1, 0)
        status, attempts = 0, 0
        for delay in (0.0, *self.retry_delays_s):
            time.sleep(delay)
            attempts += 1
            try:
                response = client.post(hook.target_url, json=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            if 200 <= status < 300:
                break
        return Delivery(hook.webhook_id, event, status, attempts)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued delivery was attempted (tests)."""
        deadline = time.monotonic() + timeout_s
        while len(self.deliveries) < self._queued:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)
            self._thread = None
