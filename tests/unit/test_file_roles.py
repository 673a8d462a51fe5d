"""What a file is (opt-outs, a contact list with a status column, a send list), the status and
country columns the mapping step proposes, phones read in their row's country, and the one
import workflow (workflows/importing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optout_desk.core.errors import BadInputError
from optout_desk.core.identifiers import normalise_email, normalise_phone
from optout_desk.core.reconcile import (
    Bucket,
    FileRole,
    bucket_labels,
    explain_missing,
    explain_row,
    reconcile,
)
from optout_desk.core.wording import counted_of, kinds_counted, rows_and_identifiers
from optout_desk.files import countries
from optout_desk.files.mapping import (
    distinct_values,
    opted_out_values_for,
    propose_country,
    propose_mapping,
    propose_status,
    row_regions,
)
from optout_desk.files.spreadsheet import read_table
from optout_desk.workflows import importing


def emails(*values: str | None) -> list[Any]:
    return [None if v is None else normalise_email(v) for v in values]


# ---------------------------------------------------------------- core: contact lists


def test_a_contact_list_submits_only_its_opted_out_rows() -> None:
    # rows: 0 opted out & new, 1 opted out & on the platform, 2 subscribed & new,
    # 3 subscribed but opted out on the platform, 4 subscribed duplicate of opted-out row 5,
    # 5 opted out (later in the file, but it wins: opted-out rows come first).
    column = emails("a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "e@x.com")
    flags = [True, True, False, False, False, True]
    other = [emails("b@x.com", "d@x.com", "z@x.com")]
    result = reconcile([column], other, role=FileRole.CONTACTS, opted_out=flags)
    assert [result.bucket_of(r) for r in range(6)] == [
        Bucket.TO_SUBMIT, Bucket.IN_SYNC, Bucket.SUBSCRIBED, Bucket.SUBSCRIBED,
        Bucket.DUPLICATE, Bucket.TO_SUBMIT,
    ]
    assert result.duplicate_of[4] == (5, 0)
    # d@x.com (held as subscribed by row 3) and z@x.com are missing from the CRM's opt-outs.
    assert result.missing == [1, 2]
    assert result.subscribed_match == {1: 3}
    counts = result.counts()
    assert list(counts) == [Bucket.TO_SUBMIT, Bucket.MISSING_FROM_CRM, Bucket.IN_SYNC,
                            Bucket.SUBSCRIBED, Bucket.INVALID, Bucket.DUPLICATE]
    assert sum(n for b, n in counts.items() if b is not Bucket.MISSING_FROM_CRM) == 6
    statuses = ["Unsubscribed", "Unsubscribed", "Subscribed", "Active", "Subscribed", "STOP"]
    text = explain_row(result, 3, [column], ["B (Email)"], other, statuses=statuses,
                       other_name="acme's opt-out list")
    assert text.startswith("Subscribed in the CRM (status 'Active'), but opted out on acme's")
    assert "Missing from CRM" in text
    assert explain_row(result, 2, [column], ["B"], other, statuses=statuses).endswith(
        "nothing to do.")
    assert explain_row(result, 0, [column], ["B"], other, statuses=statuses).startswith(
        "Opted out in the CRM (status 'Unsubscribed'). Not on")
    missing = explain_missing(1, other, ["Email"], subscribed_row=5, subscribed_status="Active")
    assert "as subscribed (row 5, status 'Active')" in missing


def test_a_contact_list_needs_its_flags_and_one_per_row() -> None:
    with pytest.raises(ValueError, match="opted-out status"):
        reconcile([emails("a@x.com")], [emails()], role=FileRole.CONTACTS)
    with pytest.raises(ValueError, match="one opted-out flag per row"):
        reconcile([emails("a@x.com")], [emails()], role=FileRole.CONTACTS, opted_out=[])


def test_send_list_buckets_read_as_scrubbing() -> None:
    labels = bucket_labels(FileRole.SEND_LIST)
    assert labels[Bucket.TO_SUBMIT] == "Safe to send"
    assert labels[Bucket.IN_SYNC] == "Opted out: remove"
    result = reconcile([emails("a@x.com", "b@x.com")], [emails("a@x.com")],
                       role=FileRole.SEND_LIST)
    assert Bucket.MISSING_FROM_CRM not in result.counts()
    assert result.scrubbed_rows() == [1]


def test_rows_and_identifiers_wording() -> None:
    assert rows_and_identifiers(1208, {"email": 1208, "phone": 511}) == (
        "1,208 rows · 1,719 identifiers (1,208 emails, 511 phones)")
    assert rows_and_identifiers(1, {"phone": 1}) == "1 row · 1 identifier (1 phone)"
    # The noun agrees with the total: "1 of 1 batch", not "1 of 1 batches".
    assert counted_of(1, 1, "batch", "batches") == "1 of 1 batch"
    assert counted_of(0, 1200, "opt-out") == "0 of 1,200 opt-outs"
    assert kinds_counted({"phone": 511, "email": 1208}) == "1,208 emails, 511 phones"
    assert kinds_counted({"push_token": 1}) == "1 push token"
    assert kinds_counted({}) == "nothing"


# ---------------------------------------------------------------- proposals


def test_status_column_and_its_opted_out_values_are_proposed(make_xlsx: Any) -> None:
    path = make_xlsx([
        ["Email", "Newsletter status", "Country", "Last order"],
        ["a@x.com", "Subscribed", "BE", 12],
        ["b@x.com", "Unsubscribed", "Belgium", 3],
        ["c@x.com", "subscribed", "GB", 4],
        ["d@x.com", "STOP", "be", 5],
    ])
    table = read_table(path)
    status = propose_status(table, exclude=[0])
    assert status is not None and status.column == 1
    assert set(status.opted_out_values) == {"Unsubscribed", "STOP"}
    mapping = propose_mapping(table, "US")
    assert mapping.role is FileRole.CONTACTS
    assert mapping.status_column == 1
    assert mapping.opted_out_flags(table) == [False, True, False, True]
    assert [v.text.casefold() for v in distinct_values(table, 1)][:1] == ["subscribed"]


def test_boolean_statuses_follow_what_the_header_says() -> None:
    values = [importing_value("TRUE", 3), importing_value("FALSE", 5)]
    assert opted_out_values_for("Opted out", values) == ("TRUE",)
    assert opted_out_values_for("Unsubscribed?", values) == ("TRUE",)
    assert opted_out_values_for("Marketing consent", values) == ("FALSE",)
    assert opted_out_values_for("Subscribed", values) == ("FALSE",)
    assert opted_out_values_for("Flag", values) == ()  # nothing says which way: not guessed


def importing_value(text: str, rows: int) -> Any:
    from optout_desk.files.mapping import ValueCount

    return ValueCount(text, rows)


def test_a_file_without_a_status_column_is_proposed_as_opt_outs(make_xlsx: Any) -> None:
    table = read_table(make_xlsx([["Email", "Last order"], ["a@x.com", 3], ["b@x.com", 4]]))
    mapping = propose_mapping(table, "BE")
    assert mapping.role is FileRole.OPTOUTS and mapping.status_column is None


def test_country_names_and_codes() -> None:
    assert countries.region_of("BE") == "BE"
    assert countries.region_of(" be ") == "BE"
    assert countries.region_of("Belgium") == "BE"
    assert countries.region_of("België") == "BE"
    assert countries.region_of("Deutschland") == "DE"
    assert countries.region_of("United Kingdom") == "GB"
    assert countries.region_of("UK") == "GB"
    assert countries.region_of("+44") == "GB"
    assert countries.region_of("Atlantis") is None
    assert countries.region_of(None) is None
    assert countries.name_of("DE") == "Germany"


def test_country_column_reads_each_rows_phones_in_its_country(make_xlsx: Any) -> None:
    path = make_xlsx([
        ["Name", "Mobile", "Country"],
        ["Anna", "0470 12 34 56", "BE"],
        ["Ben", "07700 900123", "United Kingdom"],
        ["Carl", "0151 23456789", "Deutschland"],
        ["Dora", "0470 12 34 57", "Atlantis"],  # unknown: the default region (BE)
    ])
    table = read_table(path)
    assert propose_country(table, exclude=[1]) == 2
    mapping = propose_mapping(table, "BE")
    assert mapping.country_column == 2
    assert row_regions(table, mapping) == ["BE", "GB", "DE", "BE"]
    columns, _labels = importing.identifier_columns(table, mapping)
    keys = [identifier.key for identifier in columns[0]]
    assert keys == ["+32470123456", "+447700900123", "+4915123456789", "+32470123457"]
    # Without the country column the GB and DE numbers would not be valid Belgian numbers.
    mapping.country_column = None
    one_region = importing.identifier_columns(table, mapping)[0][0]
    assert [identifier.key for identifier in one_region][1:3] == [None, None]
    assert normalise_phone("07700 900123", "GB").key == "+447700900123"


def test_two_letter_codes_without_a_country_header_are_not_a_country_column(
        make_xlsx: Any) -> None:
    table = read_table(make_xlsx([["Email", "Answer"], ["a@x.com", "no"], ["b@x.com", "be"]]))
    assert propose_country(table) is None


# ---------------------------------------------------------------- the import workflow


def test_plan_inputs_of_a_contact_list_are_its_opted_out_rows(make_xlsx: Any) -> None:
    path = make_xlsx([
        ["Email", "Mobile", "Status"],
        ["a@x.com", "+32470123456", "Unsubscribed"],
        ["b@x.com", None, "Subscribed"],
        ["c@x.com", None, "Opted out"],
    ])
    inputs, name, sha = importing.inputs_from_spreadsheet(path)
    assert name == path.name and len(sha) == 64
    assert [(entry.identifier.original, entry.row_number) for entry in inputs] == [
        ("a@x.com", 2), ("+32470123456", 2), ("c@x.com", 4)]
    assert importing.kind_counts(inputs) == {"email": 2, "phone": 1}


def test_a_send_list_is_never_submitted(make_xlsx: Any) -> None:
    table = read_table(make_xlsx([["Email"], ["a@x.com"]]))
    mapping = propose_mapping(table, "BE")
    mapping.role = FileRole.SEND_LIST
    with pytest.raises(BadInputError, match="send list to scrub"):
        importing.plan_inputs(table, mapping)


def test_choose_columns_from_the_command_line(make_xlsx: Any) -> None:
    table = read_table(make_xlsx([
        ["Email", "State", "Land"], ["a@x.com", "gone", "NL"], ["b@x.com", "here", "BE"]]))
    proposal = propose_mapping(table, "BE")
    assert proposal.role is FileRole.OPTOUTS  # "gone" says nothing the desk knows
    mapping = importing.choose_columns(table, proposal, status_column="State",
                                       opted_out_values=["gone"], country_column="C")
    assert mapping.role is FileRole.CONTACTS and mapping.status_column == 1
    assert mapping.opted_out_flags(table) == [True, False]
    assert mapping.country_column == 2
    with pytest.raises(BadInputError, match="Name the values of B \\(State\\)"):
        importing.choose_columns(table, proposal, status_column="State")
    with pytest.raises(BadInputError, match="needs --status-column"):
        importing.choose_columns(table, proposal, opted_out_values=["gone"])
    with pytest.raises(BadInputError, match="needs its status column"):
        importing.choose_columns(table, proposal, role=FileRole.CONTACTS)


def test_a_failed_read_is_recorded_in_the_history(tmp_path: Path) -> None:
    from optout_desk.store import history
    from optout_desk.store.db import connect

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(BadInputError):
        importing.open_spreadsheet(broken, purpose="submit")
    db = connect()
    try:
        runs = history.list_runs(db, 10)
    finally:
        db.close()
    assert [(r.kind, r.outcome, r.source_file) for r in runs] == [
        ("submit", "failed", "broken.xlsx")]


def test_the_open_filter_lists_every_supported_type() -> None:
    text = importing.open_filter()
    for suffix in importing.SUPPORTED_EXTENSIONS:
        assert f"*{suffix}" in text
    assert importing.accepts(Path("x.ODS")) and not importing.accepts(Path("x.xlsb"))
