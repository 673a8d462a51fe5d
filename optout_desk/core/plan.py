"""A submission plan: exactly what will be sent, frozen when it is previewed.

`build_plan` turns identifiers (from a reconciliation, a spreadsheet, pasted text) into the
batches a destination takes: identifiers formatted as the destination wants them, invalid ones,
duplicates and those already on the destination's list left out with the reason, the rest split
into batches of at most `batch_size` in the order they came. A SHA-256 over the destination and
every batch's exact payload identifies the plan: the preview shows its short form, the journal
stores it, and execution re-checks it, so what is sent is exactly what was previewed.

Pure: no I/O; the caller supplies the keys already on the destination.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from optout_desk.core.identifiers import Identifier, IdKind

# The kinds CheckMarket's POST 3/contacts/optouts accepts, and the body field of each.
CHECKMARKET_FIELDS: dict[IdKind, str] = {
    IdKind.EMAIL: "EmailAddresses",
    IdKind.PHONE: "PhoneNumbers",
}
PAYLOAD_FIELDS: tuple[str, ...] = ("EmailAddresses", "PhoneNumbers")
PLAN_FORMAT = 1  # bump when the hashed content changes shape


class LeftOutReason(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    ALREADY_ON_DESTINATION = "already_on_destination"
    UNSUPPORTED = "unsupported"


REASON_LABELS: dict[LeftOutReason, str] = {
    LeftOutReason.INVALID: "not a valid email or phone number",
    LeftOutReason.DUPLICATE: "a duplicate of an identifier earlier in the list",
    LeftOutReason.ALREADY_ON_DESTINATION: "already on the destination's opt-out list",
    LeftOutReason.UNSUPPORTED: "a kind of identifier the destination does not take",
}


@dataclass(frozen=True, slots=True)
class PlanInput:
    """One identifier to submit and where it came from (for the receipt)."""

    identifier: Identifier
    source_file: str | None = None
    row_number: int | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a plan goes: a connection, its system, the host it talks to and its region."""

    connection: str
    system: str
    host: str
    region: str = ""

    @property
    def label(self) -> str:
        """"acme-prod (EU)" — how the preview and the confirm button name it."""
        return f"{self.connection} ({self.region.upper()})" if self.region else self.connection

    def as_dict(self) -> dict[str, str]:
        return {"connection": self.connection, "system": self.system, "host": self.host,
                "region": self.region}


@dataclass(frozen=True, slots=True)
class PlanItem:
    """An identifier that will be sent: `value` is exactly the text in the payload."""

    kind: IdKind
    value: str
    key: str
    original: str
    source_file: str | None = None
    row_number: int | None = None


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An identifier the plan does not send, and why."""

    kind: IdKind
    original: str
    key: str | None
    reason: LeftOutReason
    detail: str
    source_file: str | None = None
    row_number: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """One POST: its items in plan order; emails and phones share one body."""

    seq: int
    items: tuple[PlanItem, ...]

    @property
    def payload(self) -> dict[str, list[str]]:
        return batch_payload(self.items)

    @property
    def emails(self) -> list[str]:
        return [item.value for item in self.items if item.kind is IdKind.EMAIL]

    @property
    def phones(self) -> list[str]:
        return [item.value for item in self.items if item.kind is IdKind.PHONE]


@dataclass(frozen=True)
class Plan:
    destination: Destination
    batch_size: int
    batches: tuple[Batch, ...]
    left_out: tuple[LeftOut, ...]
    hash: str
    counts: dict[str, int] = field(default_factory=dict)  # per kind sent, e.g. {"email": 3}

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def total(self) -> int:
        """How many identifiers will be sent."""
        return sum(len(batch.items) for batch in self.batches)

    @property
    def left_out_counts(self) -> dict[str, int]:
        return dict(Counter(str(item.reason) for item in self.left_out))

    def items(self) -> Iterable[tuple[int, PlanItem]]:
        """Every item with its batch number, in plan order."""
        for batch in self.batches:
            for item in batch.items:
                yield batch.seq, item

    def payload_sample(self, limit: int = 3) -> dict[str, list[str]]:
        """The first batch's body, shortened to `limit` values per field (for the preview)."""
        if not self.batches:
            return {name: [] for name in PAYLOAD_FIELDS}
        return {name: values[:limit] for name, values in self.batches[0].payload.items()}


def batch_payload(items: Sequence[PlanItem]) -> dict[str, list[str]]:
    """The JSON body of one POST 3/contacts/optouts for these items."""
    payload: dict[str, list[str]] = {name: [] for name in PAYLOAD_FIELDS}
    for item in items:
        payload[CHECKMARKET_FIELDS[item.kind]].append(item.value)
    return payload


def plan_hash(destination: Destination, payloads: Iterable[Mapping[str, Sequence[str]]]) -> str:
    """SHA-256 over the destination and each batch's exact payload, in order."""
    content = {
        "format": PLAN_FORMAT,
        "destination": destination.as_dict(),
        "batches": [{name: list(p.get(name, [])) for name in PAYLOAD_FIELDS} for p in payloads],
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def destination_value(identifier: Identifier) -> str | None:
    """The identifier as CheckMarket wants it: the normalised email, the phone in +CC… form
    (E.164); None for kinds it does not take."""
    if identifier.kind in CHECKMARKET_FIELDS:
        return identifier.key
    return None


def build_plan(
    inputs: Iterable[PlanInput],
    *,
    destination: Destination,
    batch_size: int,
    already_on_destination: Collection[str] = (),
) -> Plan:
    """Freeze `inputs` into batches for `destination`; see the module docstring."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    items: list[PlanItem] = []
    left_out: list[LeftOut] = []
    seen: dict[str, PlanInput] = {}
    for entry in inputs:
        ident = entry.identifier
        if ident.key is None:
            left_out.append(_left_out(entry, LeftOutReason.INVALID, ident.problem or "invalid"))
            continue
        value = destination_value(ident)
        if value is None:
            left_out.append(_left_out(
                entry, LeftOutReason.UNSUPPORTED,
                f"{destination.system} takes only email addresses and phone numbers",
            ))
            continue
        first = seen.get(ident.key)
        if first is not None:
            left_out.append(_left_out(entry, LeftOutReason.DUPLICATE, _duplicate_of(first)))
            continue
        seen[ident.key] = entry
        if ident.key in already_on_destination:
            left_out.append(_left_out(
                entry, LeftOutReason.ALREADY_ON_DESTINATION,
                f"already on {destination.connection}'s cached opt-out list",
            ))
            continue
        items.append(PlanItem(ident.kind, value, ident.key, ident.original, entry.source_file,
                              entry.row_number))
    batches = tuple(
        Batch(seq, tuple(items[start:start + batch_size]))
        for seq, start in enumerate(range(0, len(items), batch_size), start=1)
    )
    return Plan(
        destination=destination,
        batch_size=batch_size,
        batches=batches,
        left_out=tuple(left_out),
        hash=plan_hash(destination, (batch.payload for batch in batches)),
        counts=dict(Counter(str(item.kind) for item in items)),
    )


def _left_out(entry: PlanInput, reason: LeftOutReason, detail: str) -> LeftOut:
    ident = entry.identifier
    return LeftOut(ident.kind, ident.original, ident.key, reason, detail, entry.source_file,
                   entry.row_number)


def _duplicate_of(first: PlanInput) -> str:
    if first.row_number is not None:
        where = f"row {first.row_number}"
        if first.source_file:
            where += f" of {first.source_file}"
        return f"same {first.identifier.kind} as {where}"
    return f"same {first.identifier.kind} as an earlier line"


# -- serialisation (the journal stores plans as JSON) -----------------------------------------


def item_to_json(item: PlanItem) -> dict[str, Any]:
    return {"kind": str(item.kind), "value": item.value, "key": item.key,
            "original": item.original, "source_file": item.source_file,
            "row_number": item.row_number}


def item_from_json(data: Mapping[str, Any]) -> PlanItem:
    return PlanItem(IdKind(data["kind"]), data["value"], data["key"], data["original"],
                    data.get("source_file"), data.get("row_number"))


def left_out_to_json(item: LeftOut) -> dict[str, Any]:
    return {"kind": str(item.kind), "original": item.original, "key": item.key,
            "reason": str(item.reason), "detail": item.detail,
            "source_file": item.source_file, "row_number": item.row_number}


def left_out_from_json(data: Mapping[str, Any]) -> LeftOut:
    return LeftOut(IdKind(data["kind"]), data["original"], data.get("key"),
                   LeftOutReason(data["reason"]), data["detail"], data.get("source_file"),
                   data.get("row_number"))


def restore_plan(
    destination: Destination,
    batch_size: int,
    batches: Sequence[tuple[int, Sequence[PlanItem]]],
    left_out: Sequence[LeftOut],
    expected_hash: str,
) -> Plan:
    """Rebuild a stored plan; raises ValueError when its content no longer matches its hash
    (the journal was altered), so nothing but the previewed plan can be sent."""
    frozen = tuple(Batch(seq, tuple(items)) for seq, items in batches)
    actual = plan_hash(destination, (batch.payload for batch in frozen))
    if actual != expected_hash:
        raise ValueError("the stored plan does not match its hash")
    items = [item for batch in frozen for item in batch.items]
    return Plan(destination, batch_size, frozen, tuple(left_out), expected_hash,
                dict(Counter(str(item.kind) for item in items)))


def inputs_from_lines(
    lines: Iterable[str], *, region: str, source_file: str | None = None
) -> list[PlanInput]:
    """Pasted text or a plain text file, one identifier per line: a line with '@' is an email,
    anything else a phone number in `region`. Blank lines are skipped; a file's line numbers
    are kept as row numbers for the receipt."""
    from optout_desk.core.identifiers import normalise_email, phone_normaliser

    phone = phone_normaliser(region.upper())
    inputs: list[PlanInput] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        ident = normalise_email(text) if "@" in text else phone(text)
        inputs.append(PlanInput(ident, source_file, number if source_file else None))
    return inputs
