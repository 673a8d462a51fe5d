"""Which columns of an imported table hold emails and phones, and normalising them.

Columns are proposed by their CONTENT: a sample of up to a few thousand non-empty cells is run
through core.identifiers and a column qualifies when most of its sample is valid. The header
("E-mail", "Mail", "Téléphone", "Mobile", "GSM", "Tel", …) only breaks ties: it lifts a column a
little; a header naming something else ("Customer ID", "Zip", "Date") keeps numbers that happen
to parse as phones out of the phone columns; and a column whose header
clearly names emails or phones is proposed when no column qualifies by content (so its invalid
cells are shown rather than silently ignored). A row may have several email and phone columns.

The mapping also says what the file IS (core.reconcile.FileRole): a list of opt-outs, a contact
list whose status column says who opted out, or a send list to scrub. `propose_status` finds a
status-like column (few distinct values, a header such as "Status", "Subscribed", "Opt-out",
"Newsletter") and the values in it that mean "opted out" (Unsubscribed, Opted out, STOP, and
TRUE/yes under an opt-out header or FALSE/no under a consent header); `propose_country` finds a
column of countries (ISO codes or names, files/countries.py) so each row's national phone
numbers are read in their own country. Both are proposals the operator confirms.
"""

from __future__ import annotations

import gc
import locale
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import phonenumbers

from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import (
    Identifier,
    IdKind,
    cell_text,
    normalise_email,
    normalise_email_column,
    normalise_token,
    phone_normaliser,
)
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback
from optout_desk.core.progress import no_progress as _no_progress
from optout_desk.core.reconcile import FileRole

from . import countries
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
    region: str  # the default phone region (rows without a known country)
    # What the file is; for a contact list, its status column and the values meaning "opted
    # out" (compared case- and space-blind).
    role: FileRole = FileRole.OPTOUTS
    status_column: int | None = None
    opted_out_values: tuple[str, ...] = ()
    # A column naming each row's country: its phones are read in that country.
    country_column: int | None = None
    # Columns of push tokens (Dynamic Yield's push opt-outs): kept as written, trimmed, never
    # case-folded. Never proposed from content (a token looks like any id): the operator ticks.
    push_columns: list[int] = field(default_factory=list)

    def opted_out_flags(self, table: ImportedTable) -> list[bool]:
        """Per row, whether its status cell is one of the opted-out values."""
        if self.status_column is None:
            raise BadInputError("A contact list needs its status column; choose it.")
        wanted = {status_key(value) for value in self.opted_out_values}
        if not wanted:
            raise BadInputError(
                "Choose the status values that mean 'opted out' (for example Unsubscribed).")
        index = self.status_column
        return [status_key(row[index]) in wanted for row in table.rows]

    def statuses(self, table: ImportedTable) -> list[str] | None:
        """A contact list's status cell per row, as text (None for other files)."""
        if self.role is not FileRole.CONTACTS or self.status_column is None:
            return None
        index = self.status_column
        return [cell_text(row[index]) for row in table.rows]


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
    by_region = _rows_by_region(table, mapping) if mapping.phone_columns else None
    jobs = [(index, IdKind.EMAIL) for index in mapping.email_columns]
    jobs += [(index, IdKind.PHONE) for index in mapping.phone_columns]
    jobs += [(index, IdKind.PUSH_TOKEN) for index in mapping.push_columns]
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
            elif kind is IdKind.PUSH_TOKEN:
                identifiers += [None if value is None or not cell_text(value).strip()
                                else normalise_token(cell_text(value)) for value in values]
            elif by_region is None:
                identifiers += phone.many(_phone_cells(values))
            else:
                identifiers += _phones_by_region(values, start, by_region)
            done += len(values)
            progress(Progress(done, total, "cells", "Normalising identifiers…"))
        results.append(ColumnIdentifiers(index, kind, identifiers))
    return results


# Cell types the phone normaliser takes as they are (numbers: Excel damage is detected).
_PHONE_TYPES = frozenset({str, int, float})


def _phone_cells(values: Sequence[CellValue]) -> list[str | int | float | None]:
    return [
        value if value is None or type(value) in _PHONE_TYPES else cell_text(value)  # type: ignore[misc]
        for value in values
    ]


def _rows_by_region(table: ImportedTable, mapping: ColumnMapping) -> list[str] | None:
    """Each row's region when the file has a country column, else None (one region)."""
    if mapping.country_column is None:
        return None
    return row_regions(table, mapping)


def _phones_by_region(values: Sequence[CellValue], start: int,
                      regions: list[str]) -> list[Identifier | None]:
    """A chunk of phone cells, each read in its row's region (one bulk call per region)."""
    cells = _phone_cells(values)
    result: list[Identifier | None] = [None] * len(cells)
    groups: dict[str, list[int]] = {}
    for offset in range(len(cells)):
        groups.setdefault(regions[start + offset], []).append(offset)
    for region, offsets in groups.items():
        found = phone_normaliser(region).many([cells[offset] for offset in offsets])
        for offset, identifier in zip(offsets, found, strict=True):
            result[offset] = identifier
    return result


# ---------------------------------------------------------------- what the file is

# Values that say "opted out" whatever the header.
_OPTED_OUT_WORDS = frozenset({
    "unsubscribed", "unsubscribe", "opted out", "opted-out", "optedout", "opt out", "opt-out",
    "optout", "stop", "stopped", "blocked", "do not contact", "do not email", "dnc",
    "no contact", "withdrawn", "revoked", "désabonné", "desabonne", "désinscrit", "afgemeld",
    "uitgeschreven", "abgemeldet", "abbestellt", "baja", "dado de baja", "disiscritto",
})
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "x", "ja", "oui", "si", "sí", "wahr", "vrai"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "nee", "non", "nein", "falsch", "faux"})
# Headers of a column whose TRUE means "opted out" …
_OPT_OUT_HEADER = re.compile(
    r"opt(?:ed)?.?out|unsub|do.?not|dnc|blocked|stop|afgemeld|desabon|abmeld")
# … and of a column whose FALSE means it (consent, subscription).
_CONSENT_HEADER = re.compile(
    r"subscri|consent|opt.?in|permission|marketing|newsletter|mailing|allow|accept|ok.?to")
_STATUS_HEADER = re.compile(r"status|state|statut|etat|estado|stato")
_MAX_STATUS_VALUES = 12  # a status column has a handful of distinct values


def status_key(value: object) -> str:
    """A status cell as compared with the chosen values: text, trimmed, case-blind."""
    return " ".join(cell_text(value).split()).casefold()


@dataclass(frozen=True)
class ValueCount:
    """A distinct cell value of a column and how many rows hold it (shown with check boxes)."""

    text: str
    rows: int


def distinct_values(table: ImportedTable, column: int, limit: int = 50) -> list[ValueCount]:
    """The column's distinct values (as text, trimmed; "" for empty cells), commonest first."""
    counts: dict[str, int] = {}
    shown: dict[str, str] = {}
    for row in table.rows:
        text = " ".join(cell_text(row[column]).split())
        key = text.casefold()
        counts[key] = counts.get(key, 0) + 1
        shown.setdefault(key, text)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [ValueCount(shown[key], count) for key, count in ordered[:limit]]


def opted_out_values_for(header: str, values: list[ValueCount]) -> tuple[str, ...]:
    """Which of a column's values mean "opted out", judged by the values and the header."""
    folded = _fold_header(header)
    opt_out_header = bool(_OPT_OUT_HEADER.search(folded))
    consent_header = bool(_CONSENT_HEADER.search(folded)) and not opt_out_header
    chosen = []
    for value in values:
        key = value.text.casefold()
        if key in _OPTED_OUT_WORDS or (opt_out_header and key in _TRUE_WORDS) or (
                consent_header and key in _FALSE_WORDS):
            chosen.append(value.text)
    return tuple(chosen)


@dataclass(frozen=True)
class StatusProposal:
    column: int
    opted_out_values: tuple[str, ...]


def propose_status(table: ImportedTable, exclude: Sequence[int] = ()) -> StatusProposal | None:
    """The column that looks like a subscription status, with its opted-out values; None when
    no column has both a status-like header or values and a value meaning "opted out"."""
    best: tuple[int, StatusProposal] | None = None
    for index in range(table.column_count):
        if index in exclude:
            continue
        sample = _sample(table, index)
        if not sample or len(set(map(status_key, sample))) > _MAX_STATUS_VALUES:
            continue
        values = distinct_values(table, index, _MAX_STATUS_VALUES + 1)
        chosen = opted_out_values_for(table.headers[index], values)
        if not chosen:
            continue
        folded = _fold_header(table.headers[index])
        score = (2 if _STATUS_HEADER.search(folded) or _OPT_OUT_HEADER.search(folded)
                 or _CONSENT_HEADER.search(folded) else 0)
        score += any(value.casefold() in _OPTED_OUT_WORDS for value in chosen)
        if best is None or score > best[0]:
            best = (score, StatusProposal(index, chosen))
    return best[1] if best is not None else None


def propose_role(table: ImportedTable, status: StatusProposal | None) -> FileRole:
    """A contact list when a status column was found, else a list of opt-outs (the operator
    confirms; nothing is assumed silently: the mapping step always shows the choice)."""
    return FileRole.CONTACTS if status is not None else FileRole.OPTOUTS


# ---------------------------------------------------------------- countries per row

_COUNTRY_HEADER = re.compile(r"countr|pays|land|pais|paese|nation|iso")
# Share of a column's sample that must name a known country: less under a header saying so.
_COUNTRY_QUALIFY = 0.8
_COUNTRY_QUALIFY_WITH_HEADER = 0.5


def propose_country(table: ImportedTable, exclude: Sequence[int] = ()) -> int | None:
    """The column whose cells name countries (ISO codes or names), if any."""
    best: tuple[float, int] | None = None
    for index in range(table.column_count):
        if index in exclude:
            continue
        sample = [value for value in _sample(table, index) if isinstance(value, str)]
        if not sample:
            continue
        known = sum(countries.region_of(value) is not None for value in sample) / len(sample)
        header = bool(_COUNTRY_HEADER.search(_fold_header(table.headers[index])))
        two_letters = all(len(value.strip()) <= 3 for value in sample)
        # Two-letter codes are common words in other columns ("no", "ok"): a header saying
        # so, or names rather than codes, is needed as well.
        wanted = _COUNTRY_QUALIFY_WITH_HEADER if header else _COUNTRY_QUALIFY
        if known < wanted or (two_letters and not header):
            continue
        score = known + (0.5 if header else 0.0)
        if best is None or score > best[0]:
            best = (score, index)
    return best[1] if best is not None else None


def row_regions(table: ImportedTable, mapping: ColumnMapping) -> list[str]:
    """Each row's phone region: its country cell's, else the mapping's default region."""
    default = check_region(mapping.region)
    if mapping.country_column is None:
        return [default] * len(table.rows)
    index = mapping.country_column
    return [countries.region_of(row[index]) or default for row in table.rows]


def unknown_countries(table: ImportedTable, mapping: ColumnMapping) -> list[ValueCount]:
    """Country cells that name no known country (their rows use the default region)."""
    if mapping.country_column is None:
        return []
    return [value for value in distinct_values(table, mapping.country_column, 1000)
            if value.text and countries.region_of(value.text) is None]


def _fold_header(header: str) -> str:
    folded = unicodedata.normalize("NFKD", header.casefold())
    return "".join(char for char in folded if not unicodedata.combining(char))


def propose_mapping(table: ImportedTable, region: str | None = None) -> ColumnMapping:
    """Everything the mapping step proposes: identifier columns, what the file is (with its
    status column and opted-out values), and a country column."""
    mapping = detect_columns(table, region)
    taken = [*mapping.email_columns, *mapping.phone_columns]
    status = propose_status(table, exclude=taken)
    mapping.role = propose_role(table, status)
    if status is not None:
        mapping.status_column = status.column
        mapping.opted_out_values = status.opted_out_values
    mapping.country_column = propose_country(
        table, exclude=[*taken, *([status.column] if status else [])])
    return mapping
