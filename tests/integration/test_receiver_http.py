"""The webhook receiver over real HTTP (uvicorn on 127.0.0.1): LOX24 events of both kinds,
deduplication, every bad input, a slow client, the pull API's tokens, the CheckMarket
handshake and activation against the simulator, and tokens kept out of the log."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from optout_desk import paths
from optout_desk.sandbox.lox24 import Lox24Sender, subscribe_event, unsubscribe_event
from optout_desk.sandbox.server import Sandbox
from optout_desk.store import inbox as store
from optout_desk.store.db import connect
from optout_desk.webhooks.runner import Receiver
from optout_desk.workflows import inbox
from optout_desk.workflows.connections import add_connection

PHONE = "+4915112345678"


def stored_count() -> int:
    db = connect()
    try:
        return store.count_events(db)
    finally:
        db.close()


def test_unsubscribe_then_resubscribe_are_stored_once_each(lox24_source: tuple[str, str]) -> None:
    name, url = lox24_source
    unsubscribe = unsubscribe_event(PHONE, 1757849748, reason_id=2, campaign="SPRING")
    with Lox24Sender(url, total_field="attempt_total") as sender:
        first = sender.post_attempt(unsubscribe, 1)
        again = httpx.post(url, json={**unsubscribe, "attempt_number": 2})
        resubscribe = sender.deliver(subscribe_event(PHONE, 1757849800))
    assert first == 200 and again.json() == {"status": "duplicate", "deliveries": 2}
    assert resubscribe.acknowledged
    entries, optout_ids = inbox.load_entries(name)
    assert [(e.event.kind, e.event.identifier, e.deliveries) for e in entries] == [
        ("optout", PHONE, 2), ("resubscribe", PHONE, 1)]
    assert entries[0].event.reason_label == "Zu viele Nachrichten"
    assert entries[0].event.campaign == "SPRING"
    # The subscribe is for a person to decide about; the opt-out stays an opt-out.
    assert [inbox.status_of(e, optout_ids) for e in entries] == ["new", inbox.STATUS_DECIDE]
    assert [e.row_id for e in inbox.forward_candidates(entries)] == [entries[0].row_id]


def test_malformed_json_and_missing_fields_get_400_and_store_nothing(
        lox24_source: tuple[str, str]) -> None:
    _name, url = lox24_source
    bad = httpx.post(url, content=b'{"id": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("The body is not valid JSON")
    event = unsubscribe_event(PHONE, 1757849748)
    del event["data"]["phone"]
    missing = httpx.post(url, json=event)
    assert missing.status_code == 400
    assert missing.json() == {"error": "The field data.phone is missing."}
    assert stored_count() == 0


def test_a_number_too_large_to_store_gets_400_not_503_for_ever(
        lox24_source: tuple[str, str]) -> None:
    """Valid JSON, but 2**64 - 1 does not fit an SQLite INTEGER: were it accepted, every
    COMMIT of it would fail and each of the platform's retries get 503. It is refused with the
    field's name, and the next event is stored as usual."""
    name, url = lox24_source
    event = unsubscribe_event(PHONE, 1757849748)
    event["data"]["user_id"] = 2**64 - 1
    refused = httpx.post(url, json=event)
    assert refused.status_code == 400
    assert refused.json() == {"error": "data.user_id is too large a number (at most 19 digits)."}
    assert stored_count() == 0
    assert httpx.post(url, json=unsubscribe_event(PHONE, 1757849749)).status_code == 200
    assert [e.event.identifier for e in inbox.load_entries(name)[0]] == [PHONE]


def test_unknown_token_is_404_like_any_unknown_path(receiver: Receiver,
                                                    lox24_source: tuple[str, str]) -> None:
    event = unsubscribe_event(PHONE, 1757849748)
    wrong = httpx.post(f"{receiver.base_url}/hooks/{'x' * 43}", json=event)
    elsewhere = httpx.post(f"{receiver.base_url}/no/such/path", json=event)
    assert wrong.status_code == elsewhere.status_code == 404
    assert wrong.content == elsewhere.content == b'{"error":"Not found."}'
    assert stored_count() == 0


def test_body_over_one_megabyte_is_413_declared_or_streamed(
        lox24_source: tuple[str, str]) -> None:
    _name, url = lox24_source
    declared = httpx.post(url, content=b" " * 1_000_001)
    assert declared.status_code == 413
    assert "larger than 1,000,000 bytes" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"id": "' + b"a" * 600_000
        yield b"b" * 600_000 + b'"}'

    try:
        streamed = httpx.post(url, content=chunks())
        assert streamed.status_code == 413
    except httpx.WriteError:  # the server may close before the client finished writing
        pass
    assert stored_count() == 0
    # Exactly 1 MB is still accepted as a body (and then judged on its content).
    assert httpx.post(url, content=b" " * 1_000_000).status_code == 400


def test_a_slow_client_does_not_hold_up_the_others(lox24_source: tuple[str, str],
                                                   receiver: Receiver) -> None:
    _name, url = lox24_source
    path = url.split(str(receiver.port), 1)[1]
    slow = socket.create_connection(("127.0.0.1", receiver.port))
    try:
        slow.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 5000\r\n\r\n{\"id\":".encode())
        started = time.monotonic()
        with httpx.Client() as client:
            answers = [client.post(url, json=unsubscribe_event(f"+49151123456{n:02d}",
                                                               1757849748 + n))
                       for n in range(20)]
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert [a.status_code for a in answers] == [200] * 20
    assert elapsed < 2.0
    assert stored_count() == 20


def test_a_body_that_does_not_arrive_in_time_gets_408_and_others_go_on(
        lox24_source: tuple[str, str], receiver: Receiver) -> None:
    _name, url = lox24_source
    deadlines = receiver.app.hooks.deadlines
    deadlines.timeout_s, deadlines.SWEEP_S = 0.5, 0.1
    path = url.split(str(receiver.port), 1)[1]
    slow = socket.create_connection(("127.0.0.1", receiver.port))
    try:
        slow.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 5000\r\n\r\n{\"id\":".encode())
        started = time.monotonic()
        assert httpx.post(url, json=unsubscribe_event(PHONE, 1757849748)).status_code == 200
        slow.settimeout(5)
        answer = slow.recv(4096)
        waited = time.monotonic() - started
    finally:
        slow.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"The body did not arrive in time." in answer
    assert 0.4 < waited < 2.0
    assert stored_count() == 1


def test_other_methods_on_a_hook_url_are_405_and_other_paths_404(
        receiver: Receiver, lox24_source: tuple[str, str]) -> None:
    _name, url = lox24_source
    assert httpx.get(url).status_code == 405
    assert httpx.put(url, json={}).status_code == 405
    for wrong in (f"{url}/more", f"{receiver.base_url}/hooks/", f"{receiver.base_url}/hooks"):
        answer = httpx.post(wrong, json=unsubscribe_event(PHONE, 1757849748))
        assert (answer.status_code, answer.content) == (404, b'{"error":"Not found."}'), wrong
    assert stored_count() == 0


def test_pull_api_needs_the_bearer_token(receiver: Receiver,
                                         lox24_source: tuple[str, str]) -> None:
    _name, url = lox24_source
    events_url = f"{receiver.base_url}/api/v1/events"
    assert httpx.get(events_url).status_code == 401  # no token configured, none sent
    token = inbox.new_api_token()
    time.sleep(1.1)  # the receiver re-reads its settings once a second
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": "Bearer"}):
        refused = httpx.get(events_url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert token not in refused.text
    events = [unsubscribe_event(f"+4915112345{n:03d}", 1757849748 + n) for n in range(5)]
    for event in events:
        assert httpx.post(url, json=event).status_code == 200
    auth = {"Authorization": f"Bearer {token}"}
    page = httpx.get(events_url, params={"after": 0, "limit": 3}, headers=auth).json()
    assert [e["event_id"] for e in page["events"]] == [e["id"] for e in events[:3]]
    assert page["more"] is True and page["total"] == 5
    rest = httpx.get(events_url, params={"after": page["next_after"]}, headers=auth).json()
    assert [e["event_id"] for e in rest["events"]] == [e["id"] for e in events[3:]]
    assert rest["more"] is False
    # A repeated delivery moves the event past the cursor, with its new count.
    assert httpx.post(url, json=events[0]).json()["deliveries"] == 2
    again = httpx.get(events_url, params={"after": rest["next_after"]}, headers=auth).json()
    assert [(e["event_id"], e["deliveries"]) for e in again["events"]] == [(events[0]["id"], 2)]
    bad = httpx.get(events_url, params={"limit": 0}, headers=auth)
    assert bad.status_code == 400 and "limit from 1 to 1000" in bad.json()["error"]
    # A cursor no SQLite INTEGER holds is a bad request too, not a 500.
    huge = httpx.get(events_url, params={"after": 2**63}, headers=auth)
    assert huge.status_code == 400 and "after must be" in huge.json()["error"]
    last = httpx.get(events_url, params={"after": 2**63 - 1}, headers=auth).json()
    assert last["events"] == [] and last["more"] is False


@pytest.fixture
def log_file() -> Iterator[Path]:
    from optout_desk.log import LOG_FILE_NAME, setup_logging

    handler = setup_logging(debug=True)
    yield paths.log_dir() / LOG_FILE_NAME
    logging.getLogger("optout_desk").removeHandler(handler)
    handler.close()


def test_tokens_never_reach_the_log(log_file: Path, receiver: Receiver) -> None:
    _source, token = inbox.add_source("lox-logged", "lox24", session_only=True)
    url = inbox.hook_url(token, receiver.base_url)
    api_token = inbox.new_api_token()
    time.sleep(1.1)
    httpx.post(url, json=unsubscribe_event(PHONE, 1757849748))
    httpx.post(url, content=b"{bad")
    httpx.post(url, content=b" " * 1_000_001)
    httpx.post(f"{receiver.base_url}/hooks/{token[:-1]}x", json={})
    httpx.get(f"{receiver.base_url}/api/v1/events", headers={"Authorization": "Bearer nope"})
    httpx.get(f"{receiver.base_url}/api/v1/events",
              headers={"Authorization": f"Bearer {api_token}"})
    text = log_file.read_text(encoding="utf-8")
    assert "source lox-logged: refused a delivery: The body is not valid JSON" in text
    assert "refused a delivery to an unknown hook URL" in text
    assert token not in text and token[:-1] not in text and api_token not in text
    assert PHONE not in text


# -- CheckMarket -----------------------------------------------------------------------------


@pytest.fixture
def cm_connection(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    add_connection("demo", "checkmarket", base_url=sandbox.base_url, secrets={})
    return "demo"


def test_checkmarket_handshake_activation_and_optouts(
        sandbox: Sandbox, receiver: Receiver, cm_connection: str) -> None:
    inbox.add_source("cm", "checkmarket", connection=cm_connection, session_only=True)
    registration = inbox.register_hook("cm", cm_connection, receiver.base_url)
    assert registration.target_url.startswith(f"{receiver.base_url}/hooks/")
    source = inbox.wait_for_activation("cm", 10)
    assert (source.hook_state, source.webhook_id) == ("active", registration.webhook.webhook_id)
    assert inbox.hooks_client(cm_connection).get(source.webhook_id).is_active
    activations = sandbox.state.requests_to(f"3/hooks/{source.webhook_id}/activate")
    assert [a.status for a in activations] == [200]

    added = sandbox.state.add_optouts(3)
    assert sandbox.state.hooks.wait_idle()
    entries, _ = inbox.load_entries("cm")
    by_contact = {o["ContactId"]: o for o in added}
    assert len(entries) == 3 and all(e.event.event == "Panelist.Optout" for e in entries)
    assert {e.event.details["contact_id"] for e in entries} == set(by_contact)
    for entry in entries:
        sent = by_contact[entry.event.details["contact_id"]]
        if sent.get("Email"):
            assert entry.event.identifier == sent["Email"].strip().lower()
        else:
            assert entry.event.identifier.startswith("+")
    assert [d.status for d in sandbox.state.hooks.deliveries] == [200] * 4  # handshake + 3


def test_checkmarket_duplicate_delivery_is_counted(sandbox: Sandbox, receiver: Receiver,
                                                   cm_connection: str) -> None:
    _source, token = inbox.add_source("cm", "checkmarket", connection=cm_connection,
                                      session_only=True)
    url = inbox.hook_url(token, receiver.base_url)
    body: dict[str, Any] = {"Contact": {"ContactId": 9, "DateOptOut": "2026-01-02T03:04:05Z",
                                        "Email": "A@B.example"}, "WebhookId": 4,
                            "EventName": "Panelist.Optout"}
    assert httpx.post(url, json=body).json() == {"status": "stored", "deliveries": 1}
    assert httpx.post(url, json=body).json() == {"status": "duplicate", "deliveries": 2}
    body["Contact"]["DateOptOut"] = "2026-01-03T03:04:05Z"  # a later opt-out: a new event
    assert httpx.post(url, json=body).json()["status"] == "stored"


def test_handshake_without_a_connection_is_reported_not_lost(
        sandbox: Sandbox, receiver: Receiver) -> None:
    _source, token = inbox.add_source("cm-alone", "checkmarket", session_only=True)
    url = inbox.hook_url(token, receiver.base_url)
    created = {"ActivationRequired": True, "WebhookId": 12, "EventName": "Webhook.Created"}
    answer = httpx.post(url, json=created, headers={"X-Hook-Key": "hook-key-1"})
    assert answer.json() == {"status": "handshake received", "webhook_id": 12}
    source = inbox.wait_for_activation("cm-alone", 5)
    assert source.hook_state == "activation-failed" and source.webhook_id == 12
    assert "no CheckMarket connection to activate with" in source.hook_message
    assert "hook-key-1" not in source.hook_message
    assert httpx.post(url, json=created).status_code == 400  # no X-Hook-Key
