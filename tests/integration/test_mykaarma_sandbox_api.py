"""The myKaarma simulator itself, over real HTTP: Basic auth, departments, scopes, errors[] under
HTTP 200, the HTML login page, updates and both look-up forms, switches and injected faults, as
shared/api-notes.md section 2 and sandbox/mykaarma.py describe."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from optout_desk.sandbox.mykaarma import SCOPE_READ, MyKaarmaSandbox
from tests.fixtures.simulators import MyKaarmaFactory


def client(box: MyKaarmaSandbox, username: str | None = None,
           password: str | None = None) -> httpx.Client:
    auth = (username if username is not None else box.username,
            password if password is not None else box.password)
    return httpx.Client(base_url=box.base_url, auth=auth, timeout=10)


def entry(value: str, kind: str = "EMAIL", ok: bool = False, **extra: Any) -> dict[str, Any]:
    return {"communicationType": kind, "communicationValue": value, "okToCommunicate": ok,
            **extra}


def update(box: MyKaarmaSandbox, *entries: dict[str, Any], department: str | None = None,
           **body: Any) -> httpx.Response:
    payload = {"communicationAttributesList": list(entries), "event": "USER_REQUESTED_OPT_OUT",
               "updateType": "CUSTOMER", "apiCallSource": "tests",
               "processSynchronously": True, **body}
    with client(box) as c:
        return c.post(f"department/{department or box.department_uuid}/optoutstatus",
                      json=payload)


def lookup_one(box: MyKaarmaSandbox, kind: str, value: str) -> httpx.Response:
    with client(box) as c:
        return c.get(f"department/{box.department_uuid}/communicationType/{kind}/"
                     f"communicationValue/{quote(value, safe='')}/optoutstatus")


def lookup_list(box: MyKaarmaSandbox, *pairs: tuple[str, str]) -> httpx.Response:
    with client(box) as c:
        return c.post(f"department/{box.department_uuid}/communications/optoutstatus/list",
                      json={"communicationList": [
                          {"communicationType": k, "communicationValue": v} for k, v in pairs]})


def codes(response: httpx.Response) -> list[str]:
    return [e["errorCode"] for e in response.json()["errors"]]


def test_an_update_answers_empty_errors_and_warnings_and_is_looked_up_after(
    mykaarma_sandbox: MyKaarmaSandbox,
) -> None:
    box = mykaarma_sandbox
    response = update(box, entry("New.Person@Example.com"), entry("+32470111222", "TEXT"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"errors": [], "warnings": []}
    assert ("EMAIL", "new.person@example.com") in box.state.opted_out(box.department_uuid)
    assert box.state.opted_out_values(box.department_uuid, "TEXT") >= {"+32470111222"}
    one = lookup_one(box, "EMAIL", "new.person@example.com").json()
    assert one["optOutStatus"]["optOutState"] == "OPTED_OUT"
    assert one["optOutStatus"]["canSendOptinRequest"] is True
    assert one["optOutStatus"]["timeOfChange"].endswith("Z")
    assert one["errors"] == [] and one["warnings"] == [] and one["requestUUID"]
    never = lookup_one(box, "TEXT", "+15550000000").json()["optOutStatus"]
    assert never == {"optOutState": "OPTED_IN", "canSendOptinRequest": False,
                     "timeOfChange": None}
    assert box.state.submitted[-1]["apiCallSource"] == "tests"


def test_the_list_look_up_answers_each_value_in_order_with_its_communication(
    mykaarma_sandbox: MyKaarmaSandbox,
) -> None:
    box = mykaarma_sandbox
    seeded = sorted(box.state.opted_out_values(box.department_uuid, "EMAIL"))[0]
    update(box, entry("+4915100000001", "TEXT"))
    body = lookup_list(box, ("EMAIL", seeded), ("EMAIL", "nobody@example.com"),
                       ("TEXT", "+4915100000001")).json()
    assert body["errors"] == [] and body["requestUUID"]
    states = [(i["communication"]["communicationValue"], i["optOutStatus"]["optOutState"],
               i["communication"]["okToCommunicate"]) for i in body["optOutStatusList"]]
    assert states == [(seeded, "OPTED_OUT", False), ("nobody@example.com", "OPTED_IN", True),
                      ("+4915100000001", "OPTED_OUT", False)]


def test_generated_opt_outs_are_seeded_and_reproducible(mykaarma_factory: MyKaarmaFactory) -> None:
    first, second = mykaarma_factory(seed=3, optouts=40), mykaarma_factory(seed=3, optouts=40)
    other = mykaarma_factory(seed=4, optouts=40)
    held = first.state.opted_out(first.department_uuid)
    assert 40 <= len(held) <= 80  # each person has an email, a phone or both
    assert held == second.state.opted_out(second.department_uuid)
    assert first.department_uuid == second.department_uuid != other.department_uuid
    assert held != other.state.opted_out(other.department_uuid)
    assert all(v.startswith("+") for v in first.state.opted_out_values(first.department_uuid,
                                                                       "TEXT"))


def test_bad_values_are_each_an_error_under_http_200_and_nothing_is_applied(
    mykaarma_sandbox: MyKaarmaSandbox,
) -> None:
    box = mykaarma_sandbox
    before = box.state.opted_out(box.department_uuid)
    response = update(box, entry("fine@example.com"), entry("x@y.com", "FAX"),
                      entry("not-an-email", "EMAIL"), entry("0470 12 34 56", "TEXT"))
    assert response.status_code == 200
    body = response.json()
    assert codes(response) == ["INVALID_COMMUNICATION_TYPE", "INVALID_COMMUNICATION_VALUE",
                               "INVALID_COMMUNICATION_VALUE"]
    assert "communicationAttributesList[1]" in body["errors"][0]["errorDescription"]
    assert "'not-an-email'" in body["errors"][1]["errorDescription"]
    assert "E.164" in body["errors"][2]["errorDescription"]
    assert all(e["errorUID"] for e in body["errors"])
    assert box.state.opted_out(box.department_uuid) == before
    assert box.state.submitted == []


@pytest.mark.parametrize(("body", "code"), [
    ({"event": "MADE_UP_EVENT"}, "INVALID_EVENT"),
    ({"updateType": "EVERYTHING"}, "INVALID_UPDATE_TYPE"),
    ({"processSynchronously": "yes"}, "INVALID_REQUEST_DATA"),
    ({"communicationAttributesList": []}, "INVALID_REQUEST_DATA"),
])
def test_bad_request_fields_are_errors_under_200(mykaarma_sandbox: MyKaarmaSandbox,
                                                 body: dict[str, Any], code: str) -> None:
    response = update(mykaarma_sandbox, entry("a@example.com"), **body)
    assert (response.status_code, codes(response)) == (200, [code])


def test_ok_to_communicate_is_required(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    response = update(mykaarma_sandbox, {"communicationType": "EMAIL",
                                         "communicationValue": "a@example.com"})
    assert codes(response) == ["INVALID_REQUEST_DATA"]
    assert "okToCommunicate" in response.json()["errors"][0]["errorDescription"]


def test_switches_entries_limit_customer_uuid_warnings_and_partial_apply(
    mykaarma_factory: MyKaarmaFactory,
) -> None:
    box = mykaarma_factory(max_entries_per_request=2, require_customer_uuid=True,
                           warn_already_opted_out=True, partial_apply=True)
    too_many = update(box, *(entry(f"p{i}@example.com", customerUUID="c1") for i in range(3)))
    assert codes(too_many) == ["TOO_MANY_COMMUNICATIONS"]
    assert "at most 2" in too_many.json()["errors"][0]["errorDescription"]
    missing = update(box, entry("a@example.com"), entry("b@example.com", customerUUID="c2"))
    assert codes(missing) == ["CUSTOMER_UUID_REQUIRED"]
    # partial_apply: the entry with its customer UUID was applied beside the error
    assert box.state.state_of(box.department_uuid, "EMAIL", "b@example.com") == "OPTED_OUT"
    assert box.state.state_of(box.department_uuid, "EMAIL", "a@example.com") == "OPTED_IN"
    body_level = update(box, entry("a@example.com"), entry("b@example.com"), customerUUID="c3")
    assert body_level.json() == {"errors": [], "warnings": [{
        "warningCode": "ALREADY_OPTED_OUT",
        "warningDescription": "communicationAttributesList[1]: the value is already opted out."}]}


def test_list_batch_limit_and_validation_status_switches(
    mykaarma_factory: MyKaarmaFactory,
) -> None:
    box = mykaarma_factory(max_lookup_batch=2, validation_status=400)
    response = lookup_list(box, *(("EMAIL", f"v{i}@example.com") for i in range(3)))
    assert (response.status_code, codes(response)) == (400, ["TOO_MANY_COMMUNICATIONS"])
    mixed = lookup_list(box, ("EMAIL", "ok@example.com"), ("EMAIL", "broken"))
    assert mixed.status_code == 400 and codes(mixed) == ["INVALID_COMMUNICATION_VALUE"]
    # the valid value is still answered: a client ignoring errors[] would miss the other
    assert [i["communication"]["communicationValue"] for i in mixed.json()["optOutStatusList"]
            ] == ["ok@example.com"]


def test_opt_out_state_strings_are_a_switch(mykaarma_factory: MyKaarmaFactory) -> None:
    box = mykaarma_factory(opted_out_state="OPT_OUT", opted_in_state="OPT_IN")
    update(box, entry("s@example.com"))
    assert lookup_one(box, "EMAIL", "s@example.com").json()["optOutStatus"][
        "optOutState"] == "OPT_OUT"
    assert lookup_one(box, "EMAIL", "t@example.com").json()["optOutStatus"][
        "optOutState"] == "OPT_IN"


def test_a_communication_type_can_be_added(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    assert codes(update(mykaarma_sandbox, entry("+15550001111", "VOICE"))) == [
        "INVALID_COMMUNICATION_TYPE"]
    mykaarma_sandbox.state.add_communication_type("VOICE", "phone")
    assert update(mykaarma_sandbox, entry("+15550001111", "VOICE")).json()["errors"] == []


def test_credentials_wrong_or_missing_are_401_json(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    box = mykaarma_sandbox
    with client(box, password="wrong") as c:
        wrong = c.get(f"department/{box.department_uuid}/communicationType/EMAIL/"
                      "communicationValue/a%40example.com/optoutstatus")
    assert wrong.status_code == 401 and codes(wrong) == ["WRONG_CREDENTIAL"]
    assert wrong.headers["www-authenticate"].startswith("Basic")
    with httpx.Client(base_url=box.base_url) as c:
        missing = c.post(f"department/{box.department_uuid}/optoutstatus", json={})
    assert missing.status_code == 401 and codes(missing) == ["NULL_CREDENTIALS"]
    with client(box, username="someone-else") as c:
        unknown = c.post(f"department/{box.department_uuid}/optoutstatus", json={})
    assert unknown.status_code == 401
    assert box.state.request_log[-1].key == "someone-else"


def test_a_missing_scope_is_403_json_saying_apiscope_does_not_exist(
    mykaarma_sandbox: MyKaarmaSandbox,
) -> None:
    box = mykaarma_sandbox
    box.state.add_account("reader", "pw", [box.department_uuid], scopes={SCOPE_READ})
    with client(box, "reader", "pw") as c:
        denied = c.post(f"department/{box.department_uuid}/optoutstatus",
                        json={"communicationAttributesList": [entry("a@example.com")]})
        allowed = c.post(f"department/{box.department_uuid}/communications/optoutstatus/list",
                         json={"communicationList": [{"communicationType": "EMAIL",
                                                      "communicationValue": "a@example.com"}]})
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/json")
    assert "ApiScope does not exist" in denied.text
    assert allowed.status_code == 200


def test_unknown_and_unprovisioned_departments(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    box = mykaarma_sandbox
    unknown = update(box, entry("a@example.com"), department=box.unknown_department_uuid)
    assert unknown.status_code == 200 and codes(unknown) == ["INVALID_DEPARTMENT"]
    login = update(box, entry("a@example.com"), department=box.unprovisioned_department_uuid)
    assert login.status_code == 200
    assert login.headers["content-type"].startswith("text/html")
    assert "<form" in login.text and "Sign in" in login.text
    assert box.state.submitted == []


def test_unknown_routes_and_methods(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    with client(mykaarma_sandbox) as c:
        assert c.get("department/x/somewhere").status_code == 404
        assert c.get(f"department/{mykaarma_sandbox.department_uuid}/optoutstatus"
                     ).status_code == 405
    with httpx.Client(base_url=mykaarma_sandbox.base_url.replace("communications/", "")) as c:
        assert c.get("other/path").status_code == 404


@pytest.mark.parametrize("kind", ["html-login", "errors-under-200", "malformed"])
def test_faults_under_http_200(mykaarma_sandbox: MyKaarmaSandbox, kind: str) -> None:
    box = mykaarma_sandbox
    box.state.inject_faults(kind, 1, path_prefix="communications/department")
    faulty = update(box, entry("f@example.com"))
    assert faulty.status_code == 200
    if kind == "html-login":
        assert faulty.headers["content-type"].startswith("text/html")
    elif kind == "errors-under-200":
        assert codes(faulty) == ["INTERNAL_ERROR"]
    else:
        with pytest.raises(ValueError):
            faulty.json()
    assert box.state.state_of(box.department_uuid, "EMAIL", "f@example.com") == "OPTED_IN"
    assert update(box, entry("f@example.com")).json() == {"errors": [], "warnings": []}


def test_status_faults_drop_and_429_with_retry_after(mykaarma_sandbox: MyKaarmaSandbox) -> None:
    box = mykaarma_sandbox
    box.state.inject_faults("429", 1, retry_after_s=2.5)
    box.state.inject_faults("503", 1)
    throttled = update(box, entry("a@example.com"))
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2.5")
    assert update(box, entry("a@example.com")).status_code == 503
    box.state.inject_faults("drop", 1)
    with pytest.raises(httpx.RemoteProtocolError):
        update(box, entry("a@example.com"))
    assert [e.status for e in box.state.request_log[-3:]] == [429, 503, 0]
    with pytest.raises(ValueError, match="unknown fault"):
        box.state.inject_faults("teapot", 1)


def test_latency_is_added_per_request(mykaarma_factory: MyKaarmaFactory) -> None:
    box = mykaarma_factory(latency_ms=60, optouts=0)
    started = time.perf_counter()
    lookup_one(box, "EMAIL", "a@example.com")
    assert time.perf_counter() - started >= 0.06
