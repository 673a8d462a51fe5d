"""The shared HTTP policy: URL rules, link re-basing, RetryAfter parsing, the throttle gate."""

from __future__ import annotations

import threading
import time

import pytest

from optout_desk.connectors.errors import (
    ConfigurationError,
    NetworkError,
    PlatformError,
    PlatformTimeoutError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.http import (
    HttpPolicy,
    HttpSession,
    ThrottleGate,
    is_transient,
    parse_timespan,
    rebase,
    retry_after_body,
    retry_after_header,
    validate_base_url,
)
from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken
from tests.fixtures.sandbox import SandboxFactory


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api-eu.agileresearch.medallia.com", "https://api-eu.agileresearch.medallia.com/"),
        (" https://example.com/prefix ", "https://example.com/prefix/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://localhost:9/", "http://localhost:9/"),
        ("http://[::1]:9/", "http://[::1]:9/"),
        ("http://127.0.0.2/", "http://127.0.0.2/"),
    ],
)
def test_accepted_base_urls(given: str, expected: str) -> None:
    assert validate_base_url(given) == expected


@pytest.mark.parametrize(
    "given",
    ["http://api-eu.checkmarket.com/", "http://192.168.1.10/", "ftp://example.com/",
     "example.com", "", "https://example.com/?x=1"],
)
def test_refused_base_urls(given: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate_base_url(given)
    assert caught.value.exit_code == 2


def test_plain_http_refusal_explains_why() -> None:
    with pytest.raises(ConfigurationError, match="https://"):
        validate_base_url("http://api-eu.checkmarket.com/")


def test_rebase_keeps_same_host_links_and_moves_others() -> None:
    base = "https://api-eu.agileresearch.medallia.com/"
    same = base + "3/contacts/optouts?$top=25&$skip=25"
    assert rebase(base, same) == (same, False)
    moved, was_moved = rebase(base, "https://api-eu.checkmarket.com/3/contacts/optouts?$top=25&$skip=25")
    assert was_moved
    assert moved == "https://api-eu.agileresearch.medallia.com/3/contacts/optouts?$top=25&$skip=25"
    # An http link (downgrade) to the same host name is another origin: moved to https.
    assert rebase(base, "http://api-eu.agileresearch.medallia.com/3/x")[0].startswith("https://")
    # Relative links resolve against the base.
    assert rebase(base, "/3/contacts/optouts?$skip=50") == (
        base + "3/contacts/optouts?$skip=50", False)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:01.5000000", 1.5), ("00:00:00.1234567", 0.1234567), ("00:01:00", 60.0),
     ("1.00:00:00", 86_400.0), ("2.03:04:05.5", 2 * 86_400 + 3 * 3600 + 4 * 60 + 5.5)],
)
def test_parse_timespan(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1.5", "soon", "00:00"])
def test_parse_timespan_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


def test_retry_after_sources() -> None:
    assert retry_after_header({"retry-after": "3"}) == 3.0
    assert retry_after_header({}) is None
    assert retry_after_header({"retry-after": "nonsense"}) is None
    assert retry_after_header({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_body({"RetryAfter": "00:00:02.0000000"}) == 2.0
    assert retry_after_body({"RetryAfter": 4}) == 4.0
    assert retry_after_body({"RetryAfter": "later"}) is None
    assert retry_after_body("text") is None


def test_only_connection_errors_429_and_5xx_are_transient() -> None:
    assert is_transient(NetworkError("x"))
    assert is_transient(ThrottledError("x", 1.0))
    assert is_transient(PlatformError("x", 503, 503))
    assert not is_transient(PlatformError("x", 200, 500))  # body-level error under HTTP 200
    assert not is_transient(RejectedRequestError("x", 400, 400))
    assert not is_transient(ValueError("x"))


def test_gate_halves_in_flight_on_throttle_and_recovers() -> None:
    gate = ThrottleGate(4)
    never = CancelToken()
    for _ in range(4):
        gate.acquire(never)
    gate.release(throttled=True)
    assert gate.limit == 2
    for _ in range(3):
        gate.release()
    for _ in range(2 * 2):
        gate.acquire(never)
        gate.release()
    assert gate.limit == 3


def test_gate_pause_holds_every_request_and_cancel_wakes_it() -> None:
    gate = ThrottleGate(2)
    never = CancelToken()
    gate.pause(0.3)
    started = time.monotonic()
    gate.acquire(never)
    assert time.monotonic() - started >= 0.28
    gate.release()
    gate.pause(30)
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        gate.acquire(token)
    assert time.monotonic() - started < 2


def test_every_request_of_a_session_has_an_overall_deadline(sandbox_factory: SandboxFactory,
                                                            ) -> None:
    """Any connector's session, not only CheckMarket's: an answer dripped a byte every 0.1 s
    never trips a per-read timeout, but the whole request ends at the policy's timeout."""
    box = sandbox_factory(records=5, drip_s=0.1)
    session = HttpSession(box.base_url, {}, HttpPolicy(timeout_s=0.8, max_retries=0),
                          platform="Anything")
    try:
        started = time.monotonic()
        with pytest.raises(PlatformTimeoutError) as caught:
            session.request("GET", "3/contacts/optouts", interpret=lambda r: r.status_code)
        assert 0.75 < time.monotonic() - started < 1.5
        assert caught.value.message.startswith(
            f"Anything at 127.0.0.1:{box.port} was still sending its answer after 0.8 s")
        box.state.set_drip(0)
        # The cut connection is not reused half-read: the next request gets a whole answer.
        status, _ = session.request("GET", "3/contacts/optouts",
                                    interpret=lambda r: r.status_code)
        assert status == 401
    finally:
        session.close()


def test_the_deadline_is_installed_under_the_default_transport() -> None:
    import httpx

    from optout_desk.connectors import deadline

    assert deadline.install(httpx.HTTPTransport())
    assert not deadline.install(httpx.MockTransport(lambda request: httpx.Response(200)))
