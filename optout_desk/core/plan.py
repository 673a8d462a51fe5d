"""A submission plan: exactly what will be sent, frozen when it is previewed.

`build_plan` turns identifiers (from a reconciliation, a spreadsheet, pasted text) into the
payloads a destination takes: each identifier formatted as the destination wants it, invalid
ones, duplicates, kinds the destination does not take and those already on its list left out
with the reason, the rest grouped into the destination's own request payloads in the order they
came. How a destination formats and batches is its connector's business (a `PayloadFormat`,
implemented in connectors/); this module only sees opaque payloads: a route, a JSON body, the
values it carries and whether sending it twice is harmless.

A SHA-256 over the plan format, the destination and every payload identifies the plan: the
preview shows its short form, the journal stores it, and execution re-checks it, so what is sent
is exactly what was previewed.

Pure: no I/O; the caller supplies the keys already on the destination.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from optout_desk.core.identifiers import Identifier, IdKind
from optout_desk.core.wording import NumberFormat, grouped, kind_counted

# Bump when the hashed content changes shape. 1: CheckMarket bodies only (before connectors
# declared their own payloads); 2: {route, body, values, resend_safe} per payload.
PLAN_FORMAT = 2


class LeftOutReason(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    ALREADY_ON_DESTINATION = "already_on_destination"
    ALREADY_SUBMITTED = "already_submitted"
    UNSUPPORTED = "unsupported"


# Each reason as it reads after a count; an unsupported kind is said by kind instead
# ("78 phones it does not take", left_out_phrases).
REASON_LABELS: dict[LeftOutReason, str] = {
    LeftOutReason.INVALID: "not valid as an email or phone number",
    LeftOutReason.DUPLICATE: "repeated from earlier in the list",
    LeftOutReason.ALREADY_ON_DESTINATION: "already on the destination's opt-out list",
    LeftOutReason.ALREADY_SUBMITTED: "already sent to the destination by an earlier plan",
}


def left_out_phrases(left_out: Sequence[LeftOut], number: NumberFormat = grouped) -> list[str]:
    """What a plan leaves out, most first, each phrase readable after its count: "78 phones
    it does not take", "12 already on the destination's opt-out list"."""
    unsupported = Counter(str(item.kind) for item in left_out
                          if item.reason is LeftOutReason.UNSUPPORTED)
    others = Counter(item.reason for item in left_out
                     if item.reason is not LeftOutReason.UNSUPPORTED)
    phrases = [(n, f"{kind_counted(n, kind, number)} it does not take")
               for kind, n in unsupported.items()]
    phrases += [(n, f"{number(n)} {REASON_LABELS[reason]}") for reason, n in others.items()]
    return [text for _n, text in sorted(phrases, key=lambda pair: -pair[0])]


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
class Payload:
    """One request to a destination, as its connector built it.

    `route` is the connector's own name for where it goes (a path, a channel); `body` the exact
    JSON it sends; `values` the identifiers it carries, as sent (the journal checks its items
    against them); `resend_safe` whether sending it again after an unknown outcome
    is harmless on the platform (an idempotent opt-out) — a resume resends only those.
    """

    route: str
    body: Any
    values: tuple[str, ...]
    resend_safe: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"route": self.route, "body": self.body, "values": list(self.values),
                "resend_safe": self.resend_safe}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payload:
        return cls(str(data["route"]), data["body"], tuple(data["values"]),
                   bool(data.get("resend_safe", True)))


class PayloadFormat(Protocol):
    """How one destination takes identifiers (each connector implements it)."""

    @property
    def batch_size(self) -> int: ...

    def value_for(self, identifier: Identifier) -> str | None:
        """The identifier as the destination wants it; None for a kind it does not take."""
        ...

    def not_taken(self, kind: IdKind) -> str:
        """Why the destination does not take this kind, in a few words."""
        ...

    def payloads(self, items: Sequence[PlanItem]) -> list[tuple[tuple[PlanItem, ...], Payload]]:
        """The items grouped into request payloads, each with the items it carries."""
        ...


@dataclass(frozen=True, slots=True)
class Batch:
    """One request: its payload and the items it carries, in plan order."""

    seq: int
    items: tuple[PlanItem, ...]
    payload: Payload


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

    def payload_sample(self, limit: int = 3) -> Any:
        """The first payload's body with every list shortened to `limit` entries (for the
        preview); None when nothing will be sent."""
        if not self.batches:
            return None
        return _shortened(self.batches[0].payload.body, limit)


def _shortened(value: Any, limit: int) -> Any:
    if isinstance(value, list):
        return [_shortened(item, limit) for item in value[:limit]]
    if isinstance(value, dict):
        return {key: _shortened(item, limit) for key, item in value.items()}
    return value


def plan_hash(destination: Destination, payloads: Iterable[Payload]) -> str:
    """SHA-256 over the plan format, the destination and each payload, in order: the hash of
    the canonical JSON of {"destination", "format", "payloads": [...]} (sorted keys, no
    spaces), fed to the hasher one payload at a time. One json.dumps of the whole list would
    hold the GIL for all 50,000 payloads at once (a freeze of the window while a submission
    starts); the text hashed is the same, so stored plans keep their hashes."""
    digest = hashlib.sha256()
    digest.update(('{"destination":' + _canonical(destination.as_dict())
                   + ',"format":' + _canonical(PLAN_FORMAT) + ',"payloads":[').encode("utf-8"))
    separator = b""
    for payload in payloads:
        digest.update(separator + _canonical(payload.as_json()).encode("utf-8"))
        separator = b","
    digest.update(b"]}")
    return digest.hexdigest()


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def build_plan(
    inputs: Iterable[PlanInput],
    *,
    destination: Destination,
    payload_format: PayloadFormat,
    already_on_destination: Collection[str] = (),
    already_detail: str = "",
    already_submitted: Mapping[str, str] | None = None,
) -> Plan:
    """Freeze `inputs` into payloads for `destination`; see the module docstring.

    `already_on_destination` holds the keys the destination is known to hold as opted out
    (its cached list, or its look-up answers); `already_detail` says how that is known.
    `already_submitted` maps keys an earlier plan delivered to the sentence saying which."""
    submitted = already_submitted or {}
    items: list[PlanItem] = []
    left_out: list[LeftOut] = []
    seen: dict[str, PlanInput] = {}
    already = already_detail or f"already on {destination.connection}'s cached opt-out list"
    for entry in inputs:
        ident = entry.identifier
        if ident.key is None:
            left_out.append(_left_out(entry, LeftOutReason.INVALID, ident.problem or "invalid"))
            continue
        value = payload_format.value_for(ident)
        if value is None:
            left_out.append(_left_out(entry, LeftOutReason.UNSUPPORTED,
                                      payload_format.not_taken(ident.kind)))
            continue
        first = seen.get(ident.key)
        if first is not None:
            left_out.append(_left_out(entry, LeftOutReason.DUPLICATE, _duplicate_of(first)))
            continue
        seen[ident.key] = entry
        if ident.key in already_on_destination:
            left_out.append(_left_out(entry, LeftOutReason.ALREADY_ON_DESTINATION, already))
            continue
        if ident.key in submitted:
            left_out.append(_left_out(entry, LeftOutReason.ALREADY_SUBMITTED,
                                      submitted[ident.key]))
            continue
        items.append(PlanItem(ident.kind, value, ident.key, ident.original, entry.source_file,
                              entry.row_number))
    batches = tuple(
        Batch(seq, carried, payload)
        for seq, (carried, payload) in enumerate(payload_format.payloads(items), start=1)
    )
    return Plan(
        destination=destination,
        batch_size=payload_format.batch_size,
        batches=batches,
        left_out=tuple(left_out),
        hash=plan_hash(destination, (batch.payload for batch in batches)),
        counts=dict(Counter(str(item.kind) for item in items)),
    )


def chunked(items: Sequence[PlanItem], size: int) -> list[tuple[PlanItem, ...]]:
    """`items` in consecutive groups of at most `size` (a connector's batching helper)."""
    if size < 1:
        raise ValueError("a batch holds at least one identifier")
    return [tuple(items[start:start + size]) for start in range(0, len(items), size)]


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
    batches: Sequence[tuple[int, Sequence[PlanItem], Payload]],
    left_out: Sequence[LeftOut],
    expected_hash: str,
) -> Plan:
    """Rebuild a stored plan; raises ValueError when its content no longer matches its hash,
    or its items no longer match the payloads that carry them (the journal was altered), so
    nothing but the previewed plan can be sent."""
    frozen = tuple(Batch(seq, tuple(items), payload) for seq, items, payload in batches)
    actual = plan_hash(destination, (batch.payload for batch in frozen))
    if actual != expected_hash or any(
            sorted(item.value for item in batch.items) != sorted(batch.payload.values)
            for batch in frozen):
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
