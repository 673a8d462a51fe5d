"""The CheckMarket sandbox itself, over real HTTP: envelope, paging, filters, auth, roles,
throttling and injected faults behave as shared/api-notes.md section 1 describes."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from optout_desk.core.records import canonical_timestamp
from optout_desk.sandbox.checkmarket import timespan
from optout_desk.sandbox.server import Sandbox, SandboxConfig
from tests.fixtures.sandbox import SandboxFactory

OPTOUTS = "3/contacts/optouts"


def client(box: Sandbox, **headers: str) -> httpx.Client:
    keys = {"X-Master-Key": box.master_key, "X-Key": box.key, "Accept": "application/json"}
    keys.update(headers)
    return httpx.Client(base_url=box.base_url, headers=keys, timeout=10)


def get(box: Sandbox, path: str = OPTOUTS, **params: Any) -> httpx.Response:
    with client(box) as c:
        return c.get(path, params=params)


def test_default_page_is_25_with_full_meta_and_next_link(sandbox: Sandbox) -> None:
    body = get(sandbox).json()
    meta = body["Meta"]
    assert meta["Status"] == 200
    assert meta["TotalRowCount"] == 250
    assert (meta["Limit"], meta["Offset"], meta["TotalPageCount"]) == (25, 0, 10)
    assert (meta["StartRec"], meta["StopRec"], meta["IsFiltered"]) == (1, 25, False)
    assert meta["Timestamp"].endswith("Z")
    assert len(body["Data"]) == 25
    assert body["Links"]["Next"] == {
        "Href": f"{sandbox.base_url}3/contacts/optouts?$top=25&$skip=25", "Method": "GET"}
    first = body["Data"][0]
    assert {"DateOptOut", "LangCode", "ContactId", "FirstName", "LastName", "Email"} <= set(first)


def test_paging_with_and_without_dollar_covers_everything_in_stable_order(
    sandbox: Sandbox,
) -> None:
    seen: list[dict[str, Any]] = []
    for skip in range(0, 250, 100):
        params = {"$top": 100, "$skip": skip} if skip % 200 == 0 else {"top": 100, "skip": skip}
        seen.extend(get(sandbox, **params).json()["Data"])
    assert seen == sandbox.state.optouts()
    order = [(canonical_timestamp(r["DateOptOut"]), r["ContactId"]) for r in seen]
    assert order == sorted(order)
    last = get(sandbox, **{"$top": 100, "$skip": 200}).json()
    assert "Next" not in last["Links"] and last["Meta"]["StopRec"] == 250


def test_generated_data_is_varied_and_reproducible(sandbox_factory: SandboxFactory) -> None:
    one = sandbox_factory(records=2000, seed=11).state.optouts()
    two = sandbox_factory(records=2000, seed=11).state.optouts()
    assert [r["ContactId"] for r in one] == [r["ContactId"] for r in two]
    langs = {r["LangCode"] for r in one}
    assert {"en", "nl", "fr", "de", "es", "it"} <= langs
    phones = [r["Phone"] for r in one if r["Phone"]]
    emails = [r["Email"] for r in one if r["Email"]]
    assert any(p.startswith("+") and " " in p for p in phones)
    assert any("-" in p for p in phones) and any(p.startswith("0") for p in phones)
    assert any(e != e.strip() for e in emails) and any(e != e.lower() for e in emails)
    assert any(not r["Email"] and r["Phone"] for r in one)
    assert any(r["Email"] and not r["Phone"] for r in one)
    # The campaign spike: the busiest day has many times the average day.
    per_day: dict[str, int] = {}
    for r in one:
        per_day[r["DateOptOut"][:10]] = per_day.get(r["DateOptOut"][:10], 0) + 1
    assert max(per_day.values()) > 10 * (len(one) / 365)


def test_survey_scoped_lists_differ_and_unknown_survey_is_404(sandbox: Sandbox) -> None:
    surveys = sandbox.state.survey_ids
    sizes = []
    for survey in surveys[:2]:
        body = get(sandbox, f"3/surveys/{survey}/contacts/optouts", **{"$top": 1000}).json()
        assert body["Data"] == sandbox.state.optouts(survey)
        sizes.append(body["Meta"]["TotalRowCount"])
    assert 0 < sizes[0] < 250 and sizes[0] != sizes[1]
    missing = get(sandbox, "3/surveys/1/contacts/optouts")
    assert missing.status_code == 404 and missing.json()["Meta"]["Status"] == 404


def test_date_filter_ge_gt_and_the_tutorial_typo(sandbox: Sandbox) -> None:
    rows = sandbox.state.optouts()
    pivot = rows[100]["DateOptOut"]
    literal = canonical_timestamp(pivot)[:27]
    ge = get(sandbox, filter=f"DateOptOut ge DateTime'{literal}'", **{"$top": 1000}).json()
    assert ge["Meta"]["IsFiltered"] is True
    expected = [r for r in rows if canonical_timestamp(r["DateOptOut"]) >= canonical_timestamp(
        pivot)]
    assert ge["Data"] == expected
    gt = get(sandbox, filter=f"DateOptOut gt DateTime'{literal}'", **{"$top": 1000}).json()
    assert len(gt["Data"]) < len(expected)
    # The vendor tutorial writes `filter==DateOptOut…`; the sandbox tolerates the extra "=".
    with client(sandbox) as c:
        typo = c.get(f"{OPTOUTS}?filter==DateOptOut%20ge%20DateTime'{literal}'&$top=1000")
    assert typo.json()["Data"] == expected
    bad = get(sandbox, filter="Email eq 'x'")
    assert bad.status_code == 400 and "filter" in bad.json()["Data"]["ErrorMessage"]


def test_next_link_keeps_the_filter(sandbox: Sandbox) -> None:
    literal = canonical_timestamp(sandbox.state.optouts()[10]["DateOptOut"])[:19]
    body = get(sandbox, filter=f"DateOptOut ge DateTime'{literal}'", **{"$top": 10}).json()
    with client(sandbox) as c:
        following = c.get(body["Links"]["Next"]["Href"]).json()
    assert following["Meta"]["Offset"] == 10 and following["Meta"]["IsFiltered"] is True


def test_top_above_the_maximum_is_400_with_an_error_body(
    sandbox_factory: SandboxFactory,
) -> None:
    box = sandbox_factory(records=50, max_page_size=100)
    refused = get(box, **{"$top": 500})
    assert refused.status_code == 400
    data = refused.json()["Data"]
    assert refused.json()["Meta"]["Status"] == 400
    assert "top" in data["ErrorMessage"] and data["ErrorType"] == "ValidationException"
    assert get(box, **{"$top": 100}).status_code == 200
    assert get(box, **{"$top": "many"}).status_code == 400


def test_wrong_keys_are_401_and_missing_roles_403(sandbox: Sandbox) -> None:
    with client(sandbox, **{"X-Key": "wrong"}) as c:
        refused = c.get(OPTOUTS)
    assert refused.status_code == 401
    body = refused.json()
    assert body["Meta"]["Status"] == 401
    assert set(body["Data"]) == {"ErrorCode", "ErrorMessage", "ErrorType"}
    sandbox.state.add_key("m2", "reader", {"contacts:read"})
    sandbox.state.add_key("m2", "writer", {"contacts:write"})
    with client(sandbox, **{"X-Master-Key": "m2", "X-Key": "reader"}) as c:
        assert c.get(OPTOUTS).status_code == 200
        post = c.post(OPTOUTS, json={"EmailAddresses": ["a@example.com"]})
        assert post.status_code == 403
        assert "Contacts (write)" in post.json()["Data"]["ErrorMessage"]
    with client(sandbox, **{"X-Master-Key": "m2", "X-Key": "writer"}) as c:
        read = c.get(OPTOUTS)
        assert read.status_code == 403 and "Contacts (read)" in read.json()["Data"]["ErrorMessage"]


def test_throttle_per_key_answers_429_with_a_timespan_and_no_header(
    sandbox_factory: SandboxFactory,
) -> None:
    box = sandbox_factory(records=10, throttle_per_minute=3, throttle_window_s=0.6)
    statuses = [get(box).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = get(box)
    assert "retry-after" not in throttled.headers
    data = throttled.json()["Data"]
    assert data["MaxRequests"] == 3 and data["Per"] == "Minute"
    assert data["RetryAfter"].startswith("00:00:00.")
    time.sleep(0.65)
    assert get(box).status_code == 200


def test_timespan_format() -> None:
    assert timespan(1.5) == "00:00:01.5000000"
    assert timespan(0.2) == "00:00:00.2000000"
    assert timespan(86_400 + 3600) == "1.01:00:00.0000000"


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503), ("429", 429)])
def test_status_faults_hit_the_next_requests_on_the_prefix(
    sandbox: Sandbox, kind: str, status: int
) -> None:
    sandbox.state.inject_faults(kind, 2, path_prefix="3/contacts")
    other = get(sandbox, f"3/surveys/{sandbox.state.survey_ids[0]}/contacts/optouts")
    assert other.status_code == 200  # not on the prefix: untouched
    assert [get(sandbox).status_code for _ in range(3)] == [status, status, 200]
    assert [e.status for e in sandbox.state.requests_to(OPTOUTS)] == [status, status, 200]


def test_malformed_and_body_status_faults_answer_http_200(sandbox: Sandbox) -> None:
    sandbox.state.inject_faults("malformed", 1)
    sandbox.state.inject_faults("body-status", 1)
    broken = get(sandbox)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    lying = get(sandbox)
    assert lying.status_code == 200 and lying.json()["Meta"]["Status"] == 500


def test_drop_fault_closes_the_connection(sandbox: Sandbox) -> None:
    sandbox.state.inject_faults("drop", 1)
    with client(sandbox) as c, pytest.raises(httpx.TransportError):
        c.get(OPTOUTS)
    assert sandbox.state.request_log[-1].status == 0
    assert get(sandbox).status_code == 200


def test_latency_does_not_serialise_concurrent_requests(
    sandbox_factory: SandboxFactory,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    box = sandbox_factory(records=10, latency_ms=500)
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(box).status_code, range(8)))
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 8
    # Concurrent: about 0.5 s; serialised would be 4 s. The wide margin keeps a busy CI
    # machine from failing it.
    assert 0.5 <= elapsed < 2.5


def test_post_is_idempotent_dated_now_and_recorded(sandbox: Sandbox) -> None:
    existing = next(r for r in sandbox.state.optouts() if r["Email"])
    body = {"EmailAddresses": ["New.Person@Example.com", existing["Email"].upper()],
            "PhoneNumbers": ["+1-202-555-0117"]}
    with client(sandbox) as c:
        first = c.post(OPTOUTS, json=body)
        again = c.post(OPTOUTS, json={"EmailAddresses": ["new.person@example.com "],
                                      "PhoneNumbers": ["+12025550117"]})
    assert first.status_code == 200 and first.json()["Meta"]["Status"] == 200
    assert again.status_code == 200
    rows = sandbox.state.optouts()
    assert len(rows) == 252  # one new email, one new phone; the rest already there
    added = rows[-2:]
    assert {added[0]["Email"], added[1]["Phone"]} == {"New.Person@Example.com", "+1-202-555-0117"}
    dates = [canonical_timestamp(r["DateOptOut"]) for r in rows]
    assert dates[-1] > dates[-2] > dates[-3]
    assert sandbox.state.submitted == [body, {"EmailAddresses": ["new.person@example.com "],
                                              "PhoneNumbers": ["+12025550117"]}]


def test_post_rejects_bad_bodies(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        assert c.post(OPTOUTS, content=b"not json").status_code == 400
        assert c.post(OPTOUTS, json={"EmailAddresses": "a@b.c"}).status_code == 400
        assert c.post(OPTOUTS, json={}).status_code == 400
    assert sandbox.state.submitted == []


def test_add_optouts_are_dated_after_everything(sandbox: Sandbox) -> None:
    before = canonical_timestamp(sandbox.state.optouts()[-1]["DateOptOut"])
    added = sandbox.state.add_optouts(5)
    assert len(added) == 5
    assert all(canonical_timestamp(r["DateOptOut"]) > before for r in added)
    assert sandbox.state.optouts()[-5:] == added


def test_next_link_base_points_at_another_host_alias(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=60, next_link_base="http://localhost:{port}/")
    href = get(box).json()["Links"]["Next"]["Href"]
    assert href == f"http://localhost:{box.port}/3/contacts/optouts?$top=25&$skip=25"


def test_context_manager_stops_the_server() -> None:
    with Sandbox(SandboxConfig(records=5)) as box:
        url = box.base_url
        assert get(box).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + OPTOUTS, timeout=2)


# -- switches for platforms that behave worse than documented --------------------------------


def test_silent_page_cap_reports_the_cap_or_lies(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=250, seed=7, page_cap=60)
    honest = get(box, **{"$top": 100})
    body = honest.json()
    assert len(body["Data"]) == 60 and body["Data"] == box.state.optouts()[:60]
    assert (body["Meta"]["Limit"], body["Meta"]["TotalRowCount"]) == (60, 250)
    assert body["Links"]["Next"]["Href"].endswith("$top=100&$skip=60")  # after the rows served
    box.state.set_page_cap(60, limit_echoes_top=True)
    lying = get(box, **{"$top": 100, "$skip": 60}).json()
    assert len(lying["Data"]) == 60 and lying["Meta"]["Limit"] == 100
    box.state.set_page_cap(None)
    assert len(get(box, **{"$top": 100}).json()["Data"]) == 100


def test_one_short_page_keeps_its_meta_and_links(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=250, seed=7, short_page_at=100, short_page_rows=7)
    short = get(box, **{"$top": 100, "$skip": 100}).json()
    assert short["Data"] == box.state.optouts()[100:107]
    assert (short["Meta"]["StartRec"], short["Meta"]["StopRec"]) == (101, 200)
    assert short["Links"]["Next"]["Href"].endswith("$skip=200")
    # Only that $skip is short: the same rows asked from elsewhere are all there.
    assert len(get(box, **{"$top": 100, "$skip": 107}).json()["Data"]) == 100
    box.state.set_short_page(None)
    assert len(get(box, **{"$top": 100, "$skip": 100}).json()["Data"]) == 100


def test_drip_writes_an_answer_one_byte_at_a_time(sandbox: Sandbox) -> None:
    sandbox.state.set_drip(0.004, count=1)
    started = time.monotonic()
    with client(sandbox) as c, c.stream("GET", "3/nothing/here") as response:
        chunks = list(response.iter_raw())
    body = b"".join(chunks)
    assert response.status_code == 404 and json.loads(body)["Meta"]["Status"] == 404
    assert len(chunks) > len(body) / 2  # bytes arrive one (or a few) at a time
    assert time.monotonic() - started >= len(body) * 0.004
    assert get(sandbox).status_code == 200  # count=1: the next answer is whole at once
    sandbox.state.set_drip(0)


def test_opt_outs_arrive_while_a_client_pages(sandbox: Sandbox) -> None:
    sandbox.state.set_arrivals(3, per_request=2)
    assert get(sandbox, **{"$top": 10}).json()["Meta"]["TotalRowCount"] == 250  # $skip 0
    totals = [get(sandbox, **{"$top": 10, "$skip": 10}).json()["Meta"]["TotalRowCount"]
              for _ in range(3)]
    assert totals == [252, 253, 253]
    assert len(sandbox.state.optouts()) == 253


@pytest.mark.parametrize(("mode", "contact"), [("contact-zero", 0), ("contact-none", None)])
def test_posted_opt_outs_without_contact_ids_share_the_batch_timestamp(
    sandbox_factory: SandboxFactory, mode: str, contact: int | None
) -> None:
    box = sandbox_factory(records=10, posted_optouts=mode)
    with client(box) as c:
        c.post(OPTOUTS, json={"EmailAddresses": ["a@example.com", "b@example.com"],
                              "PhoneNumbers": ["+32470000001"]})
        c.post(OPTOUTS, json={"EmailAddresses": ["c@example.com"]})
    added = box.state.optouts()[-4:]
    assert [r["ContactId"] for r in added] == [contact] * 4
    assert len({r["DateOptOut"] for r in added[:3]}) == 1
    assert added[3]["DateOptOut"] != added[0]["DateOptOut"]
    with pytest.raises(ValueError, match="unknown mode"):
        box.state.set_posted_optouts("random")


def test_generated_people_are_distinct(sandbox_factory: SandboxFactory) -> None:
    rows = sandbox_factory(records=20_000, seed=1).state.optouts()
    emails = [r["Email"].strip().lower() for r in rows if r["Email"]]
    phones = ["".join(ch for ch in r["Phone"] if ch.isdigit()) for r in rows if r["Phone"]]
    assert len(set(emails)) == len(emails)
    assert len(set(phones)) > 0.999 * len(phones)  # national forms may share digits
