"""CheckMarket webhooks: create one (`POST 3/hooks`), read it (`GET 3/hooks/{id}`), activate it
(`POST 3/hooks/{id}/activate` with the `X-Hook-Key` of its Webhook.Created handshake).

Facts: shared/api-notes.md 1.9. The hook key is a secret that is only needed once: it travels in
the headers of one short-lived session made for the activation and is forgotten with it; it is
never logged, stored or put in a message. Requests go through the same HTTP policy as every
connector (connectors/http.py): timeouts, retries of transient failures, HTTPS except loopback,
credentials only to the configured host.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from optout_desk.connectors.errors import (
    AuthenticationError,
    MalformedResponseError,
    MissingRoleError,
    PlatformError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.http import HttpPolicy, HttpSession, retry_after_body

log = logging.getLogger(__name__)

PLATFORM = "CheckMarket"
HOOKS_PATH = "3/hooks"
OPTOUT_EVENT = "Panelist.Optout"
ROLE = "Contacts (read)"  # the role Panelist.Optout needs (seed 000)


@dataclass(frozen=True)
class Webhook:
    webhook_id: int
    event_name: str
    target_url: str
    is_active: bool
    survey_id: int | None


class CheckMarketHooks:
    """The webhook calls of one CheckMarket account (its master key and key)."""

    def __init__(self, base_url: str, master_key: str, key: str, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._base_url = base_url
        self._keys = {"X-Master-Key": master_key, "X-Key": key}
        self._policy = HttpPolicy(timeout_s=timeout_s, max_retries=3, max_in_flight=1)
        self._transport = transport
        self._secrets = (master_key, key)

    def __repr__(self) -> str:
        return f"CheckMarketHooks({self._base_url})"

    def _session(self, extra: dict[str, str] | None = None) -> HttpSession:
        headers = {**self._keys, "Accept": "application/json", **(extra or {})}
        return HttpSession(self._base_url, headers, self._policy, platform=PLATFORM,
                           transport=self._transport)

    def create(self, target_url: str, *, survey_id: int | None = None,
               event_name: str = OPTOUT_EVENT) -> Webhook:
        """Register `target_url` for `event_name`; CheckMarket then posts Webhook.Created."""
        body: dict[str, Any] = {"EventName": event_name, "TargetUrl": target_url}
        if survey_id is not None:
            body["SurveyId"] = survey_id
        session = self._session()
        try:
            data, _ = session.request("POST", HOOKS_PATH, json=body,
                                      interpret=lambda r: self._interpret(r, session.host))
        finally:
            session.close()
        return _webhook(data, session.host, target_url)

    def get(self, webhook_id: int) -> Webhook:
        session = self._session()
        try:
            data, _ = session.request("GET", f"{HOOKS_PATH}/{int(webhook_id)}",
                                      interpret=lambda r: self._interpret(r, session.host))
        finally:
            session.close()
        return _webhook(data, session.host, "")

    def activate(self, webhook_id: int, hook_key: str) -> None:
        """Activate with the handshake's key (the key lives only in this call's session)."""
        session = self._session({"X-Hook-Key": hook_key})
        secrets = (*self._secrets, hook_key)
        try:
            session.request("POST", f"{HOOKS_PATH}/{int(webhook_id)}/activate",
                            interpret=lambda r: self._interpret(r, session.host, secrets,
                                                                body_optional=True))
        finally:
            session.close()
        log.info("CheckMarket webhook %d activated", webhook_id)

    def _interpret(self, response: httpx.Response, host: str,
                   secrets: tuple[str, ...] | None = None, *,
                   body_optional: bool = False) -> Any:
        status = response.status_code
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        meta = body.get("Meta") if isinstance(body, dict) else None
        body_status = meta.get("Status") if isinstance(meta, dict) else None
        data = body.get("Data") if isinstance(body, dict) else None
        detail = _detail(data, secrets or self._secrets)
        if status == 429 or body_status == 429:
            raise ThrottledError(f"CheckMarket is rate-limiting requests for this key{detail}.",
                                 retry_after_body(data))
        if status == 401 or body_status == 401:
            raise AuthenticationError(
                f"CheckMarket ({host}) refused the keys or the hook key{detail}: check the "
                "connection's keys, and register the webhook again if its key was lost.")
        if status == 403 or body_status == 403:
            raise MissingRoleError(f"The CheckMarket key lacks the role {ROLE} on {host}: "
                                   f"give the key that role to use webhooks.", ROLE)
        if status >= 500:
            raise PlatformError(f"CheckMarket ({host}) answered HTTP {status}{detail}; try "
                                "again later.", status, body_status)
        if status >= 300:
            raise RejectedRequestError(f"CheckMarket ({host}) refused the webhook request "
                                       f"(HTTP {status}){detail}.", status, body_status)
        if not isinstance(meta, dict):
            if body_optional:
                return None
            raise MalformedResponseError(f"CheckMarket ({host}) answered without its JSON "
                                         "envelope; check the base URL points at the API.")
        if body_status != 200:
            raise PlatformError(f"CheckMarket ({host}) reported status {body_status} under "
                                f"HTTP {status}{detail}.", status, body_status)
        return data


def _detail(data: object, secrets: tuple[str, ...]) -> str:
    text = ""
    if isinstance(data, dict):
        text = str(data.get("ErrorMessage") or data.get("Message") or "")
    elif isinstance(data, str):
        text = data
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())[:300]
    return f": {text}" if text else ""


def _webhook(data: Any, host: str, target_url: str) -> Webhook:
    if not isinstance(data, dict) or not isinstance(data.get("WebhookId"), int):
        raise MalformedResponseError(f"CheckMarket ({host}) answered without a WebhookId.")
    survey = data.get("SurveyId")
    return Webhook(
        webhook_id=data["WebhookId"],
        event_name=str(data.get("EventName") or ""),
        target_url=str(data.get("ClientUrl") or data.get("TargetUrl") or target_url),
        is_active=data.get("IsActive") is True,
        survey_id=survey if type(survey) is int else None,
    )
