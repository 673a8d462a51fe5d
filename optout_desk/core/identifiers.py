"""Typed identifiers: the original text as the operator saw it, plus a normalised key.

Matching happens on keys. Every identifier also says how its key was made (`rule`), what was
repaired (`repair`), or why it is unusable (`problem`), so each match can be explained.

Email key: trimmed, Unicode NFC, lower-cased, IDNA (ASCII) domain; syntax checked with
email-validator, never with a DNS look-up. Phone key: E.164 in a default region the user picks.
Phones damaged by Excel (stored as numbers, shown in scientific notation, a lost leading zero)
are repaired only when the repair is certain and then say so; otherwise they are invalid with
the reason.

Speed matters (a million rows per import): whole columns go through normalise_emails and
PhoneNormaliser.many, which handle the common shapes in bulk and hand everything else to the
one-value functions (property tests hold the two to the same results); one-value results are
cached per distinct text; phone validity is one precompiled pattern per calling code — used
on every path, so formatting variants of one number always agree.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time
from enum import StrEnum
from functools import cache, lru_cache
from itertools import repeat
from typing import NamedTuple

import email_validator
import phonenumbers


class IdKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PUSH_TOKEN = "push_token"
    EXTERNAL_ID = "external_id"


class Identifier(NamedTuple):
    """An identifier and its key. A NamedTuple rather than a frozen dataclass: a million are
    built per import, and tuple construction is several times cheaper."""

    kind: IdKind
    original: str
    key: str | None
    problem: str | None = None
    repair: str | None = None
    # How the key was made, as a short text shared by many identifiers ("email, case and
    # spaces ignored", "phone, region BE"); `rule` spells it out for one identifier.
    basis: str = ""

    @property
    def valid(self) -> bool:
        return self.key is not None

    @property
    def rule(self) -> str:
        """The matching rule in words. Built on demand: a per-identifier text for a million
        phones would cost about 100 MB and a tenth of the import time."""
        if self.kind is IdKind.PHONE and self.key is not None:
            if self.original == self.key:
                return "phone, exact E.164"
            if self.basis.startswith(_PHONE_BASIS):
                region = self.basis[len(_PHONE_BASIS):]
                return f"phone {self.key} from '{self.original}', region {region}"
        return self.basis


_PHONE_BASIS = "phone, region "


def cell_text(value: object) -> str:
    """How a spreadsheet cell value reads: integral floats without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------- email

_DOT_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SIMPLE_EMAIL = re.compile(rf"({_DOT_ATOM})@((?:{_LABEL}\.)+[a-z]{{2,63}})")
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
# Longer than this is refused without email_validator's full pass (at most 254 are valid; the
# margin keeps its own, more precise message for anything near the limit).
_EMAIL_TEXT_LIMIT = 4096
# Whitespace that survives copy-paste from web pages and Excel.
_EMAIL_SPACE = " \t\r\n\u00a0\u200b\u2007\u202f\ufeff"


_EMAIL_EXACT = "email, exact"
_EMAIL_CASE = "email, case and spaces ignored"
_EMAIL_IDNA = "email, case and spaces ignored, domain in IDNA form"
_email_cache: dict[str, Identifier] = {}
_special_use_cache: dict[str, bool] = {}


def normalise_email(text: str) -> Identifier:
    """The email identifier of `text`, cached per distinct text (a dict, not lru_cache: a
    million distinct addresses per import make lru_cache's bookkeeping a third of the cost)."""
    result = _email_cache.get(text)
    if result is None:
        result = _normalise_email(text)
        if len(_email_cache) > 2_000_000:  # a bound, not an eviction policy: rare and cheap
            _email_cache.clear()
        _email_cache[text] = result
    return result


def normalise_email_once(text: str) -> Identifier:
    """normalise_email without its cache: for a long-running process (the webhook receiver)
    that sees each address once or twice, where caching every one would only grow."""
    return _normalise_email(text)


def _normalise_email(text: str) -> Identifier:
    original = text
    trimmed = text.strip(_EMAIL_SPACE)
    if not trimmed:
        return Identifier(IdKind.EMAIL, original, None, problem="empty", basis="email")
    if len(trimmed) > _EMAIL_TEXT_LIMIT:
        # email_validator would say the same after a quarter of a second per megabyte (a
        # webhook body of one huge Email held the receiver's event loop that long).
        return Identifier(
            IdKind.EMAIL, original, None, basis="email",
            problem=f"not a valid email address: it is {len(trimmed):,} characters long "
            "(an email address has at most 254)",
        )
    if not trimmed.isascii():
        trimmed = unicodedata.normalize("NFC", trimmed)
    lowered = trimmed.lower()
    match = _SIMPLE_EMAIL.fullmatch(lowered) if lowered.isascii() else None
    if match and len(lowered) <= 254 and len(match.group(1)) <= 64:
        if not _special_use_cached(match.group(2)):
            # The common case: plain ASCII, already valid. tuple.__new__ skips NamedTuple's
            # keyword-handling constructor, which costs as much as the checks above.
            basis = _EMAIL_EXACT if lowered == original else _EMAIL_CASE
            return tuple.__new__(Identifier, (IdKind.EMAIL, original, lowered, None, None, basis))
    try:
        result = email_validator.validate_email(
            trimmed, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        return Identifier(
            IdKind.EMAIL, original, None, problem=f"not a valid email address: {exc}",
            basis="email",
        )
    key = f"{result.local_part.lower()}@{result.ascii_domain.lower()}"
    if key == original:
        basis = _EMAIL_EXACT
    elif key.split("@")[1] != lowered.split("@")[-1]:
        basis = _EMAIL_IDNA
    else:
        basis = _EMAIL_CASE
    return Identifier(IdKind.EMAIL, original, key, basis=basis)


def normalise_emails(values: Sequence[str]) -> list[Identifier]:
    """[normalise_email(v) for v in values], with the common case done in bulk.

    A column of plain ASCII addresses is checked as one string with C-level scans (allowed
    characters, one '@' each, dot placement, length) and each distinct domain once, so only
    the Identifier tuples are built one by one: about 3x faster than per value. Whatever the
    bulk checks do not vouch for goes through normalise_email itself, so the results are the
    same by construction; a property test holds the two to that."""
    count = len(values)
    joined = "\x00".join(values)
    if count == 0 or joined.count("\x00") != count - 1:
        return [normalise_email(value) for value in values]
    if any(space in joined for space in _EMAIL_SPACE):
        joined = "\x00".join([value.strip(_EMAIL_SPACE) for value in values])
    text = joined.lower()
    lowered = text.split("\x00")
    new, exact, case = tuple.__new__, _EMAIL_EXACT, _EMAIL_CASE
    if _all_simple(text, lowered, count):
        return [
            new(Identifier, (IdKind.EMAIL, o, k, None, None, exact if o == k else case))
            for o, k in zip(values, lowered, strict=True)
        ]
    results: list[Identifier] = []
    append = results.append
    for original, key in zip(values, lowered, strict=True):
        match = _SIMPLE_EMAIL.fullmatch(key) if key.isascii() else None
        if match is not None and len(key) <= 64 and not _special_use_cached(match.group(2)):
            append(new(Identifier, (IdKind.EMAIL, original, key, None, None,
                                    exact if original == key else case)))
        else:
            append(normalise_email(original))
    return results


def normalise_email_column(values: Sequence[str | None]) -> list[Identifier | None]:
    """normalise_emails over a column whose empty cells (None or "") stay None."""
    present = [value for value in values if value]
    if len(present) == len(values):
        return list(normalise_emails(present))
    found = iter(normalise_emails(present))
    return [next(found) if value else None for value in values]


# Characters of a lower-cased simple address; everything else is deleted by translate().
_ADDRESS_CHARS = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-.@")
_DOMAIN_OF = re.compile(r"@([^\x00]*)")
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[a-z]{{2,63}}")
_MISPLACED = ("..", ".@", "@.", "\x00.", ".\x00", "\x00@", "@\x00")


def _all_simple(text: str, lowered: list[str], count: int) -> bool:
    """True when every address in `text` (lower-cased, '\\x00'-separated) is one that
    _SIMPLE_EMAIL accepts, with its parts short enough and a domain that is not special-use:
    checked on the whole column at once."""
    if not text.isascii() or text.translate(_ADDRESS_CHARS) != "\x00" * (count - 1):
        return False
    if text.count("@") != count or not all(map(str.__contains__, lowered, repeat("@"))):
        return False  # exactly one '@' in each
    if any(bad in text for bad in _MISPLACED) or text[:1] in ".@" or text[-1:] in ".@":
        return False
    if max(map(len, lowered)) > 64:  # the local part <= 64 and the address <= 254
        return False
    return all(_domain_ok(domain) for domain in set(_DOMAIN_OF.findall(text)))


def _domain_ok(domain: str) -> bool:
    """A domain _SIMPLE_EMAIL accepts and that is not special-use (called once per distinct
    domain of a column)."""
    return _DOMAIN.fullmatch(domain) is not None and not _special_use_cached(domain)


def _special_use_cached(domain: str) -> bool:
    special = _special_use_cache.get(domain)
    if special is None:
        special = _special_use_cache[domain] = _special_use(domain)
    return special


def _special_use(domain: str) -> bool:
    parts = domain.split(".")
    return any(".".join(parts[i:]) in _SPECIAL_USE for i in range(len(parts)))


# ---------------------------------------------------------------- phone

# Characters people and spreadsheets put inside phone numbers; dropped before parsing.
_PHONE_FORMATTING = str.maketrans("", "", " \t\u00a0\u2007\u202f-.()/\u2010\u2011\u2013")
_SCIENTIFIC = re.compile(r"(\d)(?:[.,](\d+))?[eE]\+?(\d{1,2})")
_FLOAT_TEXT = re.compile(r"(\d+)[.,]0+")
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# Excel keeps 15 significant digits; a longer number stored as a number has lost digits.
_EXCEL_DIGITS = 15
_NUMBER_CELL = "Excel stored it as a number"
_PLUS_MISSING = "the '+' was missing; read as an international number"
_NUMBER_CELL_PLUS_MISSING = f"{_NUMBER_CELL}; {_PLUS_MISSING}"


@cache
def _national_patterns(country_code: int) -> tuple[tuple[re.Pattern[str], frozenset[int]], ...]:
    """(national-number pattern, possible lengths) of every region sharing a calling code."""
    patterns = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        if region == "001":
            metadata = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
        else:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None or metadata.general_desc is None:
            continue
        desc = metadata.general_desc
        if desc.national_number_pattern is None:
            continue
        patterns.append(
            (re.compile(desc.national_number_pattern), frozenset(desc.possible_length or ()))
        )
    return tuple(patterns)


def load_phone_metadata() -> None:
    """Load every region's phone metadata and compile every calling code's number patterns now
    (about 0.1 s, once per process), instead of bit by bit during the first phone column's
    normalisation: the importer calls it on a spare thread while a file is being parsed."""
    for region in phonenumbers.SUPPORTED_REGIONS:
        phonenumbers.PhoneMetadata.metadata_for_region(region)
    for code in _COUNTRY_CODES:
        _national_patterns(code)


def _valid(country_code: int, national: str) -> bool:
    """The one validity test every path uses: the number fits its calling code's plan."""
    length = len(national)
    for pattern, lengths in _national_patterns(country_code):
        if (not lengths or length in lengths) and pattern.fullmatch(national):
            return True
    return False


_CODE_PREFIXES = {str(code): (code, len(str(code))) for code in _COUNTRY_CODES}


# Every 3-digit start of an international number -> (calling code, its length): one look-up
# instead of up to three (calling codes are prefix-free).
_CODE_OF_PREFIX = {
    start: found for start in (f"{n:03d}" for n in range(1000))
    if (found := _CODE_PREFIXES.get(start[:1]) or _CODE_PREFIXES.get(start[:2])
        or _CODE_PREFIXES.get(start[:3])) is not None
}


def _split_international(digits: str) -> tuple[int, str] | None:
    """'32470123456' -> (32, '470123456'); calling codes are prefix-free, 1–3 digits."""
    if len(digits) >= 3:
        found = _CODE_OF_PREFIX.get(digits[:3])
    else:
        found = _CODE_PREFIXES.get(digits[:1]) or _CODE_PREFIXES.get(digits[:2])
    if found is None or len(digits) <= found[1]:
        return None
    return found[0], digits[found[1]:]


class PhoneNormaliser:
    """Normalises phones to E.164 in one default region, caching each distinct value."""

    def __init__(self, default_region: str) -> None:
        region = default_region.strip().upper()
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            raise ValueError(f"unknown phone region {default_region!r}")
        self.region = region
        self._country_code: int = metadata.country_code or 0
        prefix = metadata.national_prefix
        simple = metadata.national_prefix_for_parsing in (None, prefix)
        # Regions whose trunk prefix can simply be dropped ("0470…" -> "+32 470…"); others go
        # through phonenumbers' full parser.
        self._trunk_prefix: str | None = prefix if prefix and simple else None
        self._cache: dict[object, Identifier] = {}
        self._basis = f"{_PHONE_BASIS}{region}"  # one string shared by every phone it makes

    def __call__(self, value: str | int | float | None) -> Identifier:
        result = self._cache.get(value)
        if result is not None:
            return result
        result = self.once(value)
        cache = self._cache
        if len(cache) > 2_000_000:  # a bound, not an eviction policy: rare and cheap
            cache.clear()
        cache[value] = result
        return result

    def once(self, value: str | int | float | None) -> Identifier:
        """The phone without the cache: for a long-running process (the webhook receiver)
        that sees each number once or twice, where caching every one would only grow (to
        about 400 MB at the cache's bound)."""
        if (type(value) is str and value[:1] == "+" and len(value) < 17 and value.isascii()
                and value[1:].isdigit()):
            # Already E.164, the commonest shape in platform exports: no parsing at all.
            return self._from_international(value, value[1:], None)
        return self._normalise(value)

    def many(self, values: Sequence[str | int | float | None]) -> list[Identifier | None]:
        """[None if v is None else self(v) for v in values], with the commonest shapes inline.

        Text in E.164 or written with spaces, dashes or slashes, and national numbers with the
        trunk prefix, are checked and keyed here without the per-value cache, method calls or
        key formatting (an E.164 text is its own key); everything else, and anything not
        valid, goes through __call__, so the results are the same. A property test holds them
        to that."""
        results: list[Identifier | None] = []
        append = results.append
        new, kind, basis = tuple.__new__, IdKind.PHONE, self._basis
        table, split, valid = _PHONE_FORMATTING, _split_international, _valid
        own_code, trunk = self._country_code, self._trunk_prefix or ""
        trunk_length = len(trunk)
        for value in values:
            if value is None:
                append(None)
                continue
            if type(value) is str:
                if value[:1] == "+" and value[1:].isdigit() and value.isascii():
                    text = value  # already E.164 in shape: the commonest case
                elif value.isdigit() and value.isascii():
                    text = value
                elif (value.isascii() and "." not in value and "," not in value
                        and "e" not in value and "E" not in value):
                    # No Excel rendering (scientific notation, a float's ".0") is involved, so
                    # formatting can go: spaces alone by replace() (a tenth of translate()).
                    text = value.replace(" ", "")
                    if not (text.isdigit() or (text[:1] == "+" and text[1:].isdigit())):
                        text = value.translate(table)
                else:
                    append(self(value))
                    continue
                if text[:1] == "+":
                    digits = text[1:]
                    parts = split(digits) if digits.isdigit() else None
                    if parts is not None and valid(*parts):
                        append(new(Identifier, (kind, value, text, None, None, basis)))
                        continue
                elif (trunk_length and text[:trunk_length] == trunk and text[:2] != "00"
                        and text.isdigit()):
                    national = text[trunk_length:]
                    if valid(own_code, national):
                        append(new(Identifier, (kind, value, f"+{own_code}{national}", None,
                                                None, basis)))
                        continue
            elif type(value) is float and 0 < value < 1e15 and value.is_integer():
                # A number cell: the commonest damage is an international number that lost
                # its '+' (a national one that lost its trunk zero takes the full path).
                digits = str(int(value))
                if not (trunk_length and digits[:trunk_length] == trunk) \
                        and not valid(own_code, digits):
                    parts = split(digits)
                    if parts is not None and valid(*parts):
                        append(new(Identifier, (kind, digits, "+" + digits, None,
                                                _NUMBER_CELL_PLUS_MISSING, basis)))
                        continue
            append(self(value))
        return results

    # -- the shapes a phone arrives in

    def _normalise(self, value: str | int | float | None) -> Identifier:
        if value is None or isinstance(value, bool):
            return self._invalid("" if value is None else cell_text(value), "empty")
        if isinstance(value, (int, float)):
            return self._from_number_cell(value)
        original = str(value)
        stripped = original.strip()
        # Excel's number renderings are recognised before '.' is dropped as formatting (the
        # `in` tests first: most phones have none of these characters).
        if "." in stripped or "," in stripped or "e" in stripped or "E" in stripped:
            scientific = _SCIENTIFIC.fullmatch(stripped)
            if scientific:
                return self._from_scientific(original, scientific)
            as_float = _FLOAT_TEXT.fullmatch(stripped)
            if as_float:
                return self._from_digits(
                    original, as_float.group(1),
                    f"Excel stored it as a number ('{stripped}'); the '.0' was dropped",
                    numeric_cell=True,
                )
        text = stripped.translate(_PHONE_FORMATTING)
        if not text:
            return self._invalid(original, "empty")
        if text.isascii():  # other scripts' digits: phonenumbers knows them
            if text[0] == "+":
                if text[1:].isdigit():
                    return self._from_international(original, text[1:], None)
            elif text.isdigit():
                if text.startswith("00"):
                    return self._from_international(
                        original, text[2:], "the leading 00 was read as the international prefix"
                    )
                return self._from_digits(original, text, None, numeric_cell=False)
        return self._parse_slow(original)

    def _from_number_cell(self, value: int | float) -> Identifier:
        original = cell_text(value)
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            return self._invalid(original, "a decimal number, not a phone number")
        digits = str(int(value))
        if len(digits) > _EXCEL_DIGITS:
            return self._invalid(
                original,
                "Excel stored it as a number and kept only 15 digits, so digits are lost; "
                "format the column as Text in Excel and export it again",
            )
        return self._from_digits(original, digits, _NUMBER_CELL, True)

    def _from_scientific(self, original: str, match: re.Match[str]) -> Identifier:
        digits = match.group(1) + (match.group(2) or "")
        length = int(match.group(3)) + 1
        if len(digits) < length:
            lost = length - len(digits)
            return self._invalid(
                original,
                f"Excel showed it in scientific notation ({original.strip()}) and its last "
                f"{lost} digit{'s' if lost > 1 else ''} are lost; format the column as Text in "
                "Excel and export it again",
            )
        digits = digits[:length] if set(digits[length:]) <= {"0"} else ""
        if not digits:
            return self._invalid(original, "a decimal number, not a phone number")
        return self._from_digits(
            original, digits, f"Excel showed it in scientific notation ({original.strip()})",
            numeric_cell=True,
        )

    def _from_digits(
        self, original: str, digits: str, note: str | None, numeric_cell: bool
    ) -> Identifier:
        """Digits without '+': a national number, or an international one that lost its '+'."""
        trunk = self._trunk_prefix
        if trunk and digits.startswith(trunk):
            national = digits[len(trunk):]
            if _valid(self._country_code, national):
                return self._ok(original, self._country_code, national, note)
        elif _valid(self._country_code, digits):
            # A national number without its trunk prefix; from a number cell in a region whose
            # numbers start with 0, that is Excel dropping the leading zero.
            if numeric_cell and trunk == "0":
                note = (
                    f"Excel stored it as a number and dropped the leading {trunk}; read as the "
                    f"national number {trunk}{digits}"
                )
            return self._ok(original, self._country_code, digits, note)
        split = _split_international(digits)
        if split and _valid(*split):
            return self._ok(original, *split, f"{note}; {_PLUS_MISSING}" if note else _PLUS_MISSING)
        if not numeric_cell:
            return self._parse_slow(original)
        return self._invalid(
            original, f"not a valid phone number in region {self.region}", note
        )

    def _from_international(self, original: str, digits: str, note: str | None) -> Identifier:
        split = _split_international(digits)
        if split and _valid(*split):
            return self._ok(original, *split, note)
        return self._invalid(original, "not a valid international phone number", note)

    def _parse_slow(self, original: str) -> Identifier:
        try:
            number = phonenumbers.parse(original, self.region)
        except phonenumbers.NumberParseException:
            return self._invalid(original, "not a phone number")
        national = phonenumbers.national_significant_number(number)
        if number.country_code is None or not _valid(number.country_code, national):
            return self._invalid(original, f"not a valid phone number in region {self.region}")
        return self._ok(original, number.country_code, national, None)

    # -- results

    def _ok(
        self, original: str, country_code: int, national: str, repair: str | None
    ) -> Identifier:
        # tuple.__new__ skips NamedTuple's keyword-handling constructor: this runs per cell.
        return tuple.__new__(Identifier, (
            IdKind.PHONE, original, f"+{country_code}{national}", None, repair, self._basis
        ))

    def _invalid(self, original: str, problem: str, repair: str | None = None) -> Identifier:
        return Identifier(
            IdKind.PHONE, original, None, problem=problem, repair=repair, basis="phone"
        )


@lru_cache(maxsize=64)
def phone_normaliser(region: str) -> PhoneNormaliser:
    """The shared, cached normaliser of a region."""
    return PhoneNormaliser(region)


def normalise_phone(value: str | int | float | None, region: str) -> Identifier:
    return phone_normaliser(region.upper())(value)


def normalise_token(text: str, kind: IdKind = IdKind.PUSH_TOKEN) -> Identifier:
    """Push tokens and external ids are opaque: only surrounding spaces are ignored."""
    key = text.strip()
    if not key:
        return Identifier(kind, text, None, problem="empty", basis=kind.value)
    return Identifier(kind, text, key, basis=f"{kind.value}, exact" if key == text else
                      f"{kind.value}, spaces ignored")
