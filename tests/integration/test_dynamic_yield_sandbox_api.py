"""The Dynamic Yield simulator itself, over real HTTP: two data centres that share nothing, key
checks, channels, the message-optout-v1 event, success bodies, rate limit with Retry-After,
faults and the count of requests in flight (sandbox/dynamic_yield.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from optout_desk.sandbox.dynamic_yield import DynamicYieldSandbox
from tests.fixtures.simulators import DynamicYieldFactory


def post(box: DynamicYieldSandbox, region: str, path: str, body: Any,
         key: str | None = None) -> httpx.Response:
    headers = {} if key == "" else {"DY-API-Key": key if key is not None else box.key_for(region)}
    with httpx.Client(base_url=box.base_url(region), headers=headers, timeout=10) as c:
        return c.post(path, json=body)


def email_optout(box: DynamicYieldSandbox, region: str, email: str, key: str | None = None,
                 channel: str = "email") -> httpx.Response:
    return post(box, region, f"userdata/channels/{channel}/opt-out",
                {"identifier": {"type": "email", "value": email}}, key)


def push_event(push_id: str) -> dict[str, Any]:
    return {"user": {"id": "john_123"}, "sessionId": "iquahngaishe2koh",
            "events": [{"name": "Push Opt-Out",
                        "properties": {"dyType": "message-optout-v1", "pushID": push_id}}]}


def test_an_email_opt_out_is_200_with_an_empty_body_and_stays_in_its_data_centre(
    dynamic_yield_sandbox: DynamicYieldSandbox,
) -> None:
    box = dynamic_yield_sandbox
    assert box.us_url.endswith("/us/v2/") and box.eu_url.endswith("/eu/v2/")
    response = email_optout(box, "eu", " Anna@Example.com ")
    assert (response.status_code, response.content) == (200, b"")
    assert box.state.opted_out_emails("eu") == {"anna@example.com"}
    assert box.state.opted_out_emails("us") == set()
    assert email_optout(box, "eu", "anna@example.com").status_code == 200  # twice is fine
    assert box.state.opt_outs("eu") == {("email", "email", "anna@example.com")}


def test_the_push_event_from_seed_003_opts_the_token_out(
    dynamic_yield_sandbox: DynamicYieldSandbox,
) -> None:
    box = dynamic_yield_sandbox
    assert post(box, "us", "collect/user/event", push_event("100")).status_code == 200
    web_mode = {"user": {"dyid": "-4350463893986789401", "dyid_server": "-4350463893986789401"},
                "session": {"dy": "ohyr6v42l9zd4bpinnvp7urjjx9lrssw"},
                "events": push_event("200")["events"]}
    assert post(box, "us", "collect/user/event", web_mode).status_code == 200
    assert post(box, "us", "userdata/channels/web-push/opt-out",
                {"identifier": {"type": "pushID", "value": "300"},
                 "associatedDevice": {"dyid": ""}}).status_code == 200
    assert box.state.opted_out_push_ids("us") == {"100", "200", "300"}
    assert box.state.opted_out_push_ids("eu") == set()
    assert box.state.events("us")[0]["properties"]["pushID"] == "100"


@pytest.mark.parametrize(("body", "needle"), [
    ({"sessionId": "s", "events": []}, "user"),
    ({"user": {"id": "u"}, "events": []}, "sessionId"),
    ({"user": {"id": "u"}, "sessionId": "s", "events": {}}, "events must be a list"),
    ({"user": {"id": "u"}, "sessionId": "s", "events": [{"name": "x"}]}, "dyType"),
    ({"user": {"id": "u"}, "sessionId": "s",
      "events": [{"properties": {"dyType": "message-optout-v1"}}]}, "pushID"),
])
def test_bad_event_bodies_are_400_with_a_message(dynamic_yield_sandbox: DynamicYieldSandbox,
                                                 body: dict[str, Any], needle: str) -> None:
    response = post(dynamic_yield_sandbox, "us", "collect/user/event", body)
    assert response.status_code == 400
    assert needle in response.json()["message"]


def test_keys_missing_wrong_other_data_centre_and_client_side(
    dynamic_yield_sandbox: DynamicYieldSandbox,
) -> None:
    box = dynamic_yield_sandbox
    missing = email_optout(box, "us", "a@example.com", key="")
    assert missing.status_code == 401 and "Missing DY-API-Key" in missing.json()["message"]
    assert email_optout(box, "us", "a@example.com", key="nonsense").status_code == 401
    eu_on_us = email_optout(box, "us", "a@example.com", key=box.eu_key)
    assert eu_on_us.status_code == 401
    assert "not valid for this data center" in eu_on_us.json()["message"]
    client_side = email_optout(box, "us", "a@example.com", key=box.client_key)
    assert client_side.status_code == 403 and "server-side" in client_side.json()["message"]
    assert box.state.opt_outs("us") == set() and box.state.opt_outs("eu") == set()
    assert box.state.request_log[-1].key == box.client_key


def test_unknown_key_status_is_a_switch(dynamic_yield_factory: DynamicYieldFactory) -> None:
    box = dynamic_yield_factory(unknown_key_status=403)
    assert email_optout(box, "eu", "a@example.com", key=box.us_key).status_code == 403


def test_unknown_channels_are_refused_until_added(
    dynamic_yield_sandbox: DynamicYieldSandbox,
) -> None:
    box = dynamic_yield_sandbox
    refused = email_optout(box, "us", "a@example.com", channel="sms")
    assert refused.status_code == 400
    assert "Unknown channel 'sms'" in refused.json()["message"]
    box.state.add_channel("sms")
    assert email_optout(box, "us", "a@example.com", channel="sms").status_code == 200
    assert box.state.opted_out_emails("us", channel="sms") == {"a@example.com"}


@pytest.mark.parametrize(("identifier", "needle"), [
    ({"type": "email", "value": "not-an-email"}, "'not-an-email' is not a valid email"),
    ({"type": "phone", "value": "+15550000000"}, "identifier.type"),
    ({"type": "email", "value": " "}, "non-empty"),
])
def test_bad_identifiers_are_400(dynamic_yield_sandbox: DynamicYieldSandbox,
                                 identifier: dict[str, str], needle: str) -> None:
    response = post(dynamic_yield_sandbox, "us", "userdata/channels/email/opt-out",
                    {"identifier": identifier})
    assert response.status_code == 400 and needle in response.json()["message"]


@pytest.mark.parametrize(("mode", "status", "content"), [
    ("no-content", 204, b""), ("json", 200, b'{"status":"ok"}')])
def test_success_body_switch(dynamic_yield_factory: DynamicYieldFactory, mode: str,
                             status: int, content: bytes) -> None:
    box = dynamic_yield_factory(success_body=mode)
    response = email_optout(box, "us", "a@example.com")
    assert (response.status_code, response.content) == (status, content)


def test_associated_device_and_empty_batch_switches(
    dynamic_yield_factory: DynamicYieldFactory,
) -> None:
    box = dynamic_yield_factory(require_associated_device=True, empty_batch_status=400,
                                max_events_per_request=1)
    assert "associatedDevice" in email_optout(box, "us", "a@example.com").json()["message"]
    empty = post(box, "us", "collect/user/event", {"user": {"id": "u"}, "sessionId": "s",
                                                   "events": []})
    assert empty.status_code == 400
    two = push_event("1")
    two["events"] = two["events"] * 2
    assert post(box, "us", "collect/user/event", two).status_code == 400


def test_rate_limit_per_key_answers_429_with_retry_after(
    dynamic_yield_factory: DynamicYieldFactory,
) -> None:
    box = dynamic_yield_factory(rate_limit=2, rate_window_s=30)
    statuses = [email_optout(box, "us", f"r{i}@example.com").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    throttled = email_optout(box, "us", "r9@example.com")
    assert 1 <= int(throttled.headers["retry-after"]) <= 30
    # per key: the EU key has its own window
    assert email_optout(box, "eu", "r1@example.com").status_code == 200


def test_faults_and_unknown_routes(dynamic_yield_sandbox: DynamicYieldSandbox) -> None:
    box = dynamic_yield_sandbox
    box.state.inject_faults("500", 1, path_prefix="eu/")
    assert email_optout(box, "us", "a@example.com").status_code == 200
    assert email_optout(box, "eu", "a@example.com").status_code == 500
    box.state.inject_faults("429", 1, retry_after_s=3)
    assert email_optout(box, "us", "a@example.com").headers["retry-after"] == "3"
    box.state.inject_faults("drop", 1)
    with pytest.raises(httpx.RemoteProtocolError):
        email_optout(box, "us", "a@example.com")
    assert post(box, "us", "userdata/other", {}).status_code == 404
    with httpx.Client(base_url=box.us_url, headers={"DY-API-Key": box.us_key}) as c:
        assert c.get("collect/user/event").status_code == 405
        assert c.post("collect/user/event", content=b"{nope").status_code == 400


def test_max_in_flight_counts_overlapping_requests(dynamic_yield_factory: DynamicYieldFactory,
                                                   ) -> None:
    box = dynamic_yield_factory(latency_ms=150)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda i: email_optout(box, "us", f"c{i}@example.com"
                                                        ).status_code, range(4)))
    assert statuses == [200] * 4
    assert box.state.max_in_flight == 4
    box.state.reset_in_flight()
    started = time.perf_counter()
    email_optout(box, "us", "one@example.com")
    assert time.perf_counter() - started >= 0.15
    assert box.state.max_in_flight == 1
