"""Counts in words, the same on every page, in every file and on the command line.

Rows and identifiers are different counts (a row may hold an email and a phone), so wherever
both appear they are said together: "1,208 rows · 1,719 identifiers (1,208 emails, 511 phones)".
The number formatter is passed in: the GUI gives the system locale's, the CLI `f"{n:,}"`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from optout_desk.core.identifiers import IdKind

NumberFormat = Callable[[int], str]
KIND_NOUNS: dict[str, tuple[str, str]] = {
    IdKind.EMAIL.value: ("email", "emails"),
    IdKind.PHONE.value: ("phone", "phones"),
    IdKind.PUSH_TOKEN.value: ("push token", "push tokens"),
    IdKind.EXTERNAL_ID.value: ("external id", "external ids"),
}
_KIND_ORDER = tuple(KIND_NOUNS)


def grouped(number: int) -> str:
    return f"{number:,}"


def counted(count: int, singular: str, plural: str | None = None,
            number: NumberFormat = grouped) -> str:
    """"1 row", "1,208 rows"."""
    return f"{number(count)} {singular if count == 1 else (plural or singular + 's')}"


def counted_of(done: int, total: int, singular: str, plural: str | None = None,
               number: NumberFormat = grouped) -> str:
    """"1 of 1 batch", "3 of 143 batches": the noun agrees with the total."""
    return f"{number(done)} of {counted(total, singular, plural, number)}"


def kind_counted(count: int, kind: str, number: NumberFormat = grouped) -> str:
    """"78 phones", "1 push token" (a kind without nouns of its own is named as it is)."""
    return counted(count, *KIND_NOUNS.get(kind, (kind, kind)), number=number)


def _kind_parts(kinds: Mapping[str, int], number: NumberFormat) -> list[str]:
    ordered = [kind for kind in _KIND_ORDER if kinds.get(kind)]
    ordered += [kind for kind, count in kinds.items() if kind not in KIND_NOUNS and count]
    return [kind_counted(kinds[kind], kind, number) for kind in ordered]


def kinds_counted(kinds: Mapping[str, int], number: NumberFormat = grouped) -> str:
    """"1,208 emails, 511 phones" (a plan's counts by kind); none at all: "nothing"."""
    return ", ".join(_kind_parts(kinds, number)) or "nothing"


def identifiers_by_kind(kinds: Mapping[str, int], number: NumberFormat = grouped) -> str:
    """"1,719 identifiers (1,208 emails, 511 phones)"; one kind: "1,208 identifiers (emails)"."""
    parts = _kind_parts(kinds, number)
    head = counted(sum(kinds.values()), "identifier", number=number)
    return f"{head} ({', '.join(parts)})" if parts else head


def rows_and_identifiers(rows: int, kinds: Mapping[str, int],
                         number: NumberFormat = grouped) -> str:
    """"1,208 rows · 1,719 identifiers (1,208 emails, 511 phones)"."""
    return f"{counted(rows, 'row', number=number)} · {identifiers_by_kind(kinds, number)}"
