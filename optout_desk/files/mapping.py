"""Which columns of an imported table hold emails and phones, and normalising them.

Columns are proposed by their CONTENT: a sample of up to a few thousand non-empty cells is run
through core.identifiers and a column qualifies when most of its sample is valid. The header
("E-mail", "Mail", "Téléphone", "Mobile", "GSM", "Tel", …) only breaks ties: it lifts a column a
little; a header naming something else ("Customer ID", "Zip", "Date") keeps numbers that happen
to parse as phones out of the phone columns; and a column whose header
clearly names emails or phones is proposed when no column qualifies by content (so its invalid
cells are shown rather than silently ignored). A row may have several email and phone columns.
"""

from __future__ import annotations

import gc
import locale
import os
import re
import unicodedata
from dataclasses import dataclass
from operator import itemgetter

import phonenumbers

from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import (
    Identifier,
    IdKind,
    cell_text,
    normalise_email,
    normalise_email_column,
    phone_normaliser,
)
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback
from optout_desk.core.progress import no_progress as _no_progress

from .spreadsheet import CellValue, ImportedTable, column_letter

no_progress = _no_progress

SAMPLE_SIZE = 2000
_QUALIFY = 0.5  # share of valid cells (plus header hint) for a column to be proposed
_HEADER_HINT = 0.25
_CHUNK = 100_000

_EMAIL_WORDS = re.compile(r"e-?mail|courriel|mail|adresse|address|correo|email")
_PHONE_WORDS = re.compile(
    r"phone|tel|mobile|mobiel|gsm|cell|portable|handy|telefoon|telefon|sms|msisdn"
)
_WEAK_PHONE_WORDS = re.compile(r"numero|number|nummer|num\b|no\b")
_OTHER_WORDS = re.compile(
    r"\b(id|ids|zip|postcode|postal|code|date|datum|name|nom|naam|customer|client|account"
    r"|survey|contact|count|amount|price|qty|vat|iban|order)\b"
)


@dataclass
class ColumnMapping:
    email_columns: list[int]
    phone_columns: list[int]
    region: str


@dataclass(frozen=True)
class ColumnScore:
    """Why a column was (or was not) proposed: shown next to the mapping."""

    column: int
    sampled: int
    email_share: float
    phone_share: float
    header_hint: str  # "email", "phone", "other" or ""


@dataclass
class ColumnIdentifiers:
    column: int
    kind: IdKind
    identifiers: list[Identifier | None]  # aligned with table.rows; None for an empty cell


def default_region() -> str:
    """The phone region of the system locale ("fr_BE.UTF-8" -> "BE"), else "US"."""
    candidates: list[str | None] = []
    try:
        candidates.append(locale.getlocale()[0])
    except ValueError:
        pass
    candidates += [os.environ.get(name) for name in ("LC_ALL", "LC_CTYPE", "LANG")]
    for candidate in candidates:
        region = _region_of(candidate)
        if region:
            return region
    return "US"


def _region_of(locale_name: str | None) -> str | None:
    if not locale_name:
        return None
    match = re.match(r"[A-Za-z]{2,3}[_-]([A-Za-z]{2})\b", locale_name)
    if not match:
        return None
    region = match.group(1).upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def check_region(region: str) -> str:
    """The region in upper case; BadInputError if phonenumbers does not know it."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise BadInputError(
            f"'{region}' is not a phone region; use a two-letter country code such as BE, FR, "
            "NL, GB or US."
        )
    return code


def score_columns(table: ImportedTable, region: str) -> list[ColumnScore]:
    phone = phone_normaliser(check_region(region))
    scores = []
    for index in range(table.column_count):
        sample = _sample(table, index)
        emails = phones = 0
        for value in sample:
            if isinstance(value, str):
                if "@" in value and normalise_email(value).key is not None:
                    emails += 1
                    continue
                if phone(value).key is not None:
                    phones += 1
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if phone(value).key is not None:
                    phones += 1
        count = len(sample)
        scores.append(
            ColumnScore(
                index, count, emails / count if count else 0.0, phones / count if count else 0.0,
                _header_hint(table.headers[index]),
            )
        )
    return scores


def detect_columns(table: ImportedTable, region: str | None = None) -> ColumnMapping:
    """Propose the email and phone columns of `table` (region: default_region())."""
    region = check_region(region or default_region())
    scores = score_columns(table, region)
    emails = [s.column for s in scores if _total(s, "email") >= _QUALIFY and s.email_share > 0]
    phones = [
        s.column for s in scores
        if s.column not in emails and _total(s, "phone") >= _QUALIFY and s.phone_share > 0
    ]
    if not emails:
        emails = [s.column for s in scores if s.header_hint == "email" and s.column not in phones]
    if not phones:
        phones = [s.column for s in scores if s.header_hint == "phone" and s.column not in emails]
    return ColumnMapping(email_columns=emails, phone_columns=phones, region=region)


def _total(score: ColumnScore, kind: str) -> float:
    if kind == "email":
        # An address is never anything else, so content decides whatever the header says.
        return score.email_share + (_HEADER_HINT if score.header_hint == "email" else 0.0)
    if score.header_hint == "other":
        # Customer numbers, zip codes and amounts can parse as national phone numbers; a
        # header naming something else rules the column out (it can still be chosen by hand).
        return 0.0
    return score.phone_share + (_HEADER_HINT if score.header_hint == "phone" else 0.0)


def _header_hint(header: str) -> str:
    folded = unicodedata.normalize("NFKD", header.casefold())
    text = "".join(char for char in folded if not unicodedata.combining(char))
    if _EMAIL_WORDS.search(text):
        return "email"
    if _PHONE_WORDS.search(text):
        return "phone"
    if _OTHER_WORDS.search(text):
        return "other"
    if _WEAK_PHONE_WORDS.search(text):
        return "phone"
    return ""


def _sample(table: ImportedTable, index: int) -> list[CellValue]:
    sample: list[CellValue] = []
    for row in table.rows:
        value = row[index]
        if value is not None and value != "":
            sample.append(value)
            if len(sample) >= SAMPLE_SIZE:
                break
    return sample


def resolve_column(table: ImportedTable, spec: str) -> int:
    """A column given as a header name (case-insensitive), a letter ("B") or a 1-based number."""
    text = spec.strip()
    folded = text.casefold()
    by_name = [i for i, header in enumerate(table.headers) if header.strip().casefold() == folded]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        letters = " and ".join(column_letter(i) for i in by_name)
        raise BadInputError(
            f"Several columns are named '{text}' ({letters}); give the column letter instead."
        )
    if text.isdigit() and 1 <= int(text) <= table.column_count:
        return int(text) - 1
    if re.fullmatch(r"[A-Za-z]{1,3}", text):
        index = _letter_index(text)
        if index < table.column_count:
            return index
    listing = ", ".join(table.column_label(i) for i in range(table.column_count))
    raise BadInputError(
        f"There is no column '{spec}' in the file; give a header name, a letter or a number. "
        f"The columns are: {listing}."
    )


def _letter_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - 64)
    return index - 1


def normalise_columns(
    table: ImportedTable,
    mapping: ColumnMapping,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[ColumnIdentifiers]:
    """Every mapped cell as an Identifier (None for empty cells), column by column.

    Text goes to the normalisers as it is; number cells go to the phone normaliser as numbers
    (so Excel damage is recognised) and to the email normaliser as their displayed text."""
    collecting = gc.isenabled()
    gc.disable()  # millions of Identifier tuples, none garbage: see spreadsheet.read_table
    try:
        return _normalise_columns(table, mapping, progress, cancel)
    finally:
        if collecting:
            gc.enable()


def _normalise_columns(
    table: ImportedTable, mapping: ColumnMapping, progress: ProgressCallback,
    cancel: CancelToken,
) -> list[ColumnIdentifiers]:
    phone = phone_normaliser(check_region(mapping.region))
    jobs = [(index, IdKind.EMAIL) for index in mapping.email_columns]
    jobs += [(index, IdKind.PHONE) for index in mapping.phone_columns]
    rows = table.rows
    total = len(rows) * len(jobs)
    done = 0
    results: list[ColumnIdentifiers] = []
    for index, kind in jobs:
        identifiers: list[Identifier | None] = []
        for start in range(0, len(rows), _CHUNK):
            cancel.raise_if_cancelled()
            values = list(map(itemgetter(index), rows[start:start + _CHUNK]))
            # The bulk normalisers: per cell they cost a third to a half of one-by-one calls.
            if kind is IdKind.EMAIL:
                identifiers += normalise_email_column([
                    value if value is None or type(value) is str else cell_text(value)
                    for value in values
                ])
            else:
                identifiers += phone.many([
                    value if value is None or type(value) in _PHONE_TYPES
                    else cell_text(value)
                    for value in values
                ])
            done += len(values)
            progress(Progress(done, total, "cells", "Normalising identifiers…"))
        results.append(ColumnIdentifiers(index, kind, identifiers))
    return results


# Cell types the phone normaliser takes as they are (numbers: Excel damage is detected).
_PHONE_TYPES = frozenset({str, int, float})
