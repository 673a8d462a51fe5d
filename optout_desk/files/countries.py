"""A spreadsheet's country cell as a phone region: "BE", "be", "BEL"?, "Belgium", "België",
"Belgique", "+32"… -> "BE".

Used to read national phone numbers (0470 12 34 56) in the country of their row. ISO 3166
alpha-2 codes and the CLDR names in the operators' languages (files/_countries.py) are known;
a calling code ("+44", "0044") stands for its main region. Anything else is not guessed: the
cell is reported as unknown and the row's phones fall back to the chosen default region.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from ._countries import NAMES

__all__ = ["NAMES", "REGIONS", "name_of", "region_of", "search_text"]

REGIONS: frozenset[str] = frozenset(NAMES)
_CALLING_CODE = re.compile(r"(?:\+|00)(\d{1,3})")
_PUNCTUATION = re.compile(r"[\s.\-_'’()]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _PUNCTUATION.sub(" ", plain).strip()


@lru_cache(maxsize=1)
def _by_name() -> dict[str, str]:
    index: dict[str, str] = {}
    for region, names in NAMES.items():
        for name in names:
            index.setdefault(_fold(name), region)
    return index


def name_of(region: str) -> str:
    """The English name of a region ("BE" -> "Belgium"); the code itself if unknown."""
    names = NAMES.get(region.upper())
    return names[0] if names else region


def region_of(value: object) -> str | None:
    """The phone region a country cell names, or None when it names none the desk knows."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return _region_of_text(text)


@lru_cache(maxsize=4096)
def _region_of_text(text: str) -> str | None:
    if len(text) == 2 and text.isalpha() and text.upper() in REGIONS:
        return text.upper()
    calling = _CALLING_CODE.fullmatch(text.replace(" ", ""))
    if calling:
        region = phonenumbers.region_code_for_country_code(int(calling.group(1)))
        return region if region in REGIONS else None
    return _by_name().get(_fold(text))


def search_text(region: str) -> str:
    """What a region matches when searched: its code, calling code and names, folded."""
    code = phonenumbers.country_code_for_region(region)
    names = " ".join(_fold(name) for name in NAMES.get(region, ()))
    return f"{region.lower()} +{code} {names}"
