"""Submission plans: formatting per destination, what is left out and why, batches, the hash."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optout_desk.connectors.checkmarket import CheckMarketFormat
from optout_desk.core.identifiers import (
    IdKind,
    normalise_email,
    normalise_phone,
    normalise_token,
)
from optout_desk.core.plan import (
    PLAN_FORMAT,
    Destination,
    LeftOutReason,
    Payload,
    PlanInput,
    build_plan,
    item_from_json,
    item_to_json,
    left_out_from_json,
    left_out_to_json,
    plan_hash,
    restore_plan,
)

DEST = Destination("acme-prod", "checkmarket", "api-eu.agileresearch.medallia.com", "eu")


def email(text: str, row: int | None = None) -> PlanInput:
    return PlanInput(normalise_email(text), "crm.xlsx" if row else None, row)


def phone(text: str, row: int | None = None) -> PlanInput:
    return PlanInput(normalise_phone(text, "BE"), "crm.xlsx" if row else None, row)


def test_formats_as_checkmarket_wants_and_keeps_order() -> None:
    plan = build_plan(
        [email(" Alice@Example.COM ", 2), phone("0470 12 34 56", 3), email("bob@example.org", 4)],
        destination=DEST, payload_format=CheckMarketFormat(10),
    )
    assert len(plan.batches) == 1
    assert plan.batches[0].payload.body == {
        "EmailAddresses": ["alice@example.com", "bob@example.org"],
        "PhoneNumbers": ["+32470123456"],
    }
    assert plan.batches[0].payload.route == "3/contacts/optouts"
    assert plan.batches[0].payload.resend_safe  # CheckMarket ignores repeats
    assert [item.row_number for _, item in plan.items()] == [2, 3, 4]
    assert plan.counts == {"email": 2, "phone": 1}
    assert plan.total == 3 and plan.left_out == ()
    assert plan.destination.label == "acme-prod (EU)"


def test_left_out_invalid_duplicate_already_there_and_unsupported() -> None:
    plan = build_plan(
        [
            email("a@example.com", 2),
            email("not an email", 3),
            email("A@EXAMPLE.COM", 4),
            phone("+32 470 12 34 56", 5),
            phone("0470123456", 6),
            email("old@example.com", 7),
            PlanInput(normalise_token("tok-1", IdKind.PUSH_TOKEN)),
        ],
        destination=DEST, payload_format=CheckMarketFormat(10),
        already_on_destination={"old@example.com"},
    )
    assert plan.total == 2
    assert plan.left_out_counts == {
        "invalid": 1, "duplicate": 2, "already_on_destination": 1, "unsupported": 1,
    }
    by_row = {item.row_number: item for item in plan.left_out}
    assert by_row[3].reason is LeftOutReason.INVALID and by_row[3].detail
    assert by_row[4].reason is LeftOutReason.DUPLICATE
    assert by_row[4].detail == "same email as row 2 of crm.xlsx"
    assert by_row[6].detail == "same phone as row 5 of crm.xlsx"
    assert by_row[7].reason is LeftOutReason.ALREADY_ON_DESTINATION


def test_duplicate_of_a_key_already_on_destination_counts_as_duplicate() -> None:
    plan = build_plan([email("x@example.com"), email("X@example.com")], destination=DEST,
                      payload_format=CheckMarketFormat(5), already_on_destination={"x@example.com"})
    assert plan.left_out_counts == {"already_on_destination": 1, "duplicate": 1}
    assert plan.left_out[1].detail == "same email as an earlier line"


def test_batches_are_bounded_and_stable() -> None:
    inputs = [email(f"user{n}@example.com") if n % 3 else phone(f"+3247000{n:04d}")
              for n in range(1, 124)]
    plan = build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(50))
    assert [len(b.items) for b in plan.batches] == [50, 50, 23]
    assert [b.seq for b in plan.batches] == [1, 2, 3]
    again = build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(50))
    assert again.hash == plan.hash and len(plan.short_hash) == 12
    assert plan.payload_sample(2)["EmailAddresses"] == ["user1@example.com", "user2@example.com"]


def test_hash_changes_with_content_order_batch_size_and_destination() -> None:
    inputs = [email(f"u{n}@example.com") for n in range(10)]

    def hash_of(items: list[PlanInput], size: int = 4, dest: Destination = DEST) -> str:
        return build_plan(items, destination=dest, payload_format=CheckMarketFormat(size)).hash

    base = hash_of(inputs)
    assert hash_of(inputs[::-1]) != base
    assert hash_of(inputs, 5) != base
    assert hash_of(inputs[:-1]) != base
    assert hash_of(inputs, dest=Destination("acme-test", "checkmarket", DEST.host, "eu")) != base


def test_empty_plan_and_bad_batch_size() -> None:
    plan = build_plan([], destination=DEST, payload_format=CheckMarketFormat(10))
    assert plan.batches == () and plan.total == 0
    assert plan.payload_sample() is None
    with pytest.raises(ValueError):
        build_plan([], destination=DEST, payload_format=CheckMarketFormat(0))


def test_restore_checks_the_hash() -> None:
    plan = build_plan([email(f"u{n}@example.com", n) for n in range(1, 8)] + [email("bad")],
                      destination=DEST, payload_format=CheckMarketFormat(3))
    stored = [(b.seq, [item_from_json(item_to_json(i)) for i in b.items],
               Payload.from_json(b.payload.as_json())) for b in plan.batches]
    left = [left_out_from_json(left_out_to_json(i)) for i in plan.left_out]
    restored = restore_plan(DEST, 3, stored, left, plan.hash)
    assert restored == plan
    last = stored[-1]
    tampered_items = [*stored[:-1], (last[0], last[1][:-1], last[2])]
    with pytest.raises(ValueError, match="hash"):
        restore_plan(DEST, 3, tampered_items, left, plan.hash)
    body = {**last[2].body, "EmailAddresses": ["x@example.com"]}
    tampered_body = [*stored[:-1], (last[0], last[1], Payload(last[2].route, body,
                                                              last[2].values))]
    with pytest.raises(ValueError, match="hash"):
        restore_plan(DEST, 3, tampered_body, left, plan.hash)


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=200),
       st.integers(min_value=1, max_value=17))
def test_every_distinct_valid_key_is_sent_exactly_once(numbers: list[int], size: int) -> None:
    inputs = [email(f"p{n}@example.com") for n in numbers]
    plan = build_plan(inputs, destination=DEST, payload_format=CheckMarketFormat(size),
                      already_on_destination={"p0@example.com"})
    sent = [item.key for _, item in plan.items()]
    assert len(sent) == len(set(sent))
    assert set(sent) == {f"p{n}@example.com" for n in numbers} - {"p0@example.com"}
    assert plan.total + len(plan.left_out) == len(inputs)
    assert all(len(b.items) <= size for b in plan.batches)


@given(st.lists(st.tuples(st.text(max_size=12), st.lists(st.text(max_size=8), max_size=3),
                          st.booleans()), max_size=6))
def test_hash_fed_payload_by_payload_is_the_hash_of_the_whole_canonical_json(
        parts: list[tuple[str, list[str], bool]]) -> None:
    # Stored plans were hashed from one json.dumps of the whole plan: the streamed hash must
    # be the very same, or every unfinished plan would be refused as altered.
    import hashlib
    import json

    destination = Destination("acme-é", "checkmarket", "api.example", "EU")
    payloads = [Payload(route, {"Values": values, "ö": route}, tuple(values), safe)
                for route, values, safe in parts]
    whole = json.dumps({"format": PLAN_FORMAT, "destination": destination.as_dict(),
                        "payloads": [p.as_json() for p in payloads]},
                       sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan_hash(destination, payloads) == hashlib.sha256(whole.encode()).hexdigest()


def test_every_route_is_named_in_the_operators_words_not_the_apis():
    """The Submit page and the CLI show "Emails → eu (opt-out list)": a body field such as
    EmailAddresses or a communicationType such as TEXT is not something an operator reads."""
    from optout_desk.connectors.registry import SYSTEMS

    labels = [(key, route.label) for key, info in SYSTEMS.items() for route in info.routes.routes]
    assert labels  # the destinations declare their routes
    for key, label in labels:
        assert re.fullmatch(r"[a-z][a-z ()-]*", label), (key, label)


def test_what_a_plan_leaves_out_reads_as_counts_and_reasons_most_first():
    """"78 phones it does not take", not "78 a kind of identifier the destination does not
    take"; every reason reads after its count, singular or plural."""
    from optout_desk.core.plan import LeftOut, LeftOutReason, left_out_phrases

    def left(kind: IdKind, reason: LeftOutReason, n: int) -> list[LeftOut]:
        return [LeftOut(kind, f"x{i}", None, reason, "") for i in range(n)]

    items = (left(IdKind.PHONE, LeftOutReason.UNSUPPORTED, 78)
             + left(IdKind.PUSH_TOKEN, LeftOutReason.UNSUPPORTED, 1)
             + left(IdKind.EMAIL, LeftOutReason.DUPLICATE, 3)
             + left(IdKind.EMAIL, LeftOutReason.INVALID, 1200))
    assert left_out_phrases(items) == [
        "1,200 not valid as an email or phone number",
        "78 phones it does not take",
        "3 repeated from earlier in the list",
        "1 push token it does not take",
    ]
    assert left_out_phrases([]) == []
