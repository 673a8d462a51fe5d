"""An opt-out as the desk stores and shows it, whatever platform it came from, and what makes
two opt-outs one person (`person_keys`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import compress
from operator import itemgetter, not_
from typing import NamedTuple

from optout_desk.core.identifiers import normalise_email

# What an SQLite INTEGER holds: the ids, counts and cursors the desk can store and compare.
# JSON allows any number; one outside this is no real id and would fail at a COMMIT.
STORABLE_INTEGERS = range(-(2**63), 2**63)

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
# The same columns as an operator reads them: on screen and in every exported file.
RECORD_HEADERS: tuple[str, ...] = (
    "Opted out (UTC)",
    "Email",
    "Phone",
    "First name",
    "Last name",
    "Language",
    "Contact id",
    "Survey",
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
        return _person_key(_email_key(self.email), _phone_key(self.phone), self)

    def as_row(self) -> tuple[object, ...]:
        """Values in RECORD_COLUMNS order."""
        return tuple(self)


def person_keys(records: Iterable[OptOutRecord]) -> list[str]:
    """[r.dedupe_key for r in records]: the person each opt-out is for.

    Two opt-outs are one person when they carry the same identifiers: the same email key and
    the same phone key. Email key: core.identifiers' (trimmed, lower-cased; NFC and an IDNA
    domain for non-ASCII text), and the trimmed lower-cased text of an address it finds
    invalid. Phone key: a phone written internationally ("+32 470…", "0032 470…") is its E.164
    form, "+" and the digits; a national one ("0470…") cannot be placed without its country
    and is keyed by its digits as written. Opt-outs that differ in either identifier stay
    apart, so merging never drops an address or a number from the list.

    A platform's ContactId and DateOptOut are NOT part of a person's identity: platforms give
    every POSTed opt-out ContactId 0 (or none) and one timestamp per batch, and the same person
    listed twice is one person opted out (earliest_per_person keeps the earliest). Only an
    opt-out with no email and no phone falls back on its ContactId, when that is a real id
    (> 0), or else on its date and names as listed.
    """
    listed = records if isinstance(records, list) else list(records)
    emails, phones = _identifier_columns(listed)
    return ["p:" + email + "|" + phone if email or phone else _person_key("", "", record)
            for email, phone, record in zip(emails, phones, listed, strict=True)]


def earliest_per_person(records: Iterable[OptOutRecord]) -> list[OptOutRecord]:
    """One opt-out per person (`person_keys`): the EARLIEST DateOptOut of each, in the order
    the people first appear. The earliest is when the person's opt-out began; keeping it makes
    the result the same whatever order the platform lists duplicates in, and the same as the
    cache keeps across fetches (store.cache). Dates must be in canonical_timestamp form."""
    listed = records if isinstance(records, list) else list(records)
    emails, phones = _identifier_columns(listed)
    if _everyone_once(emails, phones):
        return list(listed)  # the usual list, settled without a loop over its records
    chosen: dict[str, OptOutRecord] = {}
    for email, phone, record in zip(emails, phones, listed, strict=True):
        key = ("p:" + email + "|" + phone if email or phone
               else _person_key("", "", record))
        kept = chosen.get(key)
        if kept is None or record.date_opt_out < kept.date_opt_out:
            chosen[key] = record
    return list(chosen.values())


def _everyone_once(emails: list[str], phones: list[str]) -> bool:
    """True when no two records can be one person: no email key and no phone key occurs twice,
    and every record has one or the other (then no two (email, phone) pairs are equal). Set
    sizes and C-level iterators only: this decides a 100k-opt-out fetch in milliseconds."""
    for column in (emails, phones):
        empty = column.count("")
        if len(set(column)) != len(column) - empty + (1 if empty else 0):
            return False
    # Someone with neither identifier falls back on ContactId or the row: take the exact path.
    return not any(map(not_, compress(phones, map(not_, emails))))


def _identifier_columns(records: list[OptOutRecord]) -> tuple[list[str], list[str]]:
    """The email and phone keys of every record (as _email_key and _phone_key make them), a
    column at a time with C-level string operations: this runs once per opt-out of a fetch."""
    return (_email_column(list(map(_EMAIL_FIELD, records))),
            _phone_column(list(map(_PHONE_FIELD, records))))


# Fields by position (RECORD_COLUMNS' order): itemgetter is a third of attrgetter's cost.
_EMAIL_FIELD = itemgetter(1)
_PHONE_FIELD = itemgetter(2)
# Every character a usual phone column holds once formatting is gone: deleted to see if any
# other is left.
_PHONE_CHARS = str.maketrans("", "", "0123456789+\x00")
_NATIONAL = re.compile("\x00(?=[0-9])")  # a value starting with a digit, not "+"


def _joined(values: list[str]) -> str | None:
    """The values joined by NUL, or None when one of them holds a NUL itself."""
    joined = "\x00".join(values)
    return joined if joined.count("\x00") == len(values) - 1 else None


def _email_column(values: list[str]) -> list[str]:
    joined = _joined(values) if values else None
    if joined is None:
        return [_email_key(value) for value in values]
    keys = joined.lower().split("\x00")
    if any(space in joined for space in _ASCII_SPACE):
        keys = [key.strip(_ASCII_SPACE) for key in keys]
    if not joined.isascii():  # NFC and IDNA through core.identifiers, for those that need it
        for index, value in enumerate(values):
            if not value.isascii():
                keys[index] = _email_key(value)
    return keys


def _phone_column(values: list[str]) -> list[str]:
    """_phone_key of each value, by whole-column str operations; a leading NUL makes every
    value start after one, so a pattern anchored on NUL finds the starts."""
    joined = _joined(values) if values else None
    if joined is None:
        return [_phone_key(value) for value in values]
    compact = ("\x00" + joined).translate(_PHONE_FORMATTING).replace("\x0000", "\x00+")
    if (compact.translate(_PHONE_CHARS) or compact.count("+") != compact.count("\x00+")
            or "+\x00" in compact or compact.endswith("+")):
        return [_phone_key(value) for value in values]  # odd characters, or a bare "+"
    return _NATIONAL.sub("\x00~", compact)[1:].split("\x00")  # national: "~" and its digits


_ASCII_SPACE = " \t\r\n"
# Formatting a phone is written with; deleted in one C-level pass.
_PHONE_FORMATTING = str.maketrans("", "", " -()./\t\u00a0")


def _email_key(text: str) -> str:
    if not text:
        return ""
    if text.isascii():
        # core.identifiers' key of every plain address (and the fallback of the others),
        # without building an Identifier: this runs once per opt-out of a fetch.
        return text.strip(_ASCII_SPACE).lower()
    return normalise_email(text).key or text.strip().lower()


def _phone_key(text: str) -> str:
    if not text:
        return ""
    compact = text.translate(_PHONE_FORMATTING)
    if compact[:1] == "+":
        sign, digits = "+", compact[1:]
    elif compact[:2] == "00":  # the international call prefix of most of the world
        sign, digits = "+", compact[2:]
    else:
        sign, digits = "~", compact
    if not (digits.isdigit() and digits.isascii()):
        digits = "".join(ch for ch in digits if "0" <= ch <= "9")
    return sign + digits if digits else ""


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


_SOURCE_CODE = re.compile(r"\s*\((?:OptoutSourceId|source id)\s+(\S+)\)\s*$", re.IGNORECASE)


def source_label(source: str) -> str:
    """A record's source as the operator reads it: "CheckMarket (OptoutSourceId 64)" ->
    "CheckMarket, source code 64" (the platform's codes have no published meaning)."""
    match = _SOURCE_CODE.search(source)
    if match is None:
        return source
    return f"{source[:match.start()]}, source code {match.group(1)}"


def timestamp_value(text: str) -> datetime | str:
    """A canonical UTC timestamp as a naive UTC datetime to the second, for exports (a date
    cell in xlsx, "2026-11-22 09:14:03" in csv); text that is not one stays text."""
    match = _TIMESTAMP.match(text.strip()) if isinstance(text, str) else None
    if match is None or (match.group(8) not in (None, "Z")):
        return text
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
    return datetime(year, month, day, hour, minute, second)
