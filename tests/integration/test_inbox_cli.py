"""`optout-desk receive` and `optout-desk inbox …` as an operator runs them: a source's URL on
the last line, a platform posting events, `inbox list` with exactly the unique events, a
CheckMarket webhook registered and activated, forwarding, a relay pulled incrementally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.reliability_receiver import ReceiverProcess, free_port
from optout_desk.cli import main
from optout_desk.sandbox.checkmarket import Reply
from optout_desk.sandbox.loopback import LoopbackServer
from optout_desk.sandbox.lox24 import Lox24Sender, generate_events
from optout_desk.sandbox.server import Sandbox
from optout_desk.sandbox.service import json_reply
from optout_desk.webhooks.runner import Receiver, ReceiverOptions
from optout_desk.workflows import inbox


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_receive_add_post_list_exactly_the_unique_events(
        isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["inbox", "add", "lox", "--system", "lox24", "--no-keyring",
                 "--url", f"http://127.0.0.1:{port}"]) == 0
    url = last_line(capsys.readouterr().out)
    assert url.startswith(f"http://127.0.0.1:{port}/hooks/") and len(url.rsplit("/", 1)[1]) >= 43
    process = ReceiverProcess(isolated_home, port)
    process.start()
    try:
        events = generate_events(30, seed=4)
        with Lox24Sender(url) as sender:
            for event in events + events[:10]:  # ten repeated deliveries
                assert sender.deliver(event).acknowledged
    finally:
        assert process.stop() == 0  # SIGTERM: a clean stop
    output = tmp_path / "inbox.jsonl"
    assert main(["inbox", "list", "--output", str(output)]) == 0
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["event_id"] for line in lines) == sorted(e["id"] for e in events)
    for key in ("event_id", "source", "system", "event", "kind", "identifier", "received_at",
                "deliveries"):
        assert all(key in line for line in lines), key
    assert sum(line["deliveries"] for line in lines) == 40
    assert {line["kind"] for line in lines} <= {"optout", "resubscribe"}
    assert all(line["identifier"].startswith("+49") for line in lines)
    assert main(["inbox", "list", "--output", str(tmp_path / "inbox.xlsx")]) == 0
    assert main(["inbox", "list", "--output", str(tmp_path / "inbox.txt")]) == 2
    assert "must end in .csv, .xlsx or .jsonl" in capsys.readouterr().err


def test_receive_in_the_foreground_says_where_and_stops_on_sigterm(isolated_home: Path) -> None:
    port = free_port()
    env = {**os.environ, "OPTOUT_DESK_HOME": str(isolated_home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "optout_desk", "receive", "--host", "0.0.0.0", "--port",
         str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert f"Receiving webhooks on http://127.0.0.1:{port}" in out
    assert "reachable from other computers over plain HTTP" in out
    assert "HTTPS" in out and out.strip().endswith("Receiver stopped.")


def test_receive_refuses_a_port_in_use(receiver: Receiver,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receive", "--port", str(receiver.port)]) == 2
    assert f"Cannot listen on 127.0.0.1:{receiver.port}" in capsys.readouterr().err


@pytest.mark.keyring
def test_register_activates_the_webhook_and_remove_forgets_the_source(
        real_keyring: object, sandbox: Sandbox, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    assert main(["connection", "add", "demo", "--base-url", sandbox.base_url]) == 0
    assert main(["inbox", "register", "cm", "--connection", "demo", "--url",
                 receiver.base_url]) == 0
    out = capsys.readouterr().out
    assert "Created CheckMarket webhook 1" in out and "The webhook is active" in out
    assert main(["inbox", "sources"]) == 0
    listed = capsys.readouterr().out
    assert "cm\tcheckmarket · webhook 1 active via demo" in listed
    shown = listed.strip().rsplit("\t", 1)[1]  # under the default base URL (none remembered)
    assert shown == inbox.source_url("cm")
    url = inbox.source_url("cm", receiver.base_url)
    sandbox.state.add_optouts(2)
    assert sandbox.state.hooks.wait_idle()
    assert main(["inbox", "list", "--source", "cm"]) == 0
    assert "2 entries: 2 opt-outs, 0 resubscribes." in capsys.readouterr().out
    assert main(["inbox", "remove", "cm", "--yes"]) == 0
    assert "its entries stay" in capsys.readouterr().out
    time.sleep(1.1)  # the receiver re-reads its sources once a second
    assert httpx.post(url, json={"EventName": "Panelist.Optout"}).status_code == 404


def test_forward_submits_new_optouts_once(
        sandbox: Sandbox, receiver: Receiver, lox24_source: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    assert main(["connection", "add", "demo", "--base-url", sandbox.base_url]) == 0
    _name, url = lox24_source
    events = generate_events(12, seed=8, resubscribe_share=0.2)
    with Lox24Sender(url) as sender:
        for event in events:
            sender.deliver(event)
    optouts = {e["data"]["phone"] for e in events if e["name"] == "phone.unsubscribe"}
    capsys.readouterr()
    assert main(["inbox", "forward", "--to", "demo"]) == 2  # no terminal, no --yes
    assert "Refusing to forward without confirmation" in capsys.readouterr().err
    assert sandbox.state.submitted == []
    assert main(["inbox", "forward", "--to", "demo", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"{len(optouts)} of {len(optouts)} entries marked forwarded to demo." in out
    assert set(sandbox.state.submitted[0]["PhoneNumbers"]) == optouts
    assert main(["inbox", "forward", "--to", "demo", "--yes"]) == 0
    assert "Nothing to forward" in capsys.readouterr().out
    assert len(sandbox.state.submitted) == 1


def test_a_relay_is_pulled_incrementally(
        receiver: Receiver, lox24_source: tuple[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _name, url = lox24_source
    events = generate_events(7, seed=9, resubscribe_share=0.0)
    with Lox24Sender(url) as sender:
        for event in events[:5]:
            sender.deliver(event)
    assert main(["inbox", "api-token"]) == 0
    token = last_line(capsys.readouterr().out)
    time.sleep(1.1)
    # The relay's database is this test's; the desktop's is another folder.
    desk = tmp_path / "desk"
    monkeypatch.setenv("OPTOUT_DESK_HOME", str(desk))
    monkeypatch.setenv("OPTOUT_DESK_SECRET_RELAY_TOKEN", "wrong")
    assert main(["connection", "add", "relay", "--system", "inbox-relay", "--base-url",
                 receiver.base_url]) == 0
    assert main(["connection", "test", "relay"]) == 1
    assert "refused the token" in capsys.readouterr().err
    monkeypatch.setenv("OPTOUT_DESK_SECRET_RELAY_TOKEN", token)
    assert main(["connection", "test", "relay"]) == 0
    assert main(["inbox", "pull", "relay"]) == 0
    assert "relay: 5 events fetched, 5 new" in capsys.readouterr().out
    with Lox24Sender(url) as sender:
        for event in [*events[5:], events[0]]:
            sender.deliver(event)
    assert main(["inbox", "pull", "relay"]) == 0
    assert "relay: 3 events fetched, 2 new" in capsys.readouterr().out
    entries, _ = inbox.load_entries()
    assert len(entries) == 7 and {e.event.source for e in entries} == {"relay/lox"}
    assert [e.deliveries for e in entries if e.event.event_id == events[0]["id"]] == [2]
    # A relay can list: fetched like any platform's list, its opt-outs are a cached list.
    capsys.readouterr()
    assert main(["fetch", "relay"]) == 0
    from optout_desk.store import cache, connections
    from optout_desk.store.db import connect

    db = connect()
    try:
        profile = connections.get(db, "relay")
        assert profile.id is not None
        phones = set(cache.load_columns(db, profile.id)["Phone"])
    finally:
        db.close()
    assert phones == {e["data"]["phone"] for e in events}


class _StallingRelay:
    """A relay's pull API (over real HTTP) that serves one page of two events, then answers
    "more" with the same cursor for ever; the second event's user_id no SQLite INTEGER holds."""

    def __init__(self) -> None:
        self.requests = 0

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        self.requests += 1
        events = [] if "after=0" not in target else [
            {"event_id": f"e{n}", "source": "lox", "system": "lox24", "event": "phone.unsubscribe",
             "kind": "optout", "id_kind": "phone", "identifier": f"+4915112345{n:03d}",
             "occurred_at": "2026-11-30T10:00:00.0000000Z",
             "received_at": "2026-11-30T10:00:01.0000000Z", "deliveries": 1,
             "user_id": 2**64 - 1 if n else 7} for n in range(2)]
        return json_reply(200, {"events": events, "next_after": 2, "more": True, "total": 9})


def test_a_relay_whose_cursor_stops_moving_fails_and_keeps_what_came(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before, a relay that said "more" without moving its cursor ended the pull as a success
    with part of its events (and a user_id past 2**63 was an unexpected error)."""
    relay = _StallingRelay()
    monkeypatch.setenv("OPTOUT_DESK_SECRET_STALL_TOKEN", "t" * 32)
    with LoopbackServer(relay, name="stalling-relay") as server:
        assert main(["connection", "add", "stall", "--system", "inbox-relay", "--base-url",
                     server.origin]) == 0
        capsys.readouterr()
        assert main(["inbox", "pull", "stall"]) == 1
    error = capsys.readouterr().err
    assert "said more events follow after cursor 2 but sent cursor 2" in error
    assert relay.requests == 2
    entries, _ = inbox.load_entries()
    assert sorted((e.event.event_id, e.event.user_id) for e in entries) == [
        ("e0", 7), ("e1", None)]


class _ShortRelay(_StallingRelay):
    """Says it holds 9 events, serves 2 and says there are no more."""

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        reply = super().handle(method, target, headers, body)
        page = json.loads(reply.body)
        return json_reply(200, {**page, "more": False})


def test_a_relay_list_short_of_its_own_total_fails_and_the_cache_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A relay fetched as a list: fewer events than its total is a partial list (before: a
    successful fetch of 2 of 9)."""
    monkeypatch.setenv("OPTOUT_DESK_SECRET_SHORT_TOKEN", "t" * 32)
    with LoopbackServer(_ShortRelay(), name="short-relay") as server:
        assert main(["connection", "add", "short", "--system", "inbox-relay", "--base-url",
                     server.origin]) == 0
        capsys.readouterr()
        assert main(["fetch", "short"]) == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "said it holds 9 events but the fetch got 2" in error
    assert "the cached list was left unchanged (0 opt-outs)" in error


def test_a_relay_replaced_by_a_new_one_is_pulled_again_from_the_start(
        isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before, a relay reinstalled on the same address (a new database, its own cursors) was
    pulled from the old cursor: the events before it were never fetched, with no word."""
    port, desk = free_port(), tmp_path / "desk"

    def relay(home: Path, events: list[dict[str, object]]) -> Receiver:
        monkeypatch.setenv("OPTOUT_DESK_HOME", str(home))
        _source, hook = inbox.add_source("lox", "lox24", session_only=True)
        token = inbox.new_api_token()
        started = Receiver(ReceiverOptions(port=port)).start()
        with Lox24Sender(inbox.hook_url(hook, started.base_url)) as sender:
            for event in events:
                assert sender.deliver(event).acknowledged
        monkeypatch.setenv("OPTOUT_DESK_HOME", str(desk))
        monkeypatch.setenv("OPTOUT_DESK_SECRET_RELAY_TOKEN", token)
        return started

    first = generate_events(5, seed=21, resubscribe_share=0.0)
    second = generate_events(8, seed=22, resubscribe_share=0.0)
    old = relay(tmp_path / "relay-1", first)
    try:
        assert main(["connection", "add", "relay", "--system", "inbox-relay", "--base-url",
                     old.base_url]) == 0
        assert main(["inbox", "pull", "relay"]) == 0
        assert "relay: 5 events fetched, 5 new (cursor 5)" in capsys.readouterr().out
    finally:
        old.stop()
    new = relay(tmp_path / "relay-2", second)  # its own cursor (8) is past the desk's (5)
    try:
        assert main(["inbox", "pull", "relay"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "was pulled again from the start: its event store is not the one this desk " \
            "pulled from before" in out
        assert "relay: 8 events fetched, 8 new (cursor 8)" in out
        assert main(["inbox", "pull", "relay"]) == 0  # and from then on, incrementally
        assert "relay: 0 events fetched, 0 new (cursor 8)" in capsys.readouterr().out
    finally:
        new.stop()
    entries, _ = inbox.load_entries()
    assert {e.event.event_id for e in entries} == {str(e["id"]) for e in first + second}


class _RestoredRelay:
    """A relay's pull API with one identity whose store goes back in time (restored from a
    backup): first three events (cursor 3), then two, its newest change at cursor 2."""

    def __init__(self) -> None:
        self.restored = False

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        after = int(target.split("after=", 1)[1].split("&", 1)[0])
        names = ["e0", "e9"] if self.restored else ["e0", "e1", "e2"]
        events = [
            {"seq": seq, "event_id": name, "source": "lox", "system": "lox24",
             "event": "phone.unsubscribe", "kind": "optout", "id_kind": "phone",
             "identifier": f"+4915112345{seq:03d}", "occurred_at": "2026-11-30T10:00:00.0000000Z",
             "received_at": "2026-11-30T10:00:01.0000000Z", "deliveries": 1}
            for seq, name in enumerate(names, start=1) if seq > after]
        return json_reply(200, {"events": events, "next_after": events[-1]["seq"] if events
                                else after, "more": False, "total": len(names),
                                "last_seq": len(names), "relay_id": "r1"})


def test_a_relay_restored_behind_the_cursor_is_pulled_again_from_the_start(
        isolated_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: cursor 3 on a relay whose newest change is 2 fetched nothing, for ever."""
    relay = _RestoredRelay()
    monkeypatch.setenv("OPTOUT_DESK_SECRET_BACKUP_TOKEN", "t" * 32)
    with LoopbackServer(relay, name="restored-relay") as server:
        assert main(["connection", "add", "backup", "--system", "inbox-relay", "--base-url",
                     server.origin]) == 0
        assert main(["inbox", "pull", "backup"]) == 0
        assert "backup: 3 events fetched, 3 new (cursor 3)" in capsys.readouterr().out
        relay.restored = True
        assert main(["inbox", "pull", "backup"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "its newest change is 2, before this desk's cursor 3" in out
    assert "backup: 2 events fetched, 1 new (cursor 2)" in out
    entries, _ = inbox.load_entries()
    assert sorted(e.event.event_id for e in entries) == ["e0", "e1", "e2", "e9"]


class _OddRelay(_RestoredRelay):
    """_RestoredRelay's answers with some fields replaced by JSON true/false."""

    def __init__(self, **odd: object) -> None:
        super().__init__()
        self.odd = odd

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        page = json.loads(super().handle(method, target, headers, body).body)
        return json_reply(200, {**page, **self.odd})


def test_a_relay_sending_true_for_a_number_is_not_misread(
        isolated_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Python reads JSON true as the int 1: a last_seq of true would have restarted every
    pull from the beginning, a next_after of true stored cursor 1."""
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ODD_TOKEN", "t" * 32)
    relay = _OddRelay(last_seq=True, total=False)
    with LoopbackServer(relay, name="odd-relay") as server:
        assert main(["connection", "add", "odd", "--system", "inbox-relay", "--base-url",
                     server.origin]) == 0
        assert main(["inbox", "pull", "odd"]) == 0
        assert main(["inbox", "pull", "odd"]) == 0
        out = capsys.readouterr().out
        assert "pulled again" not in out
        assert "odd: 0 events fetched, 0 new (cursor 3)" in out
        relay.odd = {"next_after": True}
        assert main(["inbox", "pull", "odd"]) == 1
    assert "answered something that is not its event list" in capsys.readouterr().err


def test_a_relay_connection_removed_and_added_again_pulls_from_the_start(
        isolated_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Before, the cursor outlived its connection: one added again under the same name, to a
    relay that sends no relay_id (an older receiver), began after the old cursor."""
    monkeypatch.setenv("OPTOUT_DESK_SECRET_AGAIN_TOKEN", "t" * 32)
    with LoopbackServer(_OddRelay(relay_id=None, last_seq=None), name="old-relay") as server:
        add = ["connection", "add", "again", "--system", "inbox-relay", "--base-url",
               server.origin]
        assert main(add) == 0
        assert main(["inbox", "pull", "again"]) == 0
        assert main(["connection", "remove", "again", "--yes"]) == 0
        assert main(add) == 0
        capsys.readouterr()
        assert main(["inbox", "pull", "again"]) == 0
    assert "again: 3 events fetched, 0 new (cursor 3)" in capsys.readouterr().out
