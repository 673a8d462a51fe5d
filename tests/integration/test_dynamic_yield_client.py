"""The Dynamic Yield client against the simulator over real HTTP on 127.0.0.1: email and push
opt-outs in the right data centre with the documented bodies, key errors with their messages,
channels, retries, Retry-After, concurrency and pacing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from optout_desk.connectors.dynamic_yield import (
    EVENT_PATH,
    KEY_KIND,
    REGIONS,
    DynamicYieldClient,
    DynamicYieldSettings,
    Sent,
)
from optout_desk.connectors.errors import (
    AuthenticationError,
    MissingRoleError,
    PlatformError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.progress import CancelToken
from optout_desk.sandbox.dynamic_yield import DynamicYieldSandbox
from tests.fixtures.simulators import DynamicYieldFactory, fast_retries

ClientFor = Callable[..., DynamicYieldClient]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    opened: list[DynamicYieldClient] = []

    def make(box: DynamicYieldSandbox, region: str = "us", key: str | None = None,
             **settings: Any) -> DynamicYieldClient:
        values = {"timeout_s": 5, "max_retries": 3, **settings}
        client = DynamicYieldClient(
            DynamicYieldSettings.from_mapping(box.base_url(region), values),
            key if key is not None else box.key_for(region))
        fast_retries(client)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def test_regions_are_the_documented_hosts() -> None:
    assert REGIONS == {"us": "https://dy-api.com/v2/", "eu": "https://dy-api.eu/v2/"}
    assert DynamicYieldSettings().base_url == REGIONS["us"]


def test_check_proves_the_key(dynamic_yield_sandbox: DynamicYieldSandbox,
                              client_for: ClientFor) -> None:
    outcome = client_for(dynamic_yield_sandbox, "eu").check()
    assert outcome.proven and "accepted the API key" in outcome.message
    assert dynamic_yield_sandbox.state.events("eu") == []  # no data was sent


def test_a_check_the_platform_cannot_answer_is_not_proven_rather_than_failed(
    dynamic_yield_factory: DynamicYieldFactory, client_for: ClientFor,
) -> None:
    box = dynamic_yield_factory(empty_batch_status=400)
    outcome = client_for(box).check()
    assert not outcome.proven
    assert "answered HTTP 400 to the connection check" in outcome.message
    assert "the first submission shows whether it is accepted" in outcome.message


def test_email_opt_outs_go_to_their_data_centre_with_the_documented_body(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    box = dynamic_yield_sandbox
    us, eu = client_for(box, "us"), client_for(box, "eu")
    assert us.opt_out_email("Ann@Example.com") == Sent(200, 1)
    assert eu.opt_out("email", "email", " bob@example.com ") == Sent(200, 1)
    assert box.state.opted_out_emails("us") == {"ann@example.com"}
    assert box.state.opted_out_emails("eu") == {"bob@example.com"}
    assert eu.opt_out_body("email", "bob@example.com") == {
        "identifier": {"type": "email", "value": "bob@example.com"}}
    device = client_for(box, send_associated_device=True)
    assert device.opt_out_body("email", "c@example.com")["associatedDevice"] == {"dyid": ""}


def test_push_opt_outs_use_the_message_optout_event_with_a_stable_body(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    box = dynamic_yield_sandbox
    client = client_for(box, "eu")
    assert client.push_optout(" fcm-token-1 ").http_status == 200
    assert client.opt_out("web-push", "pushID", "fcm-token-2").http_status == 200
    assert box.state.opted_out_push_ids("eu") == {"fcm-token-1", "fcm-token-2"}
    body = client.push_event_body("fcm-token-1")
    assert body == client.push_event_body("fcm-token-1")  # resending is the same request
    assert body["events"] == [{"name": "Push Opt-Out",
                               "properties": {"dyType": "message-optout-v1",
                                              "pushID": "fcm-token-1"}}]
    assert body["user"]["id"].startswith("optout-desk-") and body["sessionId"]
    assert "fcm-token-1" not in body["user"]["id"]
    assert client.push_event_body("fcm-token-3")["user"] != body["user"]
    assert box.state.requests_to("eu/v2/" + EVENT_PATH)


def test_a_204_or_json_success_is_success_too(dynamic_yield_factory: DynamicYieldFactory,
                                              client_for: ClientFor) -> None:
    assert client_for(dynamic_yield_factory(success_body="no-content")).opt_out_email(
        "a@example.com").http_status == 204
    assert client_for(dynamic_yield_factory(success_body="json")).push_optout(
        "t").http_status == 200


def test_a_wrong_key_says_what_key_is_needed_and_never_shows_it(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    client = client_for(dynamic_yield_sandbox, key="made-up-key-123")
    with pytest.raises(AuthenticationError) as caught:
        client.opt_out_email("a@example.com")
    message = caught.value.message
    assert "refused the API key (HTTP 401) (The API key is not valid for this data center.)" \
        in message
    assert "US keys work only on dy-api.com, EU keys only on dy-api.eu" in message
    assert "made-up-key-123" not in message and "made-up-key-123" not in repr(client)
    assert "a@example.com" not in message
    assert len(dynamic_yield_sandbox.state.request_log) == 1  # not retried


def test_an_eu_key_on_us_is_refused(dynamic_yield_sandbox: DynamicYieldSandbox,
                                    client_for: ClientFor) -> None:
    box = dynamic_yield_sandbox
    with pytest.raises(AuthenticationError, match="of this data centre"):
        client_for(box, "us", key=box.eu_key).check()
    assert box.state.opt_outs("us") == set() and box.state.opt_outs("eu") == set()


def test_a_key_refused_with_403_names_the_kinds_of_key(dynamic_yield_factory: DynamicYieldFactory,
                                                       client_for: ClientFor) -> None:
    box = dynamic_yield_factory(unknown_key_status=403)
    with pytest.raises(MissingRoleError) as caught:
        client_for(box, "eu", key=box.us_key).opt_out_email("a@example.com")
    assert caught.value.role == KEY_KIND
    assert "it must be a server-side key" in caught.value.message


def test_a_client_side_key_is_refused(dynamic_yield_sandbox: DynamicYieldSandbox,
                                      client_for: ClientFor) -> None:
    box = dynamic_yield_sandbox
    with pytest.raises(MissingRoleError, match=r"HTTP 403\) \(Client-side API keys cannot be "
                       r"used with this host; use a server-side API key.\)"):
        client_for(box, key=box.client_key).push_optout("t")


def test_an_unconfigured_channel_is_refused_before_sending(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    client = client_for(dynamic_yield_sandbox)
    with pytest.raises(BadInputError, match=r"channel 'sms' is not configured on this "
                       r"connection \(configured: email, web-push\)"):
        client.opt_out("sms", "email", "a@example.com")
    assert dynamic_yield_sandbox.state.request_log == []


def test_a_configured_channel_the_platform_does_not_know_shows_its_refusal(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    client = client_for(dynamic_yield_sandbox, extra_channels="sms, app-push")
    assert client.settings.channels == ("email", "web-push", "sms", "app-push")
    with pytest.raises(RejectedRequestError) as caught:
        client.opt_out("sms", "email", "a@example.com")
    assert caught.value.message == (
        f"Dynamic Yield ({client.host}) refused the opt-out on channel 'sms' (HTTP 400) "
        "(Unknown channel 'sms'; known: email, web-push.).")
    dynamic_yield_sandbox.state.add_channel("sms")
    assert client.opt_out("sms", "email", "a@example.com").http_status == 200


def test_a_refusal_shows_the_platform_reason_scrubbed_of_the_value_sent(
    dynamic_yield_sandbox: DynamicYieldSandbox, client_for: ClientFor,
) -> None:
    client = client_for(dynamic_yield_sandbox)
    with pytest.raises(RejectedRequestError, match=r"identifier\.type 'phone' is not one of"):
        client.opt_out("email", "phone", "+15550001111")
    with pytest.raises(RejectedRequestError) as caught:
        client.opt_out_email("Broken-Address")
    assert "(identifier.value '[value]' is not a valid email address.)" in caught.value.message
    assert "Broken-Address" not in caught.value.message


def test_429_retry_after_is_honoured(dynamic_yield_sandbox: DynamicYieldSandbox,
                                     client_for: ClientFor) -> None:
    dynamic_yield_sandbox.state.inject_faults("429", 1, retry_after_s=0.4)
    started = time.perf_counter()
    assert client_for(dynamic_yield_sandbox).opt_out_email("a@example.com").attempts == 2
    assert time.perf_counter() - started >= 0.4


def test_a_rate_limit_beyond_the_longest_wait_goes_to_the_caller(
    dynamic_yield_factory: DynamicYieldFactory, client_for: ClientFor,
) -> None:
    box = dynamic_yield_factory(rate_limit=1, rate_window_s=60)
    client = client_for(box, max_retry_wait_s=5)
    client.opt_out_email("a@example.com")
    with pytest.raises(ThrottledError, match="rate-limiting requests for this key; try again "
                       "after") as caught:
        client.opt_out_email("b@example.com")
    assert caught.value.retry_after is not None and caught.value.retry_after > 5


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_server_errors_and_drops_are_retried(dynamic_yield_sandbox: DynamicYieldSandbox,
                                             client_for: ClientFor, kind: str) -> None:
    dynamic_yield_sandbox.state.inject_faults(kind, 2)
    assert client_for(dynamic_yield_sandbox).push_optout("t").attempts == 3
    assert dynamic_yield_sandbox.state.opted_out_push_ids("us") == {"t"}


def test_retries_run_out_with_a_clear_error(dynamic_yield_sandbox: DynamicYieldSandbox,
                                            client_for: ClientFor) -> None:
    dynamic_yield_sandbox.state.inject_faults("503", 2)
    with pytest.raises(PlatformError, match="answered HTTP 503 to the opt-out on channel "
                       "'email'"):
        client_for(dynamic_yield_sandbox, max_retries=1).opt_out_email("a@example.com")


def test_concurrent_opt_outs_overlap_up_to_the_concurrency(
    dynamic_yield_factory: DynamicYieldFactory, client_for: ClientFor,
) -> None:
    box = dynamic_yield_factory(latency_ms=100)
    client = client_for(box, concurrency=4)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client.opt_out_email,
                                (f"c{i}@example.com" for i in range(8))))
    assert all(r.http_status == 200 for r in results)
    assert box.state.max_in_flight == 4  # the session's limit, not the 8 threads
    assert len(box.state.opted_out_emails("us")) == 8


def test_pacing_and_cancel(dynamic_yield_sandbox: DynamicYieldSandbox,
                           client_for: ClientFor) -> None:
    client = client_for(dynamic_yield_sandbox, requests_per_second=10)
    started = time.perf_counter()
    for n in range(3):
        client.opt_out_email(f"p{n}@example.com")
    assert time.perf_counter() - started >= 0.2
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        client.opt_out_email("late@example.com", cancel)


def test_bad_input_is_refused_before_sending(dynamic_yield_sandbox: DynamicYieldSandbox,
                                             client_for: ClientFor) -> None:
    client = client_for(dynamic_yield_sandbox)
    with pytest.raises(BadInputError, match="empty value"):
        client.opt_out_email(" ")
    with pytest.raises(BadInputError, match="empty push token"):
        client.push_optout("")
    with pytest.raises(BadInputError, match="not an identifier type"):
        client.opt_out("email", "e mail", "a@example.com")
    assert dynamic_yield_sandbox.state.request_log == []
