"""What makes two opt-outs one person: person_keys / dedupe_key / earliest_per_person."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from optout_desk.core.records import OptOutRecord, earliest_per_person, person_keys

DATE = "2026-03-01T09:00:00.0000000Z"


def rec(email: str = "", phone: str = "", contact: int | None = None, date: str = DATE,
        **fields: str) -> OptOutRecord:
    return OptOutRecord(date, email=email, phone=phone, contact_id=contact, **fields)


def test_contact_id_zero_none_and_one_timestamp_never_merge_people() -> None:
    batch = [rec(f"p{i}@example.com", contact=0) for i in range(50)]
    batch += [rec(f"q{i}@example.com", contact=None) for i in range(50)]
    batch += [rec(phone=f"+3247000{i:04d}", contact=0) for i in range(10)]
    assert len(set(person_keys(batch))) == 110
    assert len(earliest_per_person(batch)) == 110


def test_the_same_identifiers_are_one_person_whatever_the_contact_or_spelling() -> None:
    one = [
        rec("Ann@Example.com", contact=7),
        rec(" ann@example.com ", contact=8),  # another contact, the same address
        rec("ann@EXAMPLE.com", contact=0),
    ]
    assert len(set(person_keys(one))) == 1
    phones = [rec(phone="+32 470 12 34 56"), rec(phone="+32-470-123456"),
              rec(phone="0032470123456")]
    assert len(set(person_keys(phones))) == 1


def test_different_identifiers_stay_apart_so_nothing_is_dropped() -> None:
    # Email only, email + phone, and another phone: merging any would lose an identifier.
    apart = [rec("ann@example.com"), rec("ann@example.com", "+32470123456"),
             rec("ann@example.com", "+32470999999"), rec(phone="+32470123456"),
             rec(phone="0470123456")]  # national: the country is unknown, so not +32…
    assert len(set(person_keys(apart))) == 5


def test_without_identifiers_a_real_contact_id_or_the_row_itself_identifies() -> None:
    records = [rec(contact=5), rec(contact=5, date="2026-03-02T09:00:00.0000000Z"),
               rec(contact=0, first_name="A"), rec(contact=0, first_name="B"),
               rec(contact=None, first_name="A")]
    keys = person_keys(records)
    assert keys[0] == keys[1] and len(set(keys)) == 3


def test_earliest_opt_out_of_a_person_is_kept_in_first_seen_order() -> None:
    later = rec("ann@example.com", date="2026-03-05T00:00:00.0000000Z", first_name="later")
    earlier = rec("ANN@example.com", date="2026-03-01T00:00:00.0000000Z", first_name="earlier")
    bob = rec("bob@example.com")
    assert earliest_per_person([later, bob, earlier]) == [earlier, bob]
    assert earliest_per_person([earlier, bob, later]) == [earlier, bob]
    assert earliest_per_person(iter([bob])) == [bob]


_texts = st.sampled_from([
    "", " ", "\t", "a@example.com", "A@Example.COM ", " a@example.com\t", "not-an-email",
    "é@x.be", "b@bücher.de", "\u00a0c@x.be", "x@localhost", "a\x00b", "+32 470 12 34 56",
    " 0470123456 ", "0032470123456", "+1-202-555-0117", "(202) 555-0117", "+99", "abc", "+",
    "00", "++32", "+32+470", "٣٤٥", "+32 (0) 470", "\u00a0+32470\u00a0", "0", "+0"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_texts, _texts, st.sampled_from([None, 0, -1, 5, 6])),
                max_size=12))
def test_column_keys_equal_one_by_one(values: list[tuple[str, str, int | None]]) -> None:
    """person_keys and earliest_per_person key whole columns at once; dedupe_key one record:
    the two must agree on every shape of text."""
    records = [rec(email, phone, contact) for email, phone, contact in values]
    one_by_one = [r.dedupe_key for r in records]
    assert person_keys(records) == one_by_one
    expected = list({key: None for key in one_by_one})
    assert [r.dedupe_key for r in earliest_per_person(records)] == expected
