"""An opt-out as the desk stores and shows it, whatever platform it came from, and what makes
two opt-outs one person (`person_keys`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from optout_desk.core.identifiers import normalise_email, normalise_email_column, phone_normaliser

# Column order used by the cache, the tables and every export of an opt-out list.
RECORD_COLUMNS: tuple[str, ...] = (
    "DateOptOut",
    "Email",
    "Phone",
    "FirstName",
    "LastName",
    "LangCode",
    "ContactId",
    "SurveyId",
    "Source",
)


class OptOutRecord(NamedTuple):
    """One opt-out. Text fields are "" when the platform did not send them.

    A NamedTuple rather than a frozen dataclass: a fetch builds one per opt-out (100k+), and a
    tuple is built several times faster; its field order is RECORD_COLUMNS' order.

    `date_opt_out` is kept as the ISO-8601 UTC text the platform sent (CheckMarket sends up to 7
    fractional digits, more than `datetime` holds), so nothing is lost on a round trip.
    """

    date_opt_out: str
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    lang_code: str = ""
    contact_id: int | None = None
    survey_id: int | None = None
    source: str = ""

    @property
    def dedupe_key(self) -> str:
        """The person this opt-out is for (see `person_keys`, which computes it in bulk)."""
        email = normalise_email(self.email).key or _email_fallback(self.email)
        phone = _phone_key(self.phone, None)
        return _person_key(email, phone, self)

    def as_row(self) -> tuple[object, ...]:
        """Values in RECORD_COLUMNS order."""
        return tuple(self)


def person_keys(records: Sequence[OptOutRecord]) -> list[str]:
    """[r.dedupe_key for r in records], with the identifiers normalised a column at a time.

    Two opt-outs are one person when they carry the same identifiers: the same email key
    (core.identifiers: trimmed, lower-cased, NFC, IDNA domain) and the same phone key. A phone
    in international form ("+32 470…", "0032 470…") is keyed as E.164; a national one
    ("0470…") cannot be placed without its country and is keyed by its digits as written.
    Records that differ in either identifier stay apart, so merging never drops an address or
    a number from the list. A platform's ContactId and DateOptOut are NOT part of a person's
    identity: platforms give every POSTed opt-out ContactId 0 (or none) and one timestamp per
    batch, and the same person listed twice is one person opted out. Only an opt-out with no
    email and no phone falls back on its ContactId, when that is a real id (> 0), or else on
    its date and names as listed.
    """
    emails = normalise_email_column([r.email for r in records])
    normaliser = phone_normaliser(_ANY_REGION)
    phones = normaliser.many([_international(r.phone) for r in records])
    keys: list[str] = []
    append = keys.append
    for record, email, phone in zip(records, emails, phones, strict=True):
        email_key = (email.key or _email_fallback(record.email)) if email is not None else ""
        append(_person_key(email_key, _phone_key(record.phone, phone), record))
    return keys


def earliest_per_person(records: Iterable[OptOutRecord]) -> list[OptOutRecord]:
    """One opt-out per person (`person_keys`): the EARLIEST DateOptOut of each, in the order
    the people first appear. The earliest is when the person's opt-out began; keeping it makes
    the result the same whatever order the platform lists duplicates in, and the same as the
    cache keeps across fetches (store.cache). Dates must be in canonical_timestamp form."""
    chosen: dict[str, OptOutRecord] = {}
    listed = records if isinstance(records, Sequence) else list(records)
    for key, record in zip(person_keys(listed), listed, strict=True):
        kept = chosen.get(key)
        if kept is None or record.date_opt_out < kept.date_opt_out:
            chosen[key] = record
    return list(chosen.values())


# International numbers are keyed the same in every default region; one is needed to build
# the normaliser.
_ANY_REGION = "US"


def _international(text: str) -> str | None:
    """The phone as "+…" when written internationally ("+…" or "00…"), else None."""
    stripped = text.strip()
    if stripped[:1] == "+":
        return stripped
    if stripped[:2] == "00":
        return "+" + stripped[2:]
    return None


def _phone_key(text: str, normalised: object) -> str:
    """E.164 for an international phone (the normaliser's key when it has one, else "+" and
    the digits), "~" and the digits for a national one, "" for none. `normalised` is the
    bulk normaliser's Identifier, or None to normalise here."""
    international = _international(text)
    digits = "".join(ch for ch in text if ch.isdigit())
    if international is None:
        return "~" + digits if digits else ""
    if normalised is None:
        normalised = phone_normaliser(_ANY_REGION)(international)
    key = getattr(normalised, "key", None)
    if isinstance(key, str):
        return key
    return "+" + "".join(ch for ch in international if ch.isdigit())


def _email_fallback(text: str) -> str:
    """An email with no valid key still identifies its row: its trimmed, lower-cased text."""
    return text.strip().lower()


def _person_key(email: str, phone: str, record: OptOutRecord) -> str:
    if email or phone:
        return f"p:{email}|{phone}"
    contact = record.contact_id
    if type(contact) is int and contact > 0:
        return f"c:{contact}"
    return f"n:{record.date_opt_out}|{record.first_name}|{record.last_name}|{record.lang_code}"


_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def canonical_timestamp(text: str) -> str:
    """Any ISO-8601 timestamp as "YYYY-MM-DDTHH:MM:SS.fffffffZ" in UTC.

    Seven fractional digits (what CheckMarket sends) keep every digit, and one fixed width makes
    string order equal time order, so watermarks and sorting can compare text. A date alone is
    midnight UTC; a timestamp without an offset is taken as UTC, as the platform writes them.
    """
    text = text.strip()
    if len(text) == 10:
        text += "T00:00:00"
    match = _TIMESTAMP.match(text)
    if not match:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
        tzinfo=UTC,
    )
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    digits7 = ((fraction or "") + "0000000")[:7]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{digits7}Z"
