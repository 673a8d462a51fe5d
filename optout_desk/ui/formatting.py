"""Numbers, dates and plurals as the operator's system locale writes them, in one place.

`number(1208)` -> "1,208" (en), "1 208" (fr), "1.208" (de/nl); `counted(1, "opt-out")` ->
"1 opt-out", `counted(2, "opt-out")` -> "2 opt-outs"; `when("2026-11-22T09:14:03.1234567Z")`
-> the moment in local time in the locale's short date and time format. A machine set to the
bare C/POSIX locale (CI, containers) states no preference: numbers then get English grouping
("1,208") and dates the unambiguous "2026-11-22 09:14".
"""

from __future__ import annotations

import datetime
from functools import lru_cache

from PySide6.QtCore import QDate, QDateTime, QLocale, Qt, QTimeZone

_FALLBACK_DATE_TIME = "yyyy-MM-dd HH:mm"
_FALLBACK_DATE = "yyyy-MM-dd"


@lru_cache(maxsize=1)
def _locale() -> tuple[QLocale, bool]:
    system = QLocale()
    if system.language() == QLocale.Language.C:
        english = QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
        return english, True
    return system, False


def reset() -> None:
    """Forget the cached locale (tests that change QLocale.setDefault)."""
    _locale.cache_clear()


def locale() -> QLocale:
    return _locale()[0]


def number(value: int | float) -> str:
    """An integer with the locale's thousands separators (floats to at most 1 decimal)."""
    if isinstance(value, float) and not value.is_integer():
        return locale().toString(value, "f", 1)
    return locale().toString(int(value))


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """"1 opt-out", "1,208 opt-outs" (plural: singular + "s" unless given)."""
    word = singular if count == 1 else (plural or f"{singular}s")
    return f"{number(count)} {word}"


def plural_word(count: int, singular: str, plural: str | None = None) -> str:
    return singular if count == 1 else (plural or f"{singular}s")


def _as_qdatetime(value: str | datetime.datetime) -> QDateTime | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return QDateTime.fromSecsSinceEpoch(int(value.timestamp()), QTimeZone.utc())
    text = value.strip()
    if len(text) < 16 or text[4] != "-" or text[10] not in "T ":
        return None
    # Platforms send up to 7 decimals ("…03.1234567Z"); Qt reads milliseconds at most.
    head, _, rest = text.partition(".")
    zone = ""
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        zone = rest[digits:]
    else:
        head, zone = _split_zone(text)
    head = head.replace(" ", "T")
    parsed = QDateTime.fromString(head + (zone or "Z"), Qt.DateFormat.ISODate)
    return parsed if parsed.isValid() else None


def _split_zone(text: str) -> tuple[str, str]:
    if text.endswith("Z"):
        return text[:-1], "Z"
    for sign in ("+", "-"):
        position = text.rfind(sign, 11)
        if position > 0:
            return text[:position], text[position:]
    return text, ""


def when(value: str | datetime.datetime | None) -> str:
    """A UTC timestamp (ISO text or datetime) in local time, the locale's short format; text
    that is not a timestamp is returned as it is."""
    if value is None or value == "":
        return ""
    moment = _as_qdatetime(value)
    if moment is None:
        return str(value)
    local = moment.toLocalTime()
    qlocale, fallback = _locale()
    if fallback:
        return local.toString(_FALLBACK_DATE_TIME)
    return qlocale.toString(local, QLocale.FormatType.ShortFormat)


def day(value: datetime.date | str) -> str:
    """A calendar date in the locale's short format."""
    if isinstance(value, str):
        parsed = QDate.fromString(value[:10], Qt.DateFormat.ISODate)
        if not parsed.isValid():
            return value
    else:
        parsed = QDate(value.year, value.month, value.day)
    qlocale, fallback = _locale()
    if fallback:
        return parsed.toString(_FALLBACK_DATE)
    return qlocale.toString(parsed, QLocale.FormatType.ShortFormat)
