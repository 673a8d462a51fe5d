"""An opt-out as the desk stores and shows it, whatever platform it came from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

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
        """Identity of the opt-out on its platform: ContactId + DateOptOut when the platform
        gives a contact id, else the identifiers themselves."""
        if self.contact_id is not None:
            return f"c:{self.contact_id}|{self.date_opt_out}"
        return f"i:{self.email.strip().lower()}|{self.phone.strip()}|{self.date_opt_out}"

    def as_row(self) -> tuple[object, ...]:
        """Values in RECORD_COLUMNS order."""
        return tuple(self)


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
