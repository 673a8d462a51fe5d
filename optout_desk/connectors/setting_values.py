"""Reading one connection setting from a profile's mapping: numbers within limits, names fit to
go into a URL path, flags and lists of names. Each refusal is a ConfigurationError naming the
setting and what it accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from optout_desk.connectors.errors import ConfigurationError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def number(name: str, value: Any, kind: Callable[[Any], float | int], low: float,
           high: float) -> float | int:
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        converted = None
    if converted is None or isinstance(value, bool) or not low <= converted <= high:
        raise ConfigurationError(
            f"The setting {name} = {value!r} is not usable: give a number from {low:g} to "
            f"{high:g}.")
    return converted


def flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"The setting {name} = {value!r} is not usable: give true or "
                             "false.")


def name(setting: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    text = value.strip() if isinstance(value, str) else None
    if text is None or not pattern.fullmatch(text):
        raise ConfigurationError(f"The setting {setting} = {value!r} is not usable: give "
                                 f"{what}.")
    return text


def names(setting: str, value: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A list of names, or one text of names separated by commas; duplicates dropped."""
    items: list[Any]
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigurationError(f"The setting {setting} = {value!r} is not usable: give "
                                 f"{what}, separated by commas.")
    return tuple(dict.fromkeys(name(setting, item, pattern, what) for item in items))
