"""Webhook bodies as the platforms send them, checked and turned into inbox events.

Facts: shared/api-notes.md 1.9 (CheckMarket) and 4 (LOX24). What each parser insists on is
what an opt-out cannot do without; everything else is kept when present and refused only when
it has the wrong type (a refused delivery is retried by the platform, a half-read one would be
stored wrong for good):

- CheckMarket `Panelist.Optout`: `EventName`, `WebhookId`, `Contact` with `ContactId`,
  `DateOptOut` and a usable `Email` or `Phone`. The dedupe key is webhook id + contact id +
  date. The envelope may be wrapped in `Data` (third-party consumers read `Data.WebhookId`).
- CheckMarket `Webhook.Created`: `WebhookId` and the `X-Hook-Key` header: a Handshake.
- LOX24 `phone.unsubscribe` / `phone.subscribe`: `id` (a UUID, the dedupe key), `name`,
  `data.phone` (E.164) and a `created_at` (in `data` or the envelope). The delivery total comes
  as `attempt_total` or `attempts_total` (the docs use both); either must be 1-4 when present.
- Any other event name is acknowledged and ignored: it is not bad input.

Every failure is a PayloadError whose text says which field and why (the HTTP 400 body). No
message contains a value from the body, only field names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from optout_desk.core.identifiers import normalise_email_once, phone_normaliser
from optout_desk.core.records import STORABLE_INTEGERS, canonical_timestamp
from optout_desk.store.inbox import KIND_OPTOUT, KIND_RESUBSCRIBE, InboxEvent

CM_OPTOUT = "Panelist.Optout"
CM_CREATED = "Webhook.Created"
LOX_UNSUBSCRIBE = "phone.unsubscribe"
LOX_SUBSCRIBE = "phone.subscribe"
MAX_LOX24_ATTEMPTS = 4

# LOX24's reason ids (seed 004); the platform's own label (often German) is kept as sent.
LOX24_REASONS = {
    1: "I never subscribed",
    2: "Too many messages",
    3: "I am not interested",
    4: "Content is incomprehensible",
    5: "I don't like your company",
    6: "Other",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PHONE_FORMATTING = re.compile(r"[\s\-().]")
# Texts are kept, but not without bound: a 900 KB campaign code in one cell would stall the
# Inbox table that lays it out (and swell the database with every delivery).
_MAX_TEXT = 2000
_MAX_SURVEYS = 1000
_MAX_PHONE_TEXT = 100  # E.164 has at most 15 digits; this leaves room for any formatting


class PayloadError(Exception):
    """The body cannot be used; `reason` is the answer's text (field names only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Handshake:
    """CheckMarket's Webhook.Created: the hook key activates the webhook (never printed)."""

    webhook_id: int
    event_name: str
    hook_key: str = field(repr=False)


@dataclass(frozen=True)
class Ignored:
    """A well-formed event the inbox does not keep (e.g. a delivery report)."""

    event: str


Parsed = InboxEvent | Handshake | Ignored


def load_json(body: bytes) -> Any:
    if not body.strip():
        raise PayloadError("The body is empty; a JSON object was expected.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"The body is not valid JSON ({exc.msg} at character "
                           f"{exc.pos}).") from None


def parse(system: str, source: str, body: bytes, headers: Mapping[str, str]) -> Parsed:
    """One delivery of `system` to `source`; `headers` with lower-case names."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise PayloadError("The body must be a JSON object.")
    if system == "checkmarket":
        return parse_checkmarket(source, data, headers)
    if system == "lox24":
        return parse_lox24(source, data)
    raise PayloadError(f"Unknown webhook system '{system}'.")


# -- CheckMarket -----------------------------------------------------------------------------


def parse_checkmarket(source: str, data: dict[str, Any], headers: Mapping[str, str]) -> Parsed:
    wrapped = data.get("Data")
    inner: dict[str, Any] = wrapped if isinstance(wrapped, dict) else {}
    event = data.get("EventName", inner.get("EventName"))
    if event is None:
        raise PayloadError("The field EventName is missing.")
    if not isinstance(event, str) or not event:
        raise PayloadError("EventName must be a non-empty text.")
    if event not in (CM_OPTOUT, CM_CREATED):
        return Ignored(event)
    webhook_id = _int_field(data.get("WebhookId", inner.get("WebhookId")), "WebhookId",
                            required=True)
    assert webhook_id is not None
    if event == CM_CREATED:
        key = headers.get("x-hook-key", "").strip()
        if not key:
            raise PayloadError("Webhook.Created came without its X-Hook-Key header.")
        return Handshake(webhook_id, event, key)
    contact = data.get("Contact", inner.get("Contact"))
    if contact is None:
        raise PayloadError("The field Contact is missing.")
    if not isinstance(contact, dict):
        raise PayloadError("Contact must be an object.")
    contact_id = _int_field(contact.get("ContactId"), "Contact.ContactId", required=True)
    date = contact.get("DateOptOut")
    if date is None:
        raise PayloadError("The field Contact.DateOptOut is missing.")
    try:
        occurred = canonical_timestamp(date) if isinstance(date, str) else None
    except ValueError:
        occurred = None
    if occurred is None:
        raise PayloadError("Contact.DateOptOut is not an ISO-8601 date and time.")
    email_text = _str_field(contact.get("Email"), "Contact.Email")
    phone_text = _str_field(contact.get("Phone"), "Contact.Phone")
    email = normalise_email_once(email_text).key if email_text.strip() else None
    country = _str_field(contact.get("CountryId"), "Contact.CountryId")
    region = country.upper() if _COUNTRY.match(country) else "US"
    phone = phone_normaliser(region).once(phone_text).key if phone_text.strip() else None
    if email is None and phone is None:
        what = "neither a valid Email nor a valid Phone" if (email_text or phone_text) \
            else "no Email and no Phone"
        raise PayloadError(f"The Contact has {what}.")
    listed = contact.get("Surveys")
    # Kept like the texts, not without bound: a panelist is on a few surveys, not 300,000.
    surveys: list[Any] = listed[:_MAX_SURVEYS] if isinstance(listed, list) else []
    titles = [f"{s.get('SurveyId')}: {s.get('Title')}" if s.get("Title") else
              str(s.get("SurveyId")) for s in surveys if isinstance(s, dict)]
    source_id = contact.get("OptoutSourceId")
    details = {
        "webhook_id": webhook_id, "contact_id": contact_id,
        "optout_source_id": source_id if isinstance(source_id, int) else None,
        "lang": _kept_text(contact.get("LangCode"), "Contact.LangCode"),
        "survey_ids": [s.get("SurveyId") for s in surveys
                       if isinstance(s, dict) and isinstance(s.get("SurveyId"), int)],
    }
    return InboxEvent(
        source=source, system="checkmarket", event_id=f"{webhook_id}:{contact_id}:{occurred}",
        event=event, kind=KIND_OPTOUT, id_kind="email" if email else "phone",
        identifier=email or phone or "", occurred_at=occurred,
        phone=(phone or "") if email else "",
        reason_label=f"opt-out source {source_id}" if isinstance(source_id, int) else "",
        campaign=_bounded(", ".join(titles)), details=details,
    )


# -- LOX24 -----------------------------------------------------------------------------------


def parse_lox24(source: str, data: dict[str, Any]) -> Parsed:
    event_id = data.get("id")
    if event_id is None:
        raise PayloadError("The field id is missing.")
    if not isinstance(event_id, str) or not _UUID.match(event_id):
        raise PayloadError("id must be a UUID text.")
    name = data.get("name")
    if name is None:
        raise PayloadError("The field name is missing.")
    if not isinstance(name, str) or not name:
        raise PayloadError("name must be a non-empty text.")
    attempt = _int_field(data.get("attempt_number"), "attempt_number")
    if attempt is not None and attempt < 1:
        raise PayloadError("attempt_number must be 1 or more.")
    for total_name in ("attempt_total", "attempts_total"):
        total = _int_field(data.get(total_name), total_name)
        if total is not None and not 1 <= total <= MAX_LOX24_ATTEMPTS:
            raise PayloadError(f"{total_name} must be from 1 to {MAX_LOX24_ATTEMPTS}.")
    if name not in (LOX_UNSUBSCRIBE, LOX_SUBSCRIBE):
        return Ignored(name)
    payload = data.get("data")
    if payload is None:
        raise PayloadError("The field data is missing.")
    if not isinstance(payload, dict):
        raise PayloadError("data must be an object.")
    phone_text = payload.get("phone")
    if phone_text is None:
        raise PayloadError("The field data.phone is missing.")
    if not isinstance(phone_text, str):
        raise PayloadError("data.phone must be a text (an E.164 phone number).")
    if len(phone_text) > _MAX_PHONE_TEXT:  # not worth a formatting pass over a megabyte
        raise PayloadError("data.phone is too long to be a phone number.")
    # The common shape (already E.164) skips the formatting pass: nothing in it to remove.
    compact = phone_text if phone_text[1:].isdigit() else _PHONE_FORMATTING.sub("", phone_text)
    phone = phone_normaliser("DE").once(compact).key if compact.startswith("+") else None
    if phone is None:
        raise PayloadError("data.phone is not an E.164 phone number (+ and country code).")
    created = _int_field(payload.get("created_at"), "data.created_at")
    if created is None:
        created = _int_field(data.get("created_at"), "created_at")
    if created is None:
        raise PayloadError("The field data.created_at is missing (and created_at too).")
    try:
        # isoformat() is "YYYY-MM-DDTHH:MM:SS+00:00" (a whole second: no fraction), at a third of
        # strftime's cost, and pads the year to four digits as canonical_timestamp does.
        occurred = datetime.fromtimestamp(created, UTC).isoformat()[:19] + ".0000000Z"
    except (OverflowError, OSError, ValueError):
        raise PayloadError("data.created_at is not a Unix timestamp.") from None
    extra = payload.get("additional_data")
    if extra is None or extra == []:  # phone.subscribe may send [] (api-notes 4.4)
        extra = {}
    if not isinstance(extra, dict):
        raise PayloadError("data.additional_data must be an object.")
    reason = extra.get("reason")
    if reason is None:
        reason = {}
    if not isinstance(reason, dict):
        raise PayloadError("data.additional_data.reason must be an object.")
    reason_id = _int_field(reason.get("id"), "data.additional_data.reason.id")
    label = _kept_text(reason.get("label"), "data.additional_data.reason.label")
    # The seed's example has additional_text beside reason; its schema renders it inside.
    text = _kept_text(extra.get("additional_text", reason.get("additional_text")),
                      "data.additional_data.additional_text")
    task = data.get("notification_task_id", payload.get("notification_task_id"))
    details = {
        "unsubscribe_request_id": _int_field(payload.get("unsubscribe_request_id"),
                                             "data.unsubscribe_request_id"),
        "notification_task_id": task if isinstance(task, str) else None,
        "api_version": data.get("api_version") if isinstance(data.get("api_version"), str)
        else None,
    }
    return InboxEvent(
        source=source, system="lox24", event_id=event_id.lower(), event=name,
        kind=KIND_OPTOUT if name == LOX_UNSUBSCRIBE else KIND_RESUBSCRIBE, id_kind="phone",
        identifier=phone, occurred_at=occurred, reason_id=reason_id,
        reason_label=label or LOX24_REASONS.get(reason_id or 0, ""),
        free_text=text,
        campaign=_kept_text(payload.get("campaign_code"), "data.campaign_code"),
        user_id=_int_field(payload.get("user_id"), "data.user_id"),
        group_id=_int_field(payload.get("group_id"), "data.group_id"),
        short_link=_kept_text(payload.get("short_link_code"), "data.short_link_code"),
        details={k: v for k, v in details.items() if v is not None},
    )


# -- fields ----------------------------------------------------------------------------------


def _int_field(value: object, name: str, *, required: bool = False) -> int | None:
    if type(value) is int:  # the common case first (a bool is not one)
        # Refused here, not at every COMMIT (503 after 503 to a platform that retries).
        if value in STORABLE_INTEGERS:
            return value
        raise PayloadError(f"{name} is too large a number (at most 19 digits).")
    if value is None:
        if required:
            raise PayloadError(f"The field {name} is missing.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name} must be a whole number.")
    return value


def _str_field(value: object, name: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{name} must be a text.")
    return value


def _bounded(text: str) -> str:
    """A text as the inbox keeps it: at most _MAX_TEXT characters."""
    return text[:_MAX_TEXT]


def _kept_text(value: object, name: str) -> str:
    """A text field (refused if it is not one), as the inbox keeps it."""
    return _bounded(_str_field(value, name))
