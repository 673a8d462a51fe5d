"""The CheckMarket connector against the sandbox over real HTTP on 127.0.0.1: paging,
filters, fallbacks, retries, throttling, typed errors, cancel and submit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from optout_desk.connectors.checkmarket import (
    CheckMarketClient,
    CheckMarketSettings,
    SubmitResponse,
)
from optout_desk.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    IncompleteFetchError,
    MalformedResponseError,
    MissingRoleError,
    NetworkError,
    PlatformError,
    PlatformTimeoutError,
    RejectedRequestError,
    ThrottledError,
)
from optout_desk.connectors.registry import SYSTEMS, base_url_for, open_client
from optout_desk.core.errors import BadInputError, Cancelled
from optout_desk.core.identifiers import normalise_phone
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.core.records import OptOutRecord, canonical_timestamp
from optout_desk.sandbox.server import Sandbox
from tests.fixtures.sandbox import SandboxFactory

OPTOUTS = "3/contacts/optouts"
ClientFor = Callable[..., CheckMarketClient]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    """Clients with fast retry settings, closed at teardown."""
    opened: list[CheckMarketClient] = []

    def make(box: Sandbox, master_key: str | None = None, key: str | None = None,
             **settings: Any) -> CheckMarketClient:
        values = {"timeout_s": 5, "max_retries": 3, **settings}
        client = CheckMarketClient(
            CheckMarketSettings.from_mapping(box.base_url, values),
            master_key if master_key is not None else box.master_key,
            key if key is not None else box.key,
        )
        # Keep backoff short in tests; the policy's defaults are for real platforms.
        client._session.policy = type(client._session.policy)(
            **{**client._session.policy.__dict__, "backoff_initial_s": 0.01,
               "backoff_max_s": 0.05})
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def expected(box: Sandbox, survey_id: int | None = None) -> list[tuple[Any, ...]]:
    """The platform's records as the client gives them: a national phone in international
    form when the contact's CountryId names its country."""
    return [(canonical_timestamp(r["DateOptOut"]), r["Email"] or "", international(r),
             r["FirstName"], r["LastName"], r["LangCode"], r["ContactId"], survey_id)
            for r in box.state.optouts(survey_id)]


def international(record: dict[str, Any]) -> str:
    phone, country = record["Phone"] or "", record.get("CountryId")
    if phone and not phone.startswith("+") and isinstance(country, str):
        return normalise_phone(phone, country).key or phone
    return phone


def rows(records: list[OptOutRecord]) -> list[tuple[Any, ...]]:
    return [r.as_row()[:8] for r in records]


def test_fetches_everything_with_content_equal_to_the_platform(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=2600, seed=3)
    reports: list[Progress] = []
    records = client_for(box, page_size=500, concurrency=3).list_optouts(progress=reports.append)
    assert rows(records) == expected(box)
    assert all(r.source.startswith("CheckMarket") for r in records)
    assert reports[-1] == Progress(done=6, total=6, unit="pages", records=2600)
    assert [p.done for p in reports] == list(range(1, 7))
    gets = box.state.requests_to(OPTOUTS)
    assert len(gets) == 6 and all("%24top=500" in e.query or "$top=500" in e.query for e in gets)


def test_small_list_with_check(sandbox: Sandbox, client_for: ClientFor) -> None:
    client = client_for(sandbox)
    assert client.check().total_optouts == 250
    assert rows(client.list_optouts()) == expected(sandbox)
    assert "sbx-" not in repr(client) and sandbox.key not in repr(client)


def test_survey_scoped_list(sandbox: Sandbox, client_for: ClientFor) -> None:
    survey = sandbox.state.survey_ids[1]
    records = client_for(sandbox, page_size=25).list_optouts(survey_id=survey)
    assert rows(records) == expected(sandbox, survey)
    assert 0 < len(records) < 250 and {r.survey_id for r in records} == {survey}


def test_since_filter_is_sent_and_applied(sandbox: Sandbox, client_for: ClientFor) -> None:
    since = canonical_timestamp(sandbox.state.optouts()[200]["DateOptOut"])
    records = client_for(sandbox).list_optouts(since=since)
    assert [r.date_opt_out for r in records] == [
        d for d, *_ in expected(sandbox) if d[:19] >= since[:19]]
    query = sandbox.state.requests_to(OPTOUTS)[-1].query
    assert "filter=DateOptOut" in query and "ge" in query


def test_bad_since_is_bad_input(sandbox: Sandbox, client_for: ClientFor) -> None:
    with pytest.raises(BadInputError):
        client_for(sandbox).list_optouts(since="last tuesday")


def test_page_size_falls_back_when_refused(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=450, max_page_size=100)
    client = client_for(box, page_size=1000)
    assert rows(client.list_optouts()) == expected(box)
    tops = [e.query.split("top=")[1].split("&")[0] for e in box.state.requests_to(OPTOUTS)]
    assert tops[:3] == ["1000", "500", "100"] and set(tops[2:]) == {"100"}
    assert [e.status for e in box.state.requests_to(OPTOUTS)][:3] == [400, 400, 200]
    # The accepted size is remembered: the next fetch does not probe again.
    before = len(box.state.request_log)
    client.list_optouts()
    assert len(box.state.request_log) - before == 5


def test_next_link_on_another_host_is_rebased(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=120, next_link_base="http://localhost:{port}/")
    # concurrency 1 with no total would follow links; force link-following by a tiny page.
    client = client_for(box, page_size=25, concurrency=1)
    client._first_page = _without_total(client._first_page)  # type: ignore[method-assign]
    assert rows(client.list_optouts()) == expected(box)
    hosts = {e.host for e in box.state.request_log}
    assert hosts == {f"127.0.0.1:{box.port}"}  # never the alias "localhost"
    assert len(box.state.request_log) == 5


def _without_total(first_page: Callable[..., Any]) -> Callable[..., Any]:
    """Make the first page look like a platform that sends no TotalRowCount."""

    def wrapped(*args: Any) -> Any:
        page, size = first_page(*args)
        page.total = None
        return page, size

    return wrapped


def test_throttling_waits_for_the_body_retry_after(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("429", 1, OPTOUTS, retry_after_s=0.4)
    assert client_for(sandbox).check().total_optouts == 250
    log = sandbox.state.requests_to(OPTOUTS)
    assert [e.status for e in log] == [429, 200]
    assert 0.38 <= log[1].at - log[0].at < 1.5  # not the generic backoff (seconds)


def test_throttling_slows_all_page_workers(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=1000, throttle_per_minute=6, throttle_window_s=0.5)
    records = client_for(box, page_size=100, concurrency=4, max_retries=8).list_optouts()
    assert len(records) == 1000
    statuses = [e.status for e in box.state.requests_to(OPTOUTS)]
    assert 429 in statuses and statuses.count(200) == 10


def test_throttled_beyond_retries_is_a_typed_error(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("429", 10, OPTOUTS, retry_after_s=0.05)
    with pytest.raises(ThrottledError) as caught:
        client_for(sandbox, max_retries=2).check()
    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(sandbox.state.requests_to(OPTOUTS)) == 3


def test_a_retry_after_longer_than_allowed_is_not_slept(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("429", 1, OPTOUTS, retry_after_s=120)
    started = time.monotonic()
    with pytest.raises(ThrottledError) as caught:
        client_for(sandbox, max_retry_wait_s=5).check()
    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 120
    assert "120 s" in caught.value.message


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_transient_failures_are_retried(sandbox: Sandbox, client_for: ClientFor,
                                        kind: str) -> None:
    sandbox.state.inject_faults(kind, 2, OPTOUTS)
    assert rows(client_for(sandbox, page_size=100).list_optouts()) == expected(sandbox)
    assert len(sandbox.state.requests_to(OPTOUTS)) == 3 + 2


@pytest.mark.parametrize(("kind", "error"), [("500", PlatformError), ("drop", NetworkError)])
def test_retries_are_capped(sandbox: Sandbox, client_for: ClientFor, kind: str,
                            error: type[Exception]) -> None:
    sandbox.state.inject_faults(kind, 50, OPTOUTS)
    with pytest.raises(error) as caught:
        client_for(sandbox, max_retries=2).list_optouts()
    assert len(sandbox.state.requests_to(OPTOUTS)) == 3
    assert "127.0.0.1" in str(caught.value)


def test_wrong_keys_name_the_problem_and_never_the_keys(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        client_for(sandbox, master_key="secret-master-123", key="secret-key-456").check()
    message = caught.value.message
    assert "refused the keys" in message and "master key" in message
    assert f"127.0.0.1:{sandbox.port}" in message
    assert "secret-master-123" not in str(caught.value) and "secret-key-456" not in message
    assert "secret" not in repr(caught.value)
    assert len(sandbox.state.requests_to(OPTOUTS)) == 1  # 401 is not retried


def test_missing_roles_name_the_role(sandbox: Sandbox, client_for: ClientFor) -> None:
    sandbox.state.add_key("m-reader", "k-reader", {"contacts:read"})
    sandbox.state.add_key("m-writer", "k-writer", {"contacts:write"})
    with pytest.raises(MissingRoleError) as read:
        client_for(sandbox, "m-writer", "k-writer").list_optouts()
    assert read.value.role == "Contacts (read)" and "Contacts (read)" in read.value.message
    with pytest.raises(MissingRoleError) as write:
        client_for(sandbox, "m-reader", "k-reader").submit_optouts(["a@example.com"], [])
    assert write.value.role == "Contacts (write)"
    for exc in (read.value, write.value):
        assert "k-reader" not in exc.message and "k-writer" not in exc.message


def test_malformed_json_under_200_is_a_malformed_response(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("malformed", 1, OPTOUTS)
    with pytest.raises(MalformedResponseError, match="not its JSON envelope"):
        client_for(sandbox).list_optouts()
    assert len(sandbox.state.requests_to(OPTOUTS)) == 1


def test_body_status_error_under_200_is_a_platform_error(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("body-status", 1, OPTOUTS)
    with pytest.raises(PlatformError) as caught:
        client_for(sandbox).check()
    assert (caught.value.http_status, caught.value.body_status) == (200, 500)
    assert "An unexpected error occurred" in caught.value.message


def test_unknown_survey_is_a_rejected_request(sandbox: Sandbox, client_for: ClientFor) -> None:
    with pytest.raises(RejectedRequestError) as caught:
        client_for(sandbox).list_optouts(survey_id=1)
    assert caught.value.http_status == 404 and "Survey 1" in caught.value.message


def test_cancel_mid_fetch_raises_cancelled(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=3000, latency_ms=30)
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.done >= 2:
            token.cancel()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        client_for(box, page_size=100, concurrency=2).list_optouts(
            progress=progress, cancel=token)
    assert time.monotonic() - started < 1.5
    time.sleep(0.1)  # pages already in flight may finish; nothing more is asked for
    assert len(box.state.requests_to(OPTOUTS)) < 10


def test_cancel_while_waiting_to_retry(sandbox: Sandbox, client_for: ClientFor) -> None:
    sandbox.state.inject_faults("429", 1, OPTOUTS, retry_after_s=30)
    token = CancelToken()
    import threading

    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client_for(sandbox, max_retry_wait_s=60).list_optouts(cancel=token)
    assert time.monotonic() - started < 2


def test_submit_sends_one_post_and_is_idempotent(sandbox: Sandbox, client_for: ClientFor) -> None:
    client = client_for(sandbox)
    emails, phones = ["new.one@example.com", "New.Two@Example.com"], ["+32 470 99 88 77"]
    first = client.submit_optouts(emails, phones)
    assert first == SubmitResponse(200, 200, first.message, 1)
    assert "2 email addresses and 1 phone number" in first.message
    again = client.submit_optouts(emails, phones)
    assert again.http_status == 200
    assert sandbox.state.submitted == [
        {"EmailAddresses": emails, "PhoneNumbers": phones}] * 2
    assert len(sandbox.state.optouts()) == 253
    fetched = client.list_optouts(since=canonical_timestamp(sandbox.state.optouts()[-3][
        "DateOptOut"]))
    assert {r.email for r in fetched} >= {"new.one@example.com", "New.Two@Example.com"}


def test_submit_retries_transient_failures_and_counts_attempts(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("503", 1, OPTOUTS)
    result = client_for(sandbox).submit_optouts(["x@example.com"], [])
    assert result.attempts == 2 and result.http_status == 200
    assert len(sandbox.state.submitted) == 1


def test_submit_does_not_rely_on_the_response_body(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    sandbox.state.inject_faults("malformed", 1, OPTOUTS)
    result = client_for(sandbox).submit_optouts(["y@example.com"], [])
    assert result.http_status == 200 and result.body_status is None
    assert "re-fetch" in result.message


def test_submit_nothing_is_refused_without_a_request(
    sandbox: Sandbox, client_for: ClientFor
) -> None:
    with pytest.raises(BadInputError):
        client_for(sandbox).submit_optouts([], [])
    assert sandbox.state.request_log == []


def test_unreachable_platform_is_a_network_error(client_for: ClientFor) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Sandbox()
    box.base_url = f"http://127.0.0.1:{port}/"
    with pytest.raises(NetworkError, match="Could not reach CheckMarket"):
        client_for(box, max_retries=1).check()


def test_settings_and_registry() -> None:
    info = SYSTEMS["checkmarket"]
    assert info.secret_fields == ("MASTER_KEY", "KEY")
    assert info.secret_labels == ("Master key", "Key") and "custom" in info.regions
    assert base_url_for("checkmarket", "eu", None) == "https://api-eu.agileresearch.medallia.com/"
    assert base_url_for("checkmarket", "custom", "http://localhost:8000") == "http://localhost:8000/"
    with pytest.raises(ConfigurationError):
        base_url_for("checkmarket", "custom", "http://example.com/")
    with pytest.raises(ConfigurationError):
        base_url_for("checkmarket", "mars", None)
    with pytest.raises(ConfigurationError):
        CheckMarketSettings.from_mapping("https://x/", {"page_size": "lots"})
    with pytest.raises(ConfigurationError):
        CheckMarketSettings.from_mapping("https://x/", {"concurrency": 0})
    assert CheckMarketSettings.from_mapping("https://x/", {"page_size": "100", "other": 1}
                                            ).page_size == 100
    with pytest.raises(ConfigurationError, match="Master key"):
        open_client("checkmarket", "https://x/", {"KEY": "k"}, {})


def test_open_client_works_against_the_sandbox(sandbox: Sandbox) -> None:
    with open_client("checkmarket", sandbox.base_url,
                     {"MASTER_KEY": sandbox.master_key, "KEY": sandbox.key}, {}) as client:
        assert client.check().total_optouts == 250


PAGE_ITEM = {
    "DateOptOut": "2026-05-01T10:00:00.12Z", "Email": "a@example.com", "Phone": None,
    "FirstName": "Ann", "LastName": None, "LangCode": "nl", "ContactId": 7, "OptoutSourceId": 1,
}


@pytest.mark.parametrize("odd", [
    {}, {"Email": 5}, {"ContactId": "7"}, {"OptoutSourceId": 99}, {"OptoutSourceId": None},
    {"DateOptOut": "2026-05-01T10:00:00Z"}, {"DateOptOut": "2026-05-01T10:00:00.1234567Z"},
    {"DateOptOut": "2026-05-01 10:00:00"}, {"LangCode": None},
])
def test_a_page_builds_the_same_records_as_one_by_one(odd: dict[str, Any]) -> None:
    """The page-wise record builder (the fetch's hot loop) against the per-record one, on a
    page with one odd item: a type, a date form, an unseen source, or a field missing."""
    client = CheckMarketClient(CheckMarketSettings(base_url="https://api.example.com/"),
                               "m", "k")
    items: list[Any] = [dict(PAGE_ITEM, ContactId=n) for n in range(5)]
    items.insert(2, {**PAGE_ITEM, **odd})
    missing = dict(PAGE_ITEM)
    del missing["Phone"]
    for page in (items, [*items, missing]):
        expected = [client._record(item, 3) for item in page]
        assert client._records(page, 3) == expected  # first page: sources not known yet
        assert client._records(page, 3) == expected  # later pages: the fast path


# -- a fetch is complete or a clear failure (issue 9) -----------------------------------------


def skips(box: Sandbox) -> list[int]:
    return [int(e.query.split("skip=")[1].split("&")[0]) for e in box.state.requests_to(OPTOUTS)]


@pytest.mark.parametrize("limit_lies", [False, True], ids=["limit-tells-the-cap", "limit-lies"])
def test_a_silent_page_cap_is_paged_by_the_rows_really_served(
    sandbox_factory: SandboxFactory, client_for: ClientFor, limit_lies: bool
) -> None:
    """The issue's case: $top=1000 asked, 500 served; today's client got 1,537 of 2,537."""
    box = sandbox_factory(records=2537, seed=5, page_cap=500, limit_echoes_top=limit_lies)
    records = client_for(box, page_size=1000).list_optouts()
    assert len(records) == 2537 and rows(records) == expected(box)
    # Pages of 500 from the second one on (a probe page when Meta.Limit claims 1000).
    assert sorted(skips(box)) == [0, 500, 1000, 1500, 2000, 2500]


def test_one_short_page_is_asked_again_for_the_rest(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    """The issue's other case: one page of 100 instead of 1000; today 1,637 of 2,537."""
    box = sandbox_factory(records=2537, seed=5, short_page_at=1000, short_page_rows=100)
    records = client_for(box, page_size=1000).list_optouts()
    assert len(records) == 2537 and rows(records) == expected(box)
    assert sorted(skips(box)) == [0, 1000, 1100, 2000]


def test_a_short_first_page_does_not_shrink_the_paging(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=450, seed=5, short_page_at=0, short_page_rows=7)
    records = client_for(box, page_size=100).list_optouts()
    assert rows(records) == expected(box)
    # Meta.Limit (100) is believed once a probe page proves the first one short.
    assert sorted(skips(box)) == [0, 7, 107, 207, 307, 407]


def test_opt_outs_arriving_during_the_fetch_are_fetched_too(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=2600, seed=5, arrivals=30, arrivals_per_request=2)
    records = client_for(box, page_size=100, concurrency=4).list_optouts()
    assert len(box.state.optouts()) == 2630
    assert rows(records) == expected(box)


def test_counts_that_cannot_agree_fail_with_both_numbers(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    """A page the platform never serves (empty at its $skip, and its Links.Next skipping it)."""
    box = sandbox_factory(records=2537, seed=5, short_page_at=1000, short_page_rows=0)
    with pytest.raises(IncompleteFetchError) as caught:
        client_for(box, page_size=1000).list_optouts()
    assert (caught.value.expected, caught.value.got) == (2537, 1537)
    assert caught.value.message.startswith(
        "CheckMarket said it holds 2,537 opt-outs but the fetch got 1,537; nothing from this "
        "fetch was kept. Fetch again later;")
    queries = [e.query for e in box.state.requests_to(OPTOUTS)]
    assert any("top=1&" in q for q in queries)  # the count was asked again before failing


def test_a_dripping_server_cannot_hold_a_request_past_the_timeout(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    box = sandbox_factory(records=50, drip_s=0.2)
    started = time.monotonic()
    with pytest.raises(PlatformTimeoutError) as caught:
        client_for(box, timeout_s=1, max_retries=0).check()
    assert time.monotonic() - started < 2.0
    assert caught.value.message == (
        f"CheckMarket at 127.0.0.1:{box.port} was still sending its answer after 1 s, the "
        "longest a request may take; try again later or raise the timeout in the connection "
        "settings.")


def test_cancel_answers_within_half_a_second_mid_drip(
    sandbox_factory: SandboxFactory, client_for: ClientFor
) -> None:
    import threading

    box = sandbox_factory(records=3000, drip_s=0.5)
    token = CancelToken()
    threading.Timer(0.6, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client_for(box, timeout_s=60, page_size=100).list_optouts(cancel=token)
    assert time.monotonic() - started < 0.6 + 0.5


# -- identity: two people are never one record (issue 9) ---------------------------------------


@pytest.mark.parametrize("mode", ["contact-zero", "contact-none", "contact-huge"])
def test_posted_opt_outs_without_contact_ids_stay_apart(
    sandbox_factory: SandboxFactory, client_for: ClientFor, mode: str
) -> None:
    """100 people POSTed in one batch, listed with ContactId 0 (or none) and one timestamp:
    today's client collapsed them into one."""
    box = sandbox_factory(records=10, seed=5, posted_optouts=mode)
    client = client_for(box)
    people = [f"person{i}@example.com" for i in range(100)]
    client.submit_optouts(people, [])
    records = client.list_optouts()
    assert len(records) == 110
    assert {r.email for r in records} >= set(people)



class _TrueCounts:
    """A CheckMarket-shaped server whose Meta numbers are JSON true (Python reads them as 1)."""

    def __init__(self) -> None:
        self.status: object = 200
        self.rows = 2

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        from optout_desk.sandbox.service import json_reply

        rows = [{"ContactId": n, "Email": f"p{n}@example.com",
                 "DateOptOut": "2026-11-30T10:00:00Z"} for n in range(self.rows)]
        return json_reply(200, {"Meta": {"Status": self.status, "TotalRowCount": True},
                                "Data": rows})


def test_a_total_of_true_is_no_total() -> None:
    """check() said "1 opt-outs on the account" (true read as 1); it counts the rows seen, as
    for a total left out."""
    from optout_desk.sandbox.loopback import LoopbackServer

    server_state = _TrueCounts()
    with LoopbackServer(server_state, name="true-counts") as server:
        client = CheckMarketClient(CheckMarketSettings.from_mapping(server.origin, {}), "m", "k")
        try:
            assert client.check().total_optouts == 2
            server_state.rows = 1
            assert client.check().message == "1 opt-out on the account."
            server_state.status = True  # no status at all, not status 1
            with pytest.raises(PlatformError, match=r"without a status in its envelope"):
                client.check()
        finally:
            client.close()
