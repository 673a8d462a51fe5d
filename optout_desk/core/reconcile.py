"""Reconciliation: which spreadsheet rows are on an opt-out list, and why — pure and fast.

Input is columnar: the identifiers of each mapped spreadsheet column (`None` for an empty cell)
and the identifiers of each column of the other list (a platform's opt-outs, or another
spreadsheet). Matching is on normalised keys; a row matches when ANY of its identifiers does.

Every spreadsheet row lands in exactly one bucket, decided in this order:

* INVALID — no usable identifier (the reason per value is kept on the identifiers);
* DUPLICATE — a key of the row already appeared in an earlier row: it names the EARLIEST row
  holding one of its keys (which may itself be a duplicate, so a chain can be followed);
* IN_SYNC — one of its keys is on the other list (the first such identifier, in column order,
  is the one that explains the match);
* TO_SUBMIT — none of its keys is on the other list.

Records of the other list that no row matched are MISSING_FROM_CRM; records whose keys all
repeat an earlier missing record are collapsed onto it (counted, not listed twice).

What the file IS changes what its rows mean (`FileRole`, chosen by the operator):

* OPTOUTS — every row is an opt-out (the buckets above);
* CONTACTS — a contact list whose status column says who opted out (`opted_out` per row): only
  those rows are opt-outs (to submit / in sync); the other rows are SUBSCRIBED. A platform
  opt-out that the CRM holds as subscribed is MISSING_FROM_CRM too (`subscribed_match` names
  the row), since the CRM does not hold it as opted out. Opted-out rows come first when
  duplicates are looked for, so a person both subscribed and opted out in the file is never
  left out of what is submitted;
* SEND_LIST — a list to scrub: the same buckets read "Safe to send" and "Opted out: remove".

For speed (1M × 1M well under a second) the result is compact: a bucket code per row, the
matching column and other-list index per row, and explanations are formatted on demand by
`explain_row` from those and the identifiers' own `rule` text. Near-matches (Gmail dots and
+tags, domain typos, a stray space) are computed separately by `suggest_near_matches`; they are
suggestions for a person and never change a bucket.
"""

from __future__ import annotations

import gc
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, compress, repeat
from operator import eq, is_, lt, not_

from optout_desk.core.identifiers import Identifier, IdKind, normalise_email


class Bucket(StrEnum):
    TO_SUBMIT = "to_submit"
    MISSING_FROM_CRM = "missing_from_crm"
    IN_SYNC = "in_sync"
    SUBSCRIBED = "subscribed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


class FileRole(StrEnum):
    """What the operator says the file is (the mapping step asks)."""

    OPTOUTS = "optouts"
    CONTACTS = "contacts"
    SEND_LIST = "send_list"

    @property
    def description(self) -> str:
        return _ROLE_DESCRIPTIONS[self]


_ROLE_DESCRIPTIONS = {
    FileRole.OPTOUTS: "a list of opt-outs (every row is a person who opted out)",
    FileRole.CONTACTS: "a contact list (a status column says who opted out)",
    FileRole.SEND_LIST: "a send list to scrub (everyone opted out is removed)",
}


BUCKET_LABELS: dict[Bucket, str] = {
    Bucket.TO_SUBMIT: "To submit",
    Bucket.MISSING_FROM_CRM: "Missing from CRM",
    Bucket.IN_SYNC: "Already in sync",
    Bucket.INVALID: "Invalid",
    Bucket.DUPLICATE: "Duplicates",
}
# The order buckets are shown in (tabs, sheets, counts).
BUCKET_ORDER: tuple[Bucket, ...] = (
    Bucket.TO_SUBMIT,
    Bucket.MISSING_FROM_CRM,
    Bucket.IN_SYNC,
    Bucket.INVALID,
    Bucket.DUPLICATE,
)
ROW_BUCKETS: tuple[Bucket, ...] = (
    Bucket.TO_SUBMIT, Bucket.IN_SYNC, Bucket.SUBSCRIBED, Bucket.INVALID, Bucket.DUPLICATE
)
# The buckets each kind of file has, in the order they are shown.
ROLE_BUCKETS: dict[FileRole, tuple[Bucket, ...]] = {
    FileRole.OPTOUTS: BUCKET_ORDER,
    FileRole.CONTACTS: (Bucket.TO_SUBMIT, Bucket.MISSING_FROM_CRM, Bucket.IN_SYNC,
                        Bucket.SUBSCRIBED, Bucket.INVALID, Bucket.DUPLICATE),
    FileRole.SEND_LIST: (Bucket.TO_SUBMIT, Bucket.IN_SYNC, Bucket.INVALID, Bucket.DUPLICATE),
}
_ROLE_LABELS: dict[FileRole, dict[Bucket, str]] = {
    FileRole.OPTOUTS: BUCKET_LABELS,
    FileRole.CONTACTS: {**BUCKET_LABELS, Bucket.SUBSCRIBED: "Subscribed"},
    FileRole.SEND_LIST: {**BUCKET_LABELS, Bucket.TO_SUBMIT: "Safe to send",
                         Bucket.IN_SYNC: "Opted out: remove"},
}


def bucket_labels(role: FileRole) -> dict[Bucket, str]:
    """The bucket names for this kind of file ("To submit" reads "Safe to send" for a send
    list)."""
    return _ROLE_LABELS[role]


# Compact per-row codes (a bytearray holds a million rows in 1 MB).
_TO_SUBMIT, _IN_SYNC, _INVALID, _DUPLICATE, _SUBSCRIBED = 0, 1, 2, 3, 4
_CODE_BUCKET = (Bucket.TO_SUBMIT, Bucket.IN_SYNC, Bucket.INVALID, Bucket.DUPLICATE,
                Bucket.SUBSCRIBED)

IdentifierColumn = Sequence[Identifier | None]


@dataclass
class Reconciliation:
    """The buckets of one comparison. Indexes are 0-based positions in the inputs."""

    row_count: int
    other_count: int
    codes: bytearray  # per row: 0 to submit, 1 in sync, 2 invalid, 3 duplicate, 4 subscribed
    on_other: bytearray  # per row: 1 when any of its keys is on the other list
    duplicate_of: dict[int, tuple[int, int]]  # row -> (earliest row sharing a key, its column)
    missing: list[int]  # other-list records no row matched, in their order
    collapsed_missing: int  # other-list records collapsed onto an earlier missing record
    key_columns: list[list[str | None]] = field(repr=False)
    other_key_columns: list[list[str | None]] = field(repr=False)
    other_keys: set[str | None] = field(repr=False)
    role: FileRole = FileRole.OPTOUTS
    # Contact lists: missing record -> the row that holds it as subscribed.
    subscribed_match: dict[int, int] = field(default_factory=dict)
    _rows_by_bucket: dict[Bucket, list[int]] | None = field(default=None, repr=False)
    _other_index: dict[str | None, int] | None = field(default=None, repr=False)

    def bucket_of(self, row: int) -> Bucket:
        return _CODE_BUCKET[self.codes[row]]

    def rows_in(self, bucket: Bucket) -> list[int]:
        """Row indexes in a bucket, in spreadsheet order (the other list's for MISSING)."""
        if bucket is Bucket.MISSING_FROM_CRM:
            return self.missing
        if self._rows_by_bucket is None:
            groups = {
                code_bucket: list(compress(range(self.row_count),
                                           map(eq, self.codes, repeat(code))))
                for code, code_bucket in enumerate(_CODE_BUCKET)
            }
            self._rows_by_bucket = groups
        return self._rows_by_bucket[bucket]

    def counts(self) -> dict[Bucket, int]:
        """Rows (records for MISSING_FROM_CRM) per bucket of this kind of file, in order."""
        counts = {bucket: self.codes.count(code) for code, bucket in enumerate(_CODE_BUCKET)}
        counts[Bucket.MISSING_FROM_CRM] = len(self.missing)
        return {bucket: counts[bucket] for bucket in ROLE_BUCKETS[self.role]}

    def on_other_list(self, row: int) -> bool:
        """True when any key of the row is on the other list (in sync, or a duplicate that
        also matches) — what scrub mode removes."""
        return bool(self.on_other[row])

    def scrubbed_rows(self) -> list[int]:
        """The rows that match no opt-out, in spreadsheet order: the clean send list."""
        return list(compress(range(self.row_count), map(not_, self.on_other)))

    def match_column(self, row: int) -> int | None:
        """The first column (in mapping order) whose key is on the other list."""
        for column, keys in enumerate(self.key_columns):
            key = keys[row]
            if key is not None and key in self.other_keys:
                return column
        return None

    def matched_record(self, row: int) -> int | None:
        """The first other-list record holding the row's matching key (index built once)."""
        column = self.match_column(row)
        if column is None:
            return None
        if self._other_index is None:
            self._other_index = _first_index(self.other_key_columns, self.other_count)
        return self._other_index.get(self.key_columns[column][row])


def _keys(column: IdentifierColumn) -> list[str | None]:
    return [identifier[2] if identifier is not None else None for identifier in column]


# The matcher does its per-row work with C-level iteration (set building, map over a set's
# __contains__, compress) and keeps Python loops for the exceptional rows only (invalid,
# duplicates, repeated records): a 1M x 1M comparison then costs about what building two hash
# sets and probing each with the other's keys costs — the floor for any hash-based diff.


def reconcile(
    columns: Sequence[IdentifierColumn],
    other_columns: Sequence[IdentifierColumn],
    *,
    role: FileRole = FileRole.OPTOUTS,
    opted_out: Sequence[bool] | None = None,
) -> Reconciliation:
    """Sort every spreadsheet row into a bucket against the other list (see module doc).

    For a contact list, `opted_out` says per row whether its status means opted out."""
    # The cyclic GC would walk every identifier tuple while the big sets and lists are built
    # (measured: up to 2x the run time); nothing here creates reference cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        if role is FileRole.CONTACTS:
            if opted_out is None:
                raise ValueError("a contact list needs the opted-out status of each row")
            return _reconcile_contacts(columns, other_columns, opted_out)
        result = _reconcile(columns, other_columns)
        result.role = role
        return result
    finally:
        if enabled:
            gc.enable()


def _reconcile_contacts(
    columns: Sequence[IdentifierColumn], other_columns: Sequence[IdentifierColumn],
    opted_out: Sequence[bool],
) -> Reconciliation:
    """A contact list: its opted-out rows are compared as an opt-out list; the others are
    subscribed, or duplicates of an earlier row (opted-out rows counting as earlier)."""
    row_count = len(columns[0]) if columns else 0
    if len(opted_out) != row_count:
        raise ValueError("one opted-out flag per row is needed")
    flags = list(map(bool, opted_out))
    out_rows = list(compress(range(row_count), flags))
    in_rows = list(compress(range(row_count), map(not_, flags)))
    pick_out = [list(map(column.__getitem__, out_rows)) for column in columns]
    inner = _reconcile(pick_out, other_columns)

    key_columns = [_keys(column) for column in columns]
    codes = bytearray([_SUBSCRIBED]) * row_count
    for position, row in enumerate(out_rows):
        codes[row] = inner.codes[position]
    duplicate_of = {out_rows[position]: (out_rows[earlier], column)
                    for position, (earlier, column) in inner.duplicate_of.items()}
    # key -> its first row, opted-out rows first (then the subscribed ones, in order).
    first = {key: out_rows[position] for key, position in
             _first_index(inner.key_columns, len(out_rows)).items()}
    in_keys = [list(map(keys.__getitem__, in_rows)) for keys in key_columns]
    for key, position in _first_index(in_keys, len(in_rows)).items():
        first.setdefault(key, in_rows[position])
    for row in _invalid_rows(in_keys, len(in_rows)):
        codes[in_rows[row]] = _INVALID
    for position, row in enumerate(in_rows):
        if codes[row] == _INVALID:
            continue
        earliest = min(((first[keys[position]], column)
                        for column, keys in enumerate(in_keys)
                        if keys[position] is not None and first[keys[position]] != row),
                       default=None)
        if earliest is not None:
            codes[row] = _DUPLICATE
            duplicate_of[row] = earliest
    on_other = _any_in(key_columns, inner.other_keys, row_count)
    subscribed_first = {key: in_rows[position] for key, position in
                        _first_index(in_keys, len(in_rows)).items()}
    subscribed_match: dict[int, int] = {}
    for index in inner.missing:
        rows = [subscribed_first[key] for keys in inner.other_key_columns
                if (key := keys[index]) is not None and key in subscribed_first]
        if rows:
            subscribed_match[index] = min(rows)
    return Reconciliation(
        row_count=row_count,
        other_count=inner.other_count,
        codes=codes,
        on_other=on_other,
        duplicate_of=duplicate_of,
        missing=inner.missing,
        collapsed_missing=inner.collapsed_missing,
        key_columns=key_columns,
        other_key_columns=inner.other_key_columns,
        other_keys=inner.other_keys,
        role=FileRole.CONTACTS,
        subscribed_match=subscribed_match,
    )


def _reconcile(
    columns: Sequence[IdentifierColumn], other_columns: Sequence[IdentifierColumn]
) -> Reconciliation:
    row_count = len(columns[0]) if columns else 0
    other_count = len(other_columns[0]) if other_columns else 0
    key_columns = [_keys(column) for column in columns]
    other_key_columns = [_keys(column) for column in other_columns]
    other_keys: set[str | None] = set(chain.from_iterable(other_key_columns))
    other_keys.discard(None)
    # key -> first row holding it; also serves as the set of the spreadsheet's keys.
    row_first = _first_index(key_columns, row_count)

    on_other = _any_in(key_columns, other_keys, row_count)
    codes = bytearray(on_other)
    for row in _invalid_rows(key_columns, row_count):
        codes[row] = _INVALID
    duplicate_of = _duplicates(key_columns, row_first, row_count)
    for row in duplicate_of:
        codes[row] = _DUPLICATE
    missing, collapsed = _missing(other_key_columns, other_count, other_keys, row_first)
    return Reconciliation(
        row_count=row_count,
        other_count=other_count,
        codes=codes,
        on_other=on_other,
        duplicate_of=duplicate_of,
        missing=missing,
        collapsed_missing=collapsed,
        key_columns=key_columns,
        other_key_columns=other_key_columns,
        other_keys=other_keys,
    )


def _any_in(
    key_columns: list[list[str | None]], keys: Container[str | None], count: int
) -> bytearray:
    """Per row, 1 when any of its keys is in `keys` (columns OR-ed as big integers)."""
    if not key_columns:
        return bytearray(count)
    contains = keys.__contains__
    if len(key_columns) == 1:
        return bytearray(map(contains, key_columns[0]))
    combined = 0
    for column in key_columns:
        combined |= int.from_bytes(bytearray(map(contains, column)), "little")
    return bytearray(combined.to_bytes(count, "little"))


def _first_index(key_columns: list[list[str | None]], count: int) -> dict[str | None, int]:
    """key -> the first row holding it, in reading order (row by row, columns left to right).

    One dict per column, built in reverse so the earliest write wins; then merged, taking the
    earlier row for a key found in several columns (rare: an email never equals a phone)."""
    index: dict[str | None, int] = {}
    for keys in key_columns:
        column = dict(zip(reversed(keys), reversed(range(count)), strict=True))
        if not index:
            index = column
            continue
        shared = index.keys() & column.keys()
        earlier = {key: min(index[key], column[key]) for key in shared}
        index.update(column)
        index.update(earlier)
    index.pop(None, None)
    return index


def _invalid_rows(key_columns: list[list[str | None]], count: int) -> list[int]:
    if not key_columns:
        return list(range(count))
    first, *others = key_columns
    candidates = compress(range(count), map(is_, first, repeat(None)))
    return [row for row in candidates if all(keys[row] is None for keys in others)]


def _duplicates(
    key_columns: list[list[str | None]], row_first: dict[str | None, int], count: int
) -> dict[int, tuple[int, int]]:
    """row -> (earliest row sharing a key, the column of that key in this row)."""
    filled = sum(count - keys.count(None) for keys in key_columns)
    if len(row_first) == filled:
        return {}  # every key distinct: the common case, decided without a per-row pass
    if len(key_columns) == 1:
        # One key per row: the duplicates are the filled rows that are no key's first row —
        # integer set algebra, much cheaper than looking every key up again.
        keys = key_columns[0]
        firsts = set(row_first.values())
        repeated = sorted(
            row for row in set(range(count)).difference(firsts) if keys[row] is not None
        )
        return {row: (row_first[keys[row]], 0) for row in repeated}
    lookup = row_first.get
    candidates: set[int] = set()
    all_firsts = []
    for keys in key_columns:
        column_firsts = list(map(lookup, keys, repeat(count)))
        all_firsts.append(column_firsts)
        candidates.update(compress(range(count), map(lt, column_firsts, range(count))))
    duplicates: dict[int, tuple[int, int]] = {}
    for row in sorted(candidates):
        earliest, column = min(
            (column_firsts[row], column) for column, column_firsts in enumerate(all_firsts)
        )
        duplicates[row] = (earliest, column)
    return duplicates


def _missing(
    other_key_columns: list[list[str | None]],
    other_count: int,
    other_keys: set[str | None],
    row_keys: dict[str | None, int],
) -> tuple[list[int], int]:
    """Other-list records none of whose keys is in the spreadsheet, collapsing repeats."""
    if not other_key_columns:
        return list(range(other_count)), 0
    hit = _any_in(other_key_columns, row_keys, other_count)
    candidates = compress(range(other_count), map(not_, hit))
    filled = sum(other_count - keys.count(None) for keys in other_key_columns)
    if len(other_keys) == filled:
        return list(candidates), 0  # no key repeats on the other list: nothing to collapse
    missing: list[int] = []
    seen: set[str] = set()
    collapsed = 0
    for index in candidates:
        present = [keys[index] for keys in other_key_columns if keys[index] is not None]
        if present and all(key in seen for key in present):
            collapsed += 1
            continue
        seen.update(present)  # type: ignore[arg-type]
        missing.append(index)
    return missing, collapsed


# ---------------------------------------------------------------- explanations


def _cells(columns: Sequence[IdentifierColumn], row: int) -> list[tuple[int, Identifier]]:
    """(column, identifier) of a row's non-empty mapped cells."""
    cells = []
    for index, column in enumerate(columns):
        identifier = column[row]
        if identifier is not None:
            cells.append((index, identifier))
    return cells


def _describe(identifier: Identifier, label: str) -> str:
    return f"{identifier.kind.value} '{identifier.original}' ({label})"


def explain_row(
    result: Reconciliation,
    row: int,
    columns: Sequence[IdentifierColumn],
    labels: Sequence[str],
    other_columns: Sequence[IdentifierColumn],
    row_numbers: Sequence[int] | None = None,
    other_name: str = "the opt-out list",
    with_other_value: bool = True,
    statuses: Sequence[object] | None = None,
) -> str:
    """Why a row is in its bucket, in a sentence or two (`statuses`: a contact list's status
    cell per row, quoted in the sentence)."""
    code = result.codes[row]
    ignored = _ignored_values(row, columns, labels)
    status = f" (status '{statuses[row]}')" if statuses is not None else ""
    if code == _SUBSCRIBED:
        found = result.match_column(row)
        if found is not None:
            identifier = columns[found][row]
            assert identifier is not None
            return (
                f"Subscribed in the CRM{status}, but opted out on {other_name}: "
                f"{_describe(identifier, labels[found])} matched {identifier.key}. It is listed "
                "under Missing from CRM: mark it opted out in the CRM." + ignored
            )
        return f"Subscribed in the CRM{status} and not on {other_name}: nothing to do." + ignored
    prefix = f"Opted out in the CRM{status}. " if result.role is FileRole.CONTACTS else ""
    if code == _INVALID:
        problems = [
            f"{_describe(identifier, labels[i])}: {identifier.problem}"
            for i, identifier in _cells(columns, row)
        ]
        if not problems:
            return "No email or phone in the mapped columns."
        return "No usable identifier: " + "; ".join(problems) + "."
    if code == _DUPLICATE:
        earlier, column = result.duplicate_of[row]
        identifier = columns[column][row]
        assert identifier is not None
        number = row_numbers[earlier] if row_numbers is not None else earlier
        text = (
            f"Duplicate of row {number}: the same {identifier.kind.value} {identifier.key} "
            f"({labels[column]})."
        )
        if result.on_other[row]:
            text += f" It is also on {other_name}."
        return prefix + text + ignored
    if code == _IN_SYNC:
        found = result.match_column(row)
        assert found is not None
        identifier = columns[found][row]
        column = found
        assert identifier is not None
        shown = ""
        if with_other_value:
            matched = result.matched_record(row)
            other = _other_identifier(other_columns, matched, identifier.key) \
                if matched is not None else None
            if other is not None and other.original != identifier.key:
                shown = f" as '{other.original}'"
        return prefix + (
            f"On {other_name}: {_describe(identifier, labels[column])} matched "
            f"{identifier.key}{shown} — {identifier.rule}."
            + _repair_note(identifier) + ignored
        )
    keys = [
        f"{identifier.kind.value} {identifier.key}"
        for _, identifier in _cells(columns, row) if identifier.key is not None
    ]
    return prefix + f"Not on {other_name}: " + ", ".join(keys) + "." + ignored


def matched_identifier(
    result: Reconciliation, row: int, columns: Sequence[IdentifierColumn]
) -> tuple[int, Identifier] | None:
    """(column, identifier) that put the row in sync, or that it shares with the earlier row
    for a duplicate; None otherwise."""
    code = result.codes[row]
    if code == _IN_SYNC:
        found = result.match_column(row)
        if found is None:
            return None
        column = found
    elif code == _DUPLICATE:
        column = result.duplicate_of[row][1]
    else:
        return None
    identifier = columns[column][row]
    return (column, identifier) if identifier is not None else None


def _other_identifier(
    other_columns: Sequence[IdentifierColumn], index: int, key: str | None
) -> Identifier | None:
    for column in other_columns:
        identifier = column[index]
        if identifier is not None and identifier.key == key:
            return identifier
    return None


def _repair_note(identifier: Identifier) -> str:
    return f" Note: {identifier.repair}." if identifier.repair else ""


def _ignored_values(row: int, columns: Sequence[IdentifierColumn], labels: Sequence[str]) -> str:
    notes = [
        f"{_describe(identifier, labels[i])} ignored: {identifier.problem}"
        for i, identifier in _cells(columns, row) if identifier.key is None
    ]
    return (" " + "; ".join(notes) + ".") if notes else ""


def explain_missing(
    other: int, other_columns: Sequence[IdentifierColumn], other_labels: Sequence[str],
    *, subscribed_row: int | None = None, subscribed_status: object = None,
) -> str:
    """Why an other-list record is missing from the CRM; `subscribed_row` (the sheet row
    number) when a contact list holds it as subscribed."""
    shown = [
        _describe(identifier, other_labels[i])
        for i, identifier in _cells(other_columns, other) if identifier.original
    ]
    if subscribed_row is not None:
        status = f", status '{subscribed_status}'" if subscribed_status is not None else ""
        return (f"The CRM holds {' or '.join(shown) or 'it'} as subscribed (row "
                f"{subscribed_row}{status}), but it is opted out here: mark it opted out in "
                "the CRM.")
    if not shown:
        return "On the list without an email or phone; no row can match it."
    return "No row of the spreadsheet has " + " or ".join(shown) + "."


# ---------------------------------------------------------------- near-match suggestions

# Misspellings of the big mail domains, seen in real send lists.
DOMAIN_TYPOS: dict[str, str] = {
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gamil.com": "gmail.com",
    "gmail.co": "gmail.com", "gmail.cm": "gmail.com", "gmal.com": "gmail.com",
    "gnail.com": "gmail.com", "gmaill.com": "gmail.com", "gmail.con": "gmail.com",
    "googlemail.com": "gmail.com",
    "hotmial.com": "hotmail.com", "hotmal.com": "hotmail.com", "hotmai.com": "hotmail.com",
    "hotmail.co": "hotmail.com", "hotmail.con": "hotmail.com", "homail.com": "hotmail.com",
    "yaho.com": "yahoo.com", "yahooo.com": "yahoo.com", "yahoo.co": "yahoo.com",
    "yahoo.con": "yahoo.com", "yhaoo.com": "yahoo.com",
    "outlok.com": "outlook.com", "outloo.com": "outlook.com", "outlook.con": "outlook.com",
    "iclod.com": "icloud.com", "icloud.co": "icloud.com",
}
_GMAIL = "gmail.com"


@dataclass(frozen=True)
class Suggestion:
    """A possible match for a person to accept or reject; never applied on its own."""

    row: int
    column: int
    value: str  # the spreadsheet's text
    other: int  # the other-list record
    other_value: str
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        return (
            f"'{self.value}' may be the opt-out '{self.other_value}' "
            f"({'; '.join(self.reasons)})"
        )


def _email_of(other_columns: Sequence[IdentifierColumn], index: int) -> str:
    for column in other_columns:
        identifier = column[index]
        if identifier is not None and identifier.kind is IdKind.EMAIL and identifier.key:
            return identifier.original
    return ""


def loose_email(key: str) -> tuple[str, tuple[str, ...]]:
    """The key with provider tricks and typos folded away, and what was folded."""
    local, _, domain = key.rpartition("@")
    reasons: list[str] = []
    fixed = DOMAIN_TYPOS.get(domain)
    if fixed is not None and fixed != domain:
        reasons.append(f"domain {domain} looks like a typo of {fixed}" if domain !=
                       "googlemail.com" else "googlemail.com is gmail.com")
        domain = fixed
    plus = local.find("+")
    if plus > 0:
        reasons.append(f"the +tag '{local[plus:]}' ignored")
        local = local[:plus]
    if domain == _GMAIL and "." in local:
        reasons.append("Gmail ignores dots")
        local = local.replace(".", "")
    return f"{local}@{domain}", tuple(reasons)


def suggest_near_matches(
    result: Reconciliation,
    columns: Sequence[IdentifierColumn],
    other_columns: Sequence[IdentifierColumn],
) -> list[Suggestion]:
    """Possible matches for rows that matched nothing (to submit or invalid), by email."""
    candidates = result.rows_in(Bucket.TO_SUBMIT) + result.rows_in(Bucket.INVALID)
    if not candidates:
        return []
    loose_index: dict[str, tuple[int, tuple[str, ...]]] = {}
    for column in other_columns:
        for index, identifier in enumerate(column):
            if identifier is None or identifier.kind is not IdKind.EMAIL or identifier.key is None:
                continue
            loose, reasons = loose_email(identifier.key)
            loose_index.setdefault(loose, (index, reasons))
    if not loose_index:
        return []
    suggestions: list[Suggestion] = []
    for row in sorted(candidates):
        for column_index, column in enumerate(columns):
            identifier = column[row]
            if identifier is None or identifier.kind is not IdKind.EMAIL:
                continue
            key = identifier.key
            spaced: tuple[str, ...] = ()
            if key is None:
                squeezed = "".join(identifier.original.split())
                if squeezed == identifier.original.strip():
                    continue
                repaired = normalise_email(squeezed)
                if repaired.key is None:
                    continue
                key, spaced = repaired.key, ("a stray space inside",)
            loose, reasons = loose_email(key)
            found = loose_index.get(loose)
            if found is None:
                continue
            other, other_reasons = found
            other_value = _email_of(other_columns, other)
            all_reasons = spaced + reasons + tuple(r for r in other_reasons if r not in reasons)
            if not all_reasons:
                continue  # an exact match would have matched already
            suggestions.append(
                Suggestion(row, column_index, identifier.original, other, other_value,
                           all_reasons)
            )
    return suggestions
