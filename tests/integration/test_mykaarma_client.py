"""The myKaarma client against the simulator over real HTTP on 127.0.0.1: updates with their
bodies, warnings, look-ups (both forms, batched, concurrent) reflecting what was submitted, every
error path with its message, retries, pacing and cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from optout_desk.connectors.errors import (
    AuthenticationError,
    MalformedResponseError,
    MissingRoleError,
    NetworkError,
    PlatformError,
)
from optout_desk.connectors.mykaarma import (
    OPERATION_UPDATE,
    Communication,
    MyKaarmaClient,
    MyKaarmaRequestError,
    MyKaarmaSettings,
    OptOutStatus,
    RouteNotProvisionedError,
)
from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.sandbox.mykaarma import SCOPE_READ, MyKaarmaSandbox
from tests.fixtures.simulators import MyKaarmaFactory, fast_retries

ClientFor = Callable[..., MyKaarmaClient]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    opened: list[MyKaarmaClient] = []

    def make(box: MyKaarmaSandbox, username: str | None = None, password: str | None = None,
             **settings: Any) -> MyKaarmaClient:
        values = {"department_uuid": box.department_uuid, "timeout_s": 5, "max_retries": 3,
                  **settings}
        client = MyKaarmaClient(MyKaarmaSettings.from_mapping(box.base_url, values),
                                username if username is not None else box.username,
                                password if password is not None else box.password)
        fast_retries(client)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def email(value: str) -> Communication:
    return Communication("email", value)


def phone(value: str) -> Communication:
    return Communication("phone", value)


def test_check_proves_credentials_and_department(mykaarma_sandbox: MyKaarmaSandbox,
                                                 client_for: ClientFor) -> None:
    message = client_for(mykaarma_sandbox).check().message
    assert "accepted the username and password" in message
    assert mykaarma_sandbox.department_uuid in message
    assert mykaarma_sandbox.state.request_log[-1].method == "GET"


def test_an_update_sends_the_documented_body_and_the_look_ups_reflect_it(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    box = mykaarma_sandbox
    client = client_for(box, entries_per_request=2)
    result = client.update_optout_status([email("Jane.Doe@Example.com"), phone("+32470555001")])
    assert (result.entries, result.warnings, result.attempts, result.http_status) == (
        2, (), 1, 200)
    assert box.state.submitted[-1] == {
        "communicationAttributesList": [
            {"communicationType": "EMAIL", "communicationValue": "Jane.Doe@Example.com",
             "okToCommunicate": False},
            {"communicationType": "TEXT", "communicationValue": "+32470555001",
             "okToCommunicate": False}],
        "event": "USER_REQUESTED_OPT_OUT", "updateType": "CUSTOMER",
        "apiCallSource": "optout-desk", "processSynchronously": True,
    }
    one = client.lookup_one("email", "jane.doe@example.com")
    assert (one.state, one.opted_out, one.can_send_optin_request) == ("OPTED_OUT", True, True)
    assert one.time_of_change is not None
    assert client.lookup_one("phone", "+32470555001").opted_out is True
    assert client.lookup_one("phone", "+32470555002") == OptOutStatus(
        "phone", "+32470555002", "OPTED_IN", False, False, None)


def test_payloads_are_split_by_entries_per_request_and_the_list_look_up_in_batches(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    box = mykaarma_sandbox
    client = client_for(box, entries_per_request=2, lookup_batch_size=3, concurrency=2)
    submitted = [email(f"p{i}+tag@example.com") for i in range(5)]
    payloads = client.update_payloads(submitted)
    assert [len(p["communicationAttributesList"]) for p in payloads] == [2, 2, 1]
    assert sum(client.send_update(p).entries for p in payloads) == 5
    seeded = sorted(box.state.opted_out_values(box.department_uuid, "EMAIL"))[:2]
    asked = [*submitted, email("never@example.com"), *(email(v.upper()) for v in seeded),
             phone("+15550109999"), email("P0+TAG@example.com")]
    before = len(box.state.requests_to("communications/department"))
    reports: list[Progress] = []
    statuses = client.lookup_statuses(asked, progress=reports.append)
    assert [s.value for s in statuses] == [a.value for a in asked]  # the order asked
    assert [s.opted_out for s in statuses] == [True] * 5 + [False, True, True, False, True]
    assert len(box.state.requests_to("communications/department")) - before == 4
    assert reports[-1] == Progress(done=4, total=4, unit="batches", records=10)
    with pytest.raises(BadInputError, match="send them one payload at a time"):
        client.update_optout_status(submitted)
    with pytest.raises(BadInputError, match="exceed the look-up batch size of 3"):
        client.lookup_batch(asked)


def test_look_up_batches_overlap_up_to_the_concurrency(
    mykaarma_factory: MyKaarmaFactory, client_for: ClientFor,
) -> None:
    box = mykaarma_factory(latency_ms=100, optouts=0)
    client = client_for(box, lookup_batch_size=2, concurrency=4)
    started = time.perf_counter()
    statuses = client.lookup_statuses([email(f"c{i}@example.com") for i in range(16)])
    elapsed = time.perf_counter() - started
    assert len(statuses) == 16 and box.state.max_in_flight == 4
    assert elapsed < 0.8 * 8 * 0.1  # 8 batches one by one would take 0.8 s


def test_warnings_are_kept_in_the_result(mykaarma_factory: MyKaarmaFactory,
                                         client_for: ClientFor) -> None:
    box = mykaarma_factory(warn_already_opted_out=True)
    client = client_for(box)
    assert client.update_optout_status([email("w@example.com")]).warnings == ()
    again = client.update_optout_status([email("w@example.com")])
    assert [(w.code, w.description) for w in again.warnings] == [(
        "ALREADY_OPTED_OUT", "communicationAttributesList[0]: the value is already opted out.")]


def test_errors_under_200_fail_the_payload_with_codes_shown_and_values_scrubbed(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    box = mykaarma_sandbox
    client = client_for(box, entries_per_request=3)
    with pytest.raises(MyKaarmaRequestError) as caught:
        client.update_optout_status([email("ok@example.com"), email("Not-An-Email"),
                                     phone("0470 12 34 56")])
    error = caught.value
    assert error.http_status == 200
    assert error.codes == ("INVALID_COMMUNICATION_VALUE", "INVALID_COMMUNICATION_VALUE")
    assert "refused the opt-out update of 3 values" in error.message
    assert f"department {box.department_uuid} under HTTP 200" in error.message
    assert "INVALID_COMMUNICATION_VALUE: communicationAttributesList[1]: communicationValue " \
           "'[value]' is not a valid email address" in error.message
    assert "Not-An-Email" not in error.message and "0470 12 34 56" not in error.message
    assert all(e.uid for e in error.errors)
    assert len(box.state.requests_to("communications/")) == 1  # not retried
    assert box.state.submitted == []


def test_a_bad_communication_type_setting_shows_the_platform_code(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    client = client_for(mykaarma_sandbox, phone_type="SMS")
    with pytest.raises(MyKaarmaRequestError, match=r"INVALID_COMMUNICATION_TYPE: .*'SMS' is "
                       "not one of EMAIL, TEXT"):
        client.update_optout_status([phone("+32470555001")])


def test_errors_under_a_4xx_are_read_the_same_way(mykaarma_factory: MyKaarmaFactory,
                                                  client_for: ClientFor) -> None:
    box = mykaarma_factory(validation_status=400, max_entries_per_request=1)
    client = client_for(box, entries_per_request=2)
    with pytest.raises(MyKaarmaRequestError, match="TOO_MANY_COMMUNICATIONS") as caught:
        client.update_optout_status([email("a@example.com"), email("b@example.com")])
    assert caught.value.http_status == 400


def test_an_unknown_department_names_the_code(mykaarma_sandbox: MyKaarmaSandbox,
                                              client_for: ClientFor) -> None:
    client = client_for(mykaarma_sandbox,
                        department_uuid=mykaarma_sandbox.unknown_department_uuid)
    with pytest.raises(MyKaarmaRequestError) as caught:
        client.check()
    assert caught.value.codes == ("INVALID_DEPARTMENT",)
    assert "INVALID_DEPARTMENT: Department" in caught.value.message


def test_an_unprovisioned_department_says_the_route_is_not_provisioned(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    box = mykaarma_sandbox
    client = client_for(box, department_uuid=box.unprovisioned_department_uuid)
    with pytest.raises(RouteNotProvisionedError) as caught:
        client.update_optout_status([email("a@example.com")])
    assert caught.value.message == (
        f"myKaarma ({client.host}) answered the opt-out update of 1 value with a web page "
        "(its login page) instead of JSON: the account is not provisioned for this API route "
        f"on department {box.unprovisioned_department_uuid}; ask your myKaarma representative "
        "to enable it.")
    with pytest.raises(RouteNotProvisionedError, match="look-up"):
        client.check()


def test_an_html_login_page_fault_is_not_provisioned_either(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    mykaarma_sandbox.state.inject_faults("html-login", 1)
    with pytest.raises(RouteNotProvisionedError, match="login page"):
        client_for(mykaarma_sandbox).lookup_statuses([email("a@example.com")])


def test_a_wrong_password_names_both_credentials_and_never_shows_them(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    client = client_for(mykaarma_sandbox, password="Wr0ng-Secret")
    with pytest.raises(AuthenticationError) as caught:
        client.check()
    message = caught.value.message
    assert "refused the Username and Password" in message
    assert "WRONG_CREDENTIAL" in message
    assert "Wr0ng-Secret" not in message and mykaarma_sandbox.username not in message
    assert "Wr0ng-Secret" not in repr(client) and mykaarma_sandbox.username not in repr(client)
    assert len(mykaarma_sandbox.state.request_log) == 1  # 401 is not retried


def test_a_missing_scope_says_which_operation(mykaarma_sandbox: MyKaarmaSandbox,
                                              client_for: ClientFor) -> None:
    box = mykaarma_sandbox
    box.state.add_account("reader", "reader-pw", [box.department_uuid], scopes={SCOPE_READ})
    client = client_for(box, username="reader", password="reader-pw")
    assert "accepted" in client.check().message  # reading is allowed
    with pytest.raises(MissingRoleError) as caught:
        client.update_optout_status([email("a@example.com")])
    assert caught.value.role == OPERATION_UPDATE
    assert (f"lacks the API scope for updating opt-out status on department "
            f"{box.department_uuid}") in caught.value.message
    assert "ApiScope does not exist" in caught.value.message


def test_429_retry_after_is_honoured(mykaarma_sandbox: MyKaarmaSandbox,
                                     client_for: ClientFor) -> None:
    mykaarma_sandbox.state.inject_faults("429", 1, retry_after_s=0.4)
    started = time.perf_counter()
    result = client_for(mykaarma_sandbox).update_optout_status([email("t@example.com")])
    assert time.perf_counter() - started >= 0.4
    assert result.attempts == 2


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_server_errors_and_dropped_connections_are_retried(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor, kind: str,
) -> None:
    box = mykaarma_sandbox
    box.state.inject_faults(kind, 2)
    result = client_for(box).update_optout_status([email("r@example.com")])
    assert result.attempts == 3
    assert box.state.state_of(box.department_uuid, "EMAIL", "r@example.com") == "OPTED_OUT"


def test_retries_run_out_with_a_clear_error(mykaarma_sandbox: MyKaarmaSandbox,
                                            client_for: ClientFor) -> None:
    mykaarma_sandbox.state.inject_faults("500", 2)  # both attempts of max_retries=1
    with pytest.raises(PlatformError, match=r"answered HTTP 500 to the opt-out status look-up "
                       r"\(An unexpected error occurred.\); try again later"):
        client_for(mykaarma_sandbox, max_retries=1).check()
    mykaarma_sandbox.state.inject_faults("drop", 10)
    with pytest.raises(NetworkError, match="closed without an answer"):
        client_for(mykaarma_sandbox, max_retries=1).check()


def test_a_fault_with_errors_under_200_fails_and_a_broken_body_is_malformed(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    client = client_for(mykaarma_sandbox)
    mykaarma_sandbox.state.inject_faults("errors-under-200", 1)
    with pytest.raises(MyKaarmaRequestError, match="INTERNAL_ERROR"):
        client.update_optout_status([email("m@example.com")])
    mykaarma_sandbox.state.inject_faults("malformed", 1)
    with pytest.raises(MalformedResponseError, match="not the JSON object it documents"):
        client.update_optout_status([email("m@example.com")])


def test_opt_out_state_strings_are_read_as_the_settings_say(
    mykaarma_factory: MyKaarmaFactory, client_for: ClientFor,
) -> None:
    box = mykaarma_factory(opted_out_state="STOPPED", opted_in_state="ACTIVE")
    default = client_for(box)
    default.update_optout_status([email("s@example.com")])
    # Unknown strings: the GET form has no okToCommunicate, so the status is unknown...
    assert default.lookup_one("email", "s@example.com").opted_out is None
    # ...the list form falls back on okToCommunicate.
    listed = default.lookup_statuses([email("s@example.com"), email("t@example.com")])
    assert [s.opted_out for s in listed] == [True, False]
    configured = client_for(box, opted_out_states="STOPPED", opted_in_states=["ACTIVE"])
    assert configured.lookup_one("email", "s@example.com").opted_out is True
    assert configured.lookup_one("email", "t@example.com").opted_out is False


def test_customer_uuid_is_sent_when_the_setting_says_so(
    mykaarma_factory: MyKaarmaFactory, client_for: ClientFor,
) -> None:
    box = mykaarma_factory(require_customer_uuid=True)
    with pytest.raises(MyKaarmaRequestError, match="CUSTOMER_UUID_REQUIRED"):
        client_for(box).update_optout_status([email("c@example.com")])
    with pytest.raises(BadInputError, match="a value has none"):
        client_for(box, send_customer_uuid=True).update_optout_status([email("c@example.com")])
    client = client_for(box, send_customer_uuid=True, customer_uuid="cust-1", entries_per_request=2)
    client.update_optout_status([email("c@example.com"),
                                 Communication("email", "d@example.com", "cust-2")])
    body = box.state.submitted[-1]
    assert body["customerUUID"] == "cust-1"
    assert [e["customerUUID"] for e in body["communicationAttributesList"]] == ["cust-1",
                                                                               "cust-2"]


def test_pacing_spaces_requests(mykaarma_sandbox: MyKaarmaSandbox,
                                client_for: ClientFor) -> None:
    client = client_for(mykaarma_sandbox, requests_per_second=20)
    started = time.perf_counter()
    for n in range(5):
        client.update_optout_status([email(f"pace{n}@example.com")])
    assert time.perf_counter() - started >= 4 / 20


def test_cancel_stops_a_look_up(mykaarma_sandbox: MyKaarmaSandbox,
                                client_for: ClientFor) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        client_for(mykaarma_sandbox, lookup_batch_size=1).lookup_statuses(
            [email("a@example.com"), email("b@example.com")], cancel=cancel)


def test_bad_input_is_refused_before_sending(mykaarma_sandbox: MyKaarmaSandbox,
                                             client_for: ClientFor) -> None:
    client = client_for(mykaarma_sandbox)
    with pytest.raises(BadInputError, match="not 'push'"):
        client.update_payloads([Communication("push", "token")])
    with pytest.raises(BadInputError, match="Nothing to submit"):
        client.update_payloads([])
    with pytest.raises(BadInputError, match="empty value"):
        client.update_payloads([email("  ")])
    assert client.lookup_statuses([]) == []
    assert mykaarma_sandbox.state.request_log == []


def test_a_look_up_answer_missing_a_value_fails_the_batch() -> None:
    """A platform that leaves a value unanswered: the simulator never does, so a transport
    answers instead (nothing real can misbehave this way on demand)."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"optOutStatusList": [{
            "communication": {"communicationType": "EMAIL", "communicationValue": "a@x.com"},
            "optOutStatus": {"optOutState": "OPTED_OUT"}}], "errors": [], "warnings": []})

    settings = MyKaarmaSettings.from_mapping("http://127.0.0.1:9/communications/",
                                             {"department_uuid": "d-1"})
    with MyKaarmaClient(settings, "u", "p", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(MalformedResponseError, match="answered 1 status"):
            client.lookup_statuses([email("a@x.com"), email("b@x.com")])
        assert client.lookup_statuses([email("A@X.com")])[0].opted_out is True


def test_look_up_answers_in_another_order_are_paired_by_value() -> None:
    """A platform answering in its own order (the simulator keeps the order asked)."""
    def answer(request: httpx.Request) -> httpx.Response:
        def item(kind: str, value: str, state: str) -> dict[str, Any]:
            return {"communication": {"communicationType": kind, "communicationValue": value},
                    "optOutStatus": {"optOutState": state, "timeOfChange": 1700000000000}}
        return httpx.Response(200, json={"optOutStatusList": [
            item("TEXT", "+15550100000", "OPTED_IN"), item("email", "B@X.COM", "OPTED_OUT")],
            "errors": [], "warnings": []})

    settings = MyKaarmaSettings.from_mapping("http://127.0.0.1:9/communications/",
                                             {"department_uuid": "d-1"})
    with MyKaarmaClient(settings, "u", "p", transport=httpx.MockTransport(answer)) as client:
        statuses = client.lookup_statuses([email("b@x.com"), phone("+1 555 010 0000")])
    assert [(s.value, s.opted_out, s.time_of_change) for s in statuses] == [
        ("b@x.com", True, "1700000000000"), ("+1 555 010 0000", False, "1700000000000")]


def test_a_bad_value_in_a_look_up_fails_the_batch_with_its_code(
    mykaarma_sandbox: MyKaarmaSandbox, client_for: ClientFor,
) -> None:
    with pytest.raises(MyKaarmaRequestError) as caught:
        client_for(mykaarma_sandbox).lookup_statuses([email("fine@example.com"),
                                                      phone("32470123456")])
    assert caught.value.codes == ("INVALID_COMMUNICATION_VALUE",)
    assert "look-up of 2 values" in caught.value.message
    assert "32470123456" not in caught.value.message
