"""Webhook bodies as the vendors document them (seeds 000 and 004), and every way to get one
wrong: each refusal names the field and why."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from optout_desk.webhooks.payloads import (
    Handshake,
    Ignored,
    PayloadError,
    parse,
)

# Seed 004's example, verbatim.
LOX24_UNSUBSCRIBE: dict[str, Any] = {
    "id": "ef58b437-1319-4b0c-961b-17214cf1cf32",
    "data": {
        "phone": "+4911113333444", "user_id": 2, "created_at": 1757849748,
        "campaign_code": "3KCKb5nMD",
        "additional_data": {"reason": {"id": 4, "label": "Es ist unverständlich"},
                            "additional_text": "zusätzlicher Benutzertext mit Erklärung"},
        "short_link_code": "baaIou", "unsubscribe_request_id": 59,
    },
    "name": "phone.unsubscribe", "created_at": 1757849748, "api_version": "2022-05-25",
    "attempt_number": 1, "attempts_total": 4,
}
# Seed 000's sample, abbreviated to the fields that matter.
CM_OPTOUT: dict[str, Any] = {
    "Contact": {
        "DateOptOut": "2024-04-16T07:52:19.6925335Z", "OptoutSourceId": 64, "LangCode": "en",
        "Surveys": [{"SurveyId": 2, "Title": "sample string 3", "PanelistStatusId": 4}],
        "ContactId": 3, "FirstName": "John", "LastName": "Doe", "Email": "John.Doe@Mail.com",
        "Phone": "+1-202-555-0117", "CountryId": "US", "IsOptedOut": True,
    },
    "WebhookId": 1, "EventName": "Panelist.Optout",
}


def body(data: object) -> bytes:
    return json.dumps(data).encode()


def lox(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(LOX24_UNSUBSCRIBE)
    data.update(changes)
    return data


def test_lox24_unsubscribe_from_the_vendor_example() -> None:
    event = parse("lox24", "lox", body(LOX24_UNSUBSCRIBE), {})
    assert not isinstance(event, Handshake | Ignored)
    assert (event.kind, event.id_kind, event.identifier) == ("optout", "phone", "+4911113333444")
    assert event.event_id == "ef58b437-1319-4b0c-961b-17214cf1cf32"
    assert (event.reason_id, event.reason_label) == (4, "Es ist unverständlich")
    assert event.free_text == "zusätzlicher Benutzertext mit Erklärung"
    assert (event.campaign, event.user_id, event.group_id, event.short_link) == (
        "3KCKb5nMD", 2, None, "baaIou")
    assert event.occurred_at == "2025-09-14T11:35:48.0000000Z"
    assert event.details["unsubscribe_request_id"] == 59


def test_lox24_subscribe_is_a_resubscribe_with_empty_additional_data() -> None:
    data = lox(name="phone.subscribe")
    data["data"] = {"phone": "+49 151 1234 5678", "user_id": 2, "created_at": 1757849800,
                    "campaign_code": "X", "additional_data": [], "short_link_code": "a",
                    "group_id": 123}
    event = parse("lox24", "lox", body(data), {})
    assert not isinstance(event, Handshake | Ignored)
    assert (event.kind, event.identifier, event.group_id) == ("resubscribe", "+4915112345678",
                                                              123)


@pytest.mark.parametrize("total_field", ["attempt_total", "attempts_total"])
def test_lox24_accepts_both_spellings_of_the_total(total_field: str) -> None:
    data = lox(attempt_number=2)
    data.pop("attempts_total")
    data[total_field] = 4
    assert not isinstance(parse("lox24", "lox", body(data), {}), Ignored)
    data[total_field] = 5
    with pytest.raises(PayloadError, match=re.escape(f"{total_field} must be from 1 to 4")):
        parse("lox24", "lox", body(data), {})


def test_lox24_other_events_are_ignored_not_refused() -> None:
    assert parse("lox24", "lox", body(lox(name="sms.delivery", data={"id": "x"})), {}) == \
        Ignored("sms.delivery")


def _without(path: str) -> dict[str, Any]:
    data = lox()
    *parents, last = path.split(".")
    target = data
    for name in parents:
        target = target[name]
    del target[last]
    return data


@pytest.mark.parametrize(("data", "reason"), [
    (_without("id"), "The field id is missing."),
    (lox(id="not-a-uuid"), "id must be a UUID text."),
    (_without("name"), "The field name is missing."),
    (_without("data"), "The field data is missing."),
    (lox(data=[1]), "data must be an object."),
    (_without("data.phone"), "The field data.phone is missing."),
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "phone": 4911113333444}),
     "data.phone must be a text"),
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "phone": "01511234567"}),
     "data.phone is not an E.164 phone number"),
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "user_id": "2"}), "data.user_id must be a whole"),
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "additional_data": {"reason": {"id": True}}}),
     "data.additional_data.reason.id must be a whole number."),
    (lox(attempt_number=0), "attempt_number must be 1 or more."),
    # JSON numbers have no bound; an SQLite INTEGER has: refused here, not failed at COMMIT.
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "user_id": 2**63}),
     "data.user_id is too large a number"),
    (lox(data={**LOX24_UNSUBSCRIBE["data"], "group_id": 2**63 + 5}),
     "data.group_id is too large a number"),
])
def test_lox24_refusals_name_the_field(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("lox24", "lox", body(data), {})
    assert caught.value.reason.startswith(reason)


def test_lox24_texts_are_kept_within_bounds() -> None:
    """Texts from a sender are untrusted: each is cut to 2,000 characters (a 900 KB one in a
    table cell stalls the Inbox page), never refused."""
    long = "x" * 900_000
    data = lox(data={**LOX24_UNSUBSCRIBE["data"], "campaign_code": long, "short_link_code": long,
                     "additional_data": {"reason": {"id": 1, "label": long},
                                         "additional_text": long}})
    event = parse("lox24", "lox", body(data), {})
    assert not isinstance(event, Handshake | Ignored)
    assert [len(t) for t in (event.campaign, event.short_link, event.reason_label,
                             event.free_text)] == [2000] * 4


def test_lox24_without_any_created_at_is_refused() -> None:
    data = _without("data.created_at")
    data.pop("created_at")
    with pytest.raises(PayloadError, match=r"data\.created_at is missing"):
        parse("lox24", "lox", body(data), {})


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "The body is empty"),
    (b"{nope", "The body is not valid JSON"),
    (b"[1, 2]", "The body must be a JSON object."),
])
def test_bodies_that_are_not_an_object(raw: bytes, reason: str) -> None:
    for system in ("lox24", "checkmarket"):
        with pytest.raises(PayloadError, match=reason):
            parse(system, "s", raw, {})


def test_checkmarket_optout_from_the_vendor_sample() -> None:
    event = parse("checkmarket", "cm", body(CM_OPTOUT), {})
    assert not isinstance(event, Handshake | Ignored)
    assert (event.kind, event.id_kind, event.identifier, event.phone) == (
        "optout", "email", "john.doe@mail.com", "+12025550117")
    assert event.event_id == "1:3:2024-04-16T07:52:19.6925335Z"
    assert event.reason_label == "opt-out source 64"
    assert event.campaign == "2: sample string 3"
    assert event.details["contact_id"] == 3 and event.details["survey_ids"] == [2]


def test_a_receiver_that_runs_for_months_does_not_cache_every_identifier() -> None:
    """Before, each delivery's phone and email stayed in the import caches (about 200 bytes
    each, up to 2,000,000: some 400 MB) for as long as the receiver ran."""
    from optout_desk.core import identifiers

    phones = identifiers.phone_normaliser("DE")._cache
    emails = identifiers._email_cache
    before = len(phones), len(emails)
    for n in range(300):
        parse("lox24", "lox", body(lox(id=f"ef58b437-1319-4b0c-961b-{n:012d}", data={
            **LOX24_UNSUBSCRIBE["data"], "phone": f"+491511{n:07d}"})), {})
        contact = {**CM_OPTOUT["Contact"], "ContactId": n, "Email": f"p{n}@example.com",
                   "Phone": f"+1202555{n:04d}"}
        parse("checkmarket", "cm", body({**CM_OPTOUT, "Contact": contact}), {})
    assert (len(phones), len(emails)) == before
    assert identifiers.phone_normaliser("US")._cache.get("+12025550007") is None


def test_checkmarket_envelope_wrapped_in_data_is_read_too() -> None:
    event = parse("checkmarket", "cm", body({"Data": CM_OPTOUT}), {})
    assert not isinstance(event, Handshake | Ignored)
    assert event.identifier == "john.doe@mail.com"


def test_checkmarket_phone_only_contact() -> None:
    data = copy.deepcopy(CM_OPTOUT)
    data["Contact"]["Email"] = None
    event = parse("checkmarket", "cm", body(data), {})
    assert not isinstance(event, Handshake | Ignored)
    assert (event.id_kind, event.identifier, event.phone) == ("phone", "+12025550117", "")


def test_checkmarket_handshake_needs_its_hook_key() -> None:
    created = {"ActivationRequired": True, "WebhookId": 7, "EventName": "Webhook.Created"}
    shake = parse("checkmarket", "cm", body(created), {"x-hook-key": "k3y"})
    assert shake == Handshake(7, "Webhook.Created", "k3y")
    assert "k3y" not in repr(shake)
    with pytest.raises(PayloadError, match="without its X-Hook-Key header"):
        parse("checkmarket", "cm", body(created), {})


def _cm(**contact: Any) -> dict[str, Any]:
    data = copy.deepcopy(CM_OPTOUT)
    for name, value in contact.items():
        if value is None:
            data["Contact"].pop(name)
        else:
            data["Contact"][name] = value
    return data


@pytest.mark.parametrize(("data", "reason"), [
    ({k: v for k, v in CM_OPTOUT.items() if k != "EventName"}, "The field EventName is missing."),
    ({k: v for k, v in CM_OPTOUT.items() if k != "WebhookId"}, "The field WebhookId is missing."),
    ({k: v for k, v in CM_OPTOUT.items() if k != "Contact"}, "The field Contact is missing."),
    (_cm(ContactId=None), "The field Contact.ContactId is missing."),
    (_cm(DateOptOut=None), "The field Contact.DateOptOut is missing."),
    (_cm(DateOptOut="yesterday"), "Contact.DateOptOut is not an ISO-8601"),
    (_cm(Email=None, Phone=None), "The Contact has no Email and no Phone."),
    (_cm(Email="not an address", Phone="12"),
     "The Contact has neither a valid Email nor a valid Phone."),
    (_cm(Email=5), "Contact.Email must be a text."),
])
def test_checkmarket_refusals_name_the_field(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("checkmarket", "cm", body(data), {})
    assert caught.value.reason.startswith(reason)


def test_checkmarket_other_events_are_ignored() -> None:
    assert parse("checkmarket", "cm", body({"EventName": "Respondent.Complete"}), {}) == \
        Ignored("Respondent.Complete")


def test_a_megabyte_phone_or_survey_list_is_bounded_work() -> None:
    """A LOX24 phone of a megabyte is refused before the formatting pass; a Contact on
    300,000 surveys keeps the first 1,000 (before: every one, into every stored row)."""
    with pytest.raises(PayloadError, match=r"data\.phone is too long to be a phone number"):
        parse("lox24", "lox", body(lox(data={**LOX24_UNSUBSCRIBE["data"],
                                             "phone": "+49 " + "1-" * 490_000})), {})
    data = copy.deepcopy(CM_OPTOUT)
    data["Contact"]["Surveys"] = [{"SurveyId": n} for n in range(300_000)]
    event = parse("checkmarket", "cm", body(data), {})
    assert not isinstance(event, Handshake | Ignored)
    assert event.details["survey_ids"] == list(range(1000))
