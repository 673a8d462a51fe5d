"""core/reconcile: buckets, duplicates, missing records, explanations, suggestions."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from optout_desk.core.identifiers import Identifier, normalise_email, normalise_phone
from optout_desk.core.reconcile import (
    BUCKET_ORDER,
    Bucket,
    explain_missing,
    explain_row,
    loose_email,
    reconcile,
    suggest_near_matches,
)


def emails(*values: str | None) -> list[Identifier | None]:
    return [normalise_email(v) if v is not None else None for v in values]


def phones(*values: str | None) -> list[Identifier | None]:
    return [normalise_phone(v, "BE") if v is not None else None for v in values]


def test_buckets_single_column() -> None:
    rows = emails("Alice@Example.com ", "bob@example.com", "nope", None, "ALICE@example.com")
    other = emails("alice@example.com", "zed@example.com")
    result = reconcile([rows], [other])
    assert [result.bucket_of(i) for i in range(5)] == [
        Bucket.IN_SYNC, Bucket.TO_SUBMIT, Bucket.INVALID, Bucket.INVALID, Bucket.DUPLICATE,
    ]
    assert result.duplicate_of == {4: (0, 0)}
    assert result.missing == [1]
    counts = result.counts()
    assert list(counts) == list(BUCKET_ORDER)
    assert counts[Bucket.MISSING_FROM_CRM] == 1
    assert result.scrubbed_rows() == [1, 2, 3]  # the duplicate is on the list too: removed


def test_any_identifier_matches_and_explains_which() -> None:
    rows_e = emails("carl@example.com", "dora@example.com", None)
    rows_p = phones("0470 12 34 56", None, "+32470000111")
    other_e = emails("x@example.com", None, "y@example.com")
    other_p = phones("+32470123456", "+32470000111", None)
    result = reconcile([rows_e, rows_p], [other_e, other_p])
    assert result.bucket_of(0) is Bucket.IN_SYNC
    assert result.match_column(0) == 1
    assert result.matched_record(0) == 0
    assert result.bucket_of(1) is Bucket.TO_SUBMIT
    assert result.bucket_of(2) is Bucket.IN_SYNC
    text = explain_row(result, 0, [rows_e, rows_p], ["B (Email)", "C (Phone)"],
                       [other_e, other_p], [2, 3, 4])
    assert "phone '0470 12 34 56' (C (Phone)) matched +32470123456" in text
    assert "phone +32470123456 from '0470 12 34 56', region BE" in text
    assert result.missing == [2]  # record 0 matched on its phone, record 1 too
    assert "y@example.com" in explain_missing(2, [other_e, other_p], ["Email", "Phone"])


def test_duplicates_name_the_earliest_row_across_columns() -> None:
    rows_e = emails("a@example.com", "b@example.com", "c@example.com", "b@example.com")
    rows_p = phones(None, "+32470000001", "+32470000001", None)
    result = reconcile([rows_e, rows_p], [emails("q@example.com")])
    assert result.duplicate_of == {2: (1, 1), 3: (1, 0)}
    text = explain_row(result, 2, [rows_e, rows_p], ["B", "C"], [emails("q@example.com")],
                       [10, 11, 12, 13])
    assert text.startswith("Duplicate of row 11: the same phone +32470000001")


def test_invalid_rows_give_the_reason_per_value() -> None:
    rows_e = emails("not an email", None)
    rows_p = phones("12", None)
    result = reconcile([rows_e, rows_p], [emails("a@example.com")])
    assert result.rows_in(Bucket.INVALID) == [0, 1]
    text = explain_row(result, 0, [rows_e, rows_p], ["B", "C"], [emails("a@example.com")])
    assert "email 'not an email' (B)" in text and "phone '12' (C)" in text
    empty = explain_row(result, 1, [rows_e, rows_p], ["B", "C"], [emails("a@example.com")])
    assert empty == "No email or phone in the mapped columns."


def test_repeated_records_on_the_other_list_collapse() -> None:
    other = emails("z@example.com", "z@example.com", None, "y@example.com")
    result = reconcile([emails("y@example.com")], [other])
    assert result.missing == [0, 2]
    assert result.collapsed_missing == 1
    assert result.counts()[Bucket.MISSING_FROM_CRM] == 2


def test_empty_inputs() -> None:
    result = reconcile([[]], [[]])
    assert all(count == 0 for count in result.counts().values())
    result = reconcile([emails("a@example.com")], [])
    assert result.bucket_of(0) is Bucket.TO_SUBMIT


def test_loose_email_folds_provider_tricks() -> None:
    assert loose_email("a.b+news@gmail.com") == (
        "ab@gmail.com", ("the +tag '+news' ignored", "Gmail ignores dots"))
    assert loose_email("x@gmial.com")[0] == "x@gmail.com"
    assert loose_email("x@hotmial.com")[0] == "x@hotmail.com"
    assert loose_email("x@yaho.com")[0] == "x@yahoo.com"
    assert loose_email("a.b@example.com") == ("a.b@example.com", ())


def test_suggestions_cover_dots_tags_typos_and_stray_spaces() -> None:
    rows = emails("j.doe@gmail.com", "ann+promo@example.com", "kim@hotmial.com",
                  "lee @example.com", "new@example.com")
    other = emails("jdoe@gmail.com", "ann@example.com", "kim@hotmail.com", "lee@example.com")
    result = reconcile([rows], [other])
    before = bytes(result.codes)
    suggestions = suggest_near_matches(result, [rows], [other])
    assert bytes(result.codes) == before  # never applied
    assert [(s.row, s.other) for s in suggestions] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert "Gmail ignores dots" in suggestions[0].reasons
    assert "a stray space inside" in suggestions[3].reasons
    assert "typo" in suggestions[2].text


# ---------------------------------------------------------------- properties

LOCALS = st.sampled_from(["ann", "bob", "c.d", "eve", "fay", "gus", "hal"])
DOMAINS = st.sampled_from(["example.com", "gmail.com", "test.org"])
EMAIL = st.builds(lambda a, b: f"{a}@{b}", LOCALS, DOMAINS)
CELL = st.one_of(st.none(), EMAIL, st.just("bad value"))
PHONE = st.one_of(st.none(), st.sampled_from(["+32470000001", "0470 00 00 02", "12"]))


def _case_variant(value: str | None, seed: int) -> str | None:
    if value is None:
        return None
    rng = random.Random(seed)
    return "".join(c.upper() if rng.random() < 0.5 else c for c in value)


def _signature(rows: list[tuple[str | None, str | None]], other: list[str | None]) -> list[
    tuple[Bucket, int | None]
]:
    result = reconcile(
        [emails(*(r[0] for r in rows)), phones(*(r[1] for r in rows))], [emails(*other)]
    )
    return [
        (result.bucket_of(i), result.duplicate_of.get(i, (None,))[0]) for i in range(len(rows))
    ]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(CELL, PHONE), max_size=25),
    other=st.lists(CELL, max_size=15),
    seed=st.integers(0, 10_000),
)
def test_case_changes_never_change_buckets(
    rows: list[tuple[str | None, str | None]], other: list[str | None], seed: int
) -> None:
    varied = [(_case_variant(e, seed + i), p) for i, (e, p) in enumerate(rows)]
    varied_other = [_case_variant(e, seed * 7 + i) for i, e in enumerate(other)]
    assert _signature(rows, other) == _signature(varied, varied_other)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(CELL, PHONE), max_size=25),
    other=st.lists(CELL, max_size=15),
    seed=st.integers(0, 10_000),
)
def test_shuffling_keeps_each_rows_bucket_up_to_duplicate_order(
    rows: list[tuple[str | None, str | None]], other: list[str | None], seed: int
) -> None:
    """Shuffling changes which copy of a repeated identity comes first, but never whether a
    row is invalid, and never the bucket of the identity's first copy or of unique rows."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    shuffled = [rows[i] for i in order]
    other_shuffled = list(other)
    random.Random(seed + 1).shuffle(other_shuffled)
    base = reconcile([emails(*(r[0] for r in rows)), phones(*(r[1] for r in rows))],
                     [emails(*other)])
    moved = reconcile([emails(*(r[0] for r in shuffled)), phones(*(r[1] for r in shuffled))],
                      [emails(*other_shuffled)])
    for new_index, old_index in enumerate(order):
        old_bucket, new_bucket = base.bucket_of(old_index), moved.bucket_of(new_index)
        assert (old_bucket is Bucket.INVALID) == (new_bucket is Bucket.INVALID)
        assert base.on_other[old_index] == moved.on_other[new_index]
        if Bucket.DUPLICATE not in (old_bucket, new_bucket):
            assert old_bucket == new_bucket
    assert base.counts()[Bucket.INVALID] == moved.counts()[Bucket.INVALID]
    assert len(base.scrubbed_rows()) == len(moved.scrubbed_rows())
    assert base.counts()[Bucket.MISSING_FROM_CRM] == moved.counts()[Bucket.MISSING_FROM_CRM]


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(CELL, PHONE), max_size=30), other=st.lists(CELL, max_size=20))
def test_counts_equal_rows_held_and_duplicates_name_an_earlier_row(
    rows: list[tuple[str | None, str | None]], other: list[str | None]
) -> None:
    columns = [emails(*(r[0] for r in rows)), phones(*(r[1] for r in rows))]
    other_columns = [emails(*other)]
    result = reconcile(columns, other_columns)
    counts = result.counts()
    held = sorted(i for bucket in (Bucket.TO_SUBMIT, Bucket.IN_SYNC, Bucket.INVALID,
                                   Bucket.DUPLICATE) for i in result.rows_in(bucket))
    assert held == list(range(len(rows)))  # every row in exactly one bucket
    for bucket in BUCKET_ORDER:
        assert counts[bucket] == len(result.rows_in(bucket))
    for row, (earlier, column) in result.duplicate_of.items():
        assert earlier < row
        key = columns[column][row].key  # type: ignore[union-attr]
        assert key is not None
        assert key in {c[earlier].key for c in columns if c[earlier] is not None}  # type: ignore[union-attr]
        earliest = min(i for i in range(row) for c in columns
                       if c[i] is not None and c[i].key is not None  # type: ignore[union-attr]
                       and any(c2[row] is not None and c2[row].key == c[i].key  # type: ignore[union-attr]
                               for c2 in columns))
        assert earlier == earliest
    row_keys = {c[i].key for c in columns for i in range(len(rows)) if c[i] is not None}  # type: ignore[union-attr]
    row_keys.discard(None)
    for index in result.missing:
        identifier = other_columns[0][index]
        assert identifier is None or identifier.key not in row_keys
    for row in range(len(rows)):
        text = explain_row(result, row, columns, ["B", "C"], other_columns)
        assert text


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(EMAIL, max_size=20), other=st.lists(EMAIL, max_size=20))
def test_suggestions_never_change_buckets(rows: list[str], other: list[str]) -> None:
    variants = [v.replace("gmail.com", "gmial.com").replace("ann", "a.nn") for v in rows]
    columns, other_columns = [emails(*variants)], [emails(*other)]
    result = reconcile(columns, other_columns)
    codes, missing = bytes(result.codes), list(result.missing)
    suggestions = suggest_near_matches(result, columns, other_columns)
    assert bytes(result.codes) == codes and result.missing == missing
    for suggestion in suggestions:
        assert result.bucket_of(suggestion.row) in (Bucket.TO_SUBMIT, Bucket.INVALID)


def _reference(columns: list[list[str | None]], other: list[list[str | None]]) -> tuple[
        list[Bucket], dict[int, tuple[int, int]], list[int]]:
    """The buckets computed the slow, obvious way: the oracle for the set-based matcher."""
    count = len(columns[0]) if columns else 0
    first: dict[str, int] = {}
    for row in range(count):
        for keys in columns:
            if keys[row] is not None:
                first.setdefault(keys[row], row)  # type: ignore[arg-type]
    on_other = {key for keys in other for key in keys if key is not None}
    buckets: list[Bucket] = []
    duplicate_of: dict[int, tuple[int, int]] = {}
    for row in range(count):
        cells = [(c, keys[row]) for c, keys in enumerate(columns) if keys[row] is not None]
        if not cells:
            buckets.append(Bucket.INVALID)
        elif any(first[key] < row for _, key in cells):  # type: ignore[index]
            buckets.append(Bucket.DUPLICATE)
            duplicate_of[row] = min((first[key], c) for c, key in cells)  # type: ignore[index]
        elif any(key in on_other for _, key in cells):
            buckets.append(Bucket.IN_SYNC)
        else:
            buckets.append(Bucket.TO_SUBMIT)
    missing: list[int] = []
    seen: set[str] = set()
    for index in range(len(other[0]) if other else 0):
        present = [keys[index] for keys in other if keys[index] is not None]
        if any(key in first for key in present):
            continue
        if present and all(key in seen for key in present):
            continue
        seen.update(present)  # type: ignore[arg-type]
        missing.append(index)
    return buckets, duplicate_of, missing


KEY = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", "+1", "+2", "+3"]))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), width=st.integers(1, 3), other_width=st.integers(1, 2),
       rows=st.integers(0, 25), records=st.integers(0, 25))
def test_the_matcher_agrees_with_the_obvious_reference(
    data: st.DataObject, width: int, other_width: int, rows: int, records: int,
) -> None:
    columns = [data.draw(st.lists(KEY, min_size=rows, max_size=rows)) for _ in range(width)]
    other = [data.draw(st.lists(KEY, min_size=records, max_size=records))
             for _ in range(other_width)]

    def as_identifiers(keys: list[str | None]) -> list[Identifier | None]:
        return [None if k is None else Identifier(normalise_email("x@example.com").kind, k, k)
                for k in keys]

    result = reconcile([as_identifiers(c) for c in columns], [as_identifiers(c) for c in other])
    buckets, duplicate_of, missing = _reference(columns, other)
    assert [result.bucket_of(row) for row in range(rows)] == buckets
    assert result.duplicate_of == duplicate_of
    assert result.missing == missing
