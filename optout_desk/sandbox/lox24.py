"""A LOX24 sender simulator: `phone.unsubscribe` and `phone.subscribe` events (api-notes 4,
seed 004) posted to a webhook URL, with LOX24's retries.

Each event is the envelope `{id, api_version, name, created_at, attempt_number,
attempts_total|attempt_total, notification_task_id, data}`; the total goes under either name
(the docs use both). A non-2xx answer or a connection error is retried, up to 4 attempts in
all, `attempt_number` counting up. Reason labels are German, as LOX24 sends them to German
accounts. Only loopback URLs are accepted, so a simulation never leaves the machine.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

API_VERSION = "2022-05-25"
MAX_ATTEMPTS = 4
RETRY_DELAYS_S = (0.5, 2.0, 5.0)  # LOX24's intervals are UNKNOWN; these keep tests short
GERMAN_REASONS = {
    1: "Ich habe mich nie angemeldet",
    2: "Zu viele Nachrichten",
    3: "Ich bin nicht interessiert",
    4: "Es ist unverständlich",
    5: "Ich mag Ihr Unternehmen nicht",
    6: "Sonstiges",
}
_FREE_TEXTS = ("", "", "", "Bitte keine SMS mehr.", "Zu oft am Wochenende.",
               "Falsche Nummer.", "Ich habe nie zugestimmt.")
_MOBILE_PREFIXES = ("151", "152", "157", "160", "162", "170", "171", "176", "177", "178")


def _check_loopback(url: str) -> None:
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the LOX24 simulator posts to loopback only, not {host!r}")


def german_mobile(rng: random.Random) -> str:
    return f"+49{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**7, 10**8)}"


def unsubscribe_event(phone: str, created_at: int, *, rng: random.Random | None = None,
                      reason_id: int | None = None, campaign: str = "3KCKb5nMD",
                      user_id: int = 2, group_id: int | None = None) -> dict[str, Any]:
    rng = rng or random.Random()
    reason = reason_id or rng.choice((1, 2, 2, 3, 3, 3, 4, 5, 6))
    data: dict[str, Any] = {
        "phone": phone, "user_id": user_id, "created_at": created_at,
        "campaign_code": campaign,
        "additional_data": {"reason": {"id": reason, "label": GERMAN_REASONS[reason]},
                            "additional_text": rng.choice(_FREE_TEXTS)},
        "short_link_code": "".join(rng.choice("abcdefghijkLMNOP0123") for _ in range(6)),
        "unsubscribe_request_id": rng.randrange(1, 10**6),
    }
    if group_id is not None:
        data["group_id"] = group_id
    return _envelope("phone.unsubscribe", created_at, data, rng)


def subscribe_event(phone: str, created_at: int, *, rng: random.Random | None = None,
                    campaign: str = "3KCKb5nMD", user_id: int = 2,
                    group_id: int | None = 123) -> dict[str, Any]:
    rng = rng or random.Random()
    data = {"phone": phone, "user_id": user_id, "created_at": created_at,
            "campaign_code": campaign, "additional_data": [],
            "short_link_code": "".join(rng.choice("abcdefghijkLMNOP0123") for _ in range(6)),
            "group_id": group_id}
    return _envelope("phone.subscribe", created_at, data, rng)


def _envelope(name: str, created_at: int, data: dict[str, Any],
              rng: random.Random) -> dict[str, Any]:
    return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "api_version": API_VERSION, "name": name, "created_at": created_at,
            "notification_task_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "data": data}


def generate_events(count: int, *, seed: int = 1, start: int | None = None,
                    end: int | None = None, resubscribe_share: float = 0.05,
                    campaigns: Sequence[str] = ("SPRING24", "3KCKb5nMD", "NEWS-07")
                    ) -> list[dict[str, Any]]:
    """`count` events dated from `start` to `end` (unix seconds, default: the last 14 days),
    in time order; a few are subscribes of a phone that unsubscribed earlier."""
    rng = random.Random(seed)
    end = end if end is not None else int(time.time())
    start = start if start is not None else end - 14 * 86_400
    moments = sorted(rng.randint(start, end) for _ in range(count))
    events: list[dict[str, Any]] = []
    unsubscribed: list[str] = []
    for moment in moments:
        if unsubscribed and rng.random() < resubscribe_share:
            events.append(subscribe_event(rng.choice(unsubscribed), moment, rng=rng,
                                          campaign=rng.choice(campaigns)))
            continue
        phone = german_mobile(rng)
        unsubscribed.append(phone)
        events.append(unsubscribe_event(phone, moment, rng=rng, campaign=rng.choice(campaigns),
                                        group_id=rng.choice((None, 123, 456))))
    return events


@dataclass(frozen=True)
class DeliveryResult:
    acknowledged: bool
    attempts: int
    statuses: tuple[int, ...]  # 0 = no answer (connection error or timeout)


class Lox24Sender:
    """Posts events to one webhook URL the way LOX24 does."""

    def __init__(self, url: str, *, total_field: str = "attempts_total",
                 retry_delays_s: Sequence[float] = RETRY_DELAYS_S, timeout_s: float = 10.0,
                 client: httpx.Client | None = None) -> None:
        _check_loopback(url)
        if total_field not in ("attempts_total", "attempt_total"):
            raise ValueError("total_field is attempts_total or attempt_total")
        self.url = url
        self.total_field = total_field
        self.retry_delays_s = tuple(retry_delays_s)
        self._client = client or httpx.Client(timeout=timeout_s)
        self._own_client = client is None

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> Lox24Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def post_attempt(self, event: dict[str, Any], attempt: int) -> int:
        """One delivery attempt; the HTTP status, or 0 when there was no answer."""
        body = {**event, "attempt_number": attempt, self.total_field: MAX_ATTEMPTS}
        try:
            return self._client.post(self.url, json=body).status_code
        except httpx.HTTPError:
            return 0

    def deliver(self, event: dict[str, Any]) -> DeliveryResult:
        """Up to 4 attempts until one is answered 2xx."""
        statuses: list[int] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(self.retry_delays_s[min(attempt - 2, len(self.retry_delays_s) - 1)])
            status = self.post_attempt(event, attempt)
            statuses.append(status)
            if 200 <= status < 300:
                return DeliveryResult(True, attempt, tuple(statuses))
        return DeliveryResult(False, MAX_ATTEMPTS, tuple(statuses))
