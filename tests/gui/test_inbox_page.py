"""The Inbox page as an operator sees it: events appear while it is open, the banner says when
nothing receives, the local receiver switches on and off, and forwarding goes through Submit
and marks the entries once the plan completed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from optout_desk.sandbox.lox24 import subscribe_event, unsubscribe_event
from optout_desk.sandbox.server import Sandbox
from optout_desk.store.db import connect
from optout_desk.workflows import inbox, submit
from optout_desk.workflows.connections import add_connection


@pytest.fixture(autouse=True)
def _database_migrated(isolated_home: Path) -> None:
    connect().close()


def cell(page: Any, row: int, column: str) -> Any:
    from optout_desk.ui.pages.inbox import COLUMNS

    return page.model.data(page.model.index(row, COLUMNS.index(column)))


def test_events_appear_live_and_resubscribes_wait_for_a_person(
        qtbot: Any, main_window: Any, receiver: Any, lox24_source: tuple[str, str]) -> None:
    _name, url = lox24_source
    page = main_window.show_page("inbox")
    qtbot.waitUntil(lambda: page.signature is not None, timeout=10_000)
    assert page.model.rowCount() == 0
    for n in range(3):
        assert httpx.post(url, json=unsubscribe_event(f"+4915112345{n:03d}", 1757849748 + n,
                                                      reason_id=2)).status_code == 200
    httpx.post(url, json=subscribe_event("+4915112345000", 1757849900))
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=10_000)
    assert cell(page, 0, "kind") == "resubscribe"
    assert cell(page, 0, "status") == "resubscribe: decide"
    assert cell(page, 1, "reason") == "Zu viele Nachrichten"
    assert "3 opt-outs · 3 new · 1 resubscribe (1 to decide)" in page.counts_label.text()
    assert page.reason_chart.counts == [("Zu viele Nachrichten", 3)]
    assert int(page.day_chart.counts.counts.sum()) == 3
    assert "lox — LOX24: http://127.0.0.1:" in page.urls.toPlainText()
    assert not page.banner.isVisible()  # the fixture's receiver beats its heartbeat
    page.kind_filter.setCurrentIndex(2)
    assert page.model.rowCount() == 1
    page.table.search.setText("+4915112345002")
    page.kind_filter.setCurrentIndex(0)
    assert page.model.shown_rows == 1


def test_banner_without_a_receiver_and_the_local_switch(qtbot: Any, main_window: Any) -> None:
    page = main_window.show_page("inbox")
    qtbot.waitUntil(lambda: page.banner.isVisible(), timeout=10_000)
    assert "No receiver is running" in page.banner.text()
    page.receiver_port = 0
    page.receive_button.setChecked(True)
    qtbot.waitUntil(lambda: "Receiving on http://127.0.0.1:" in page.receiver_label.text(),
                    timeout=10_000)
    inbox.add_source("quiet", "lox24", session_only=True)
    page.sources = []
    qtbot.waitUntil(lambda: "Nothing arrived yet" in page.banner.text(), timeout=10_000)
    assert "quiet — LOX24: http://127.0.0.1:" in page.urls.toPlainText()
    assert page.copy_urls().startswith("quiet: http://127.0.0.1:")
    assert "Copied 1 webhook URL." in main_window.message_bar.text.text()
    page.receive_button.setChecked(False)
    qtbot.waitUntil(lambda: "No receiver is running" in page.banner.text(), timeout=10_000)


def test_forward_hands_new_optouts_to_submit_and_marks_them_when_sent(
        qtbot: Any, main_window: Any, receiver: Any, lox24_source: tuple[str, str],
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_MASTER_KEY", sandbox.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_DEMO_KEY", sandbox.key)
    add_connection("demo", "checkmarket", base_url=sandbox.base_url, secrets={})
    _name, url = lox24_source
    phones = [f"+4917612345{n:03d}" for n in range(4)]
    for n, phone in enumerate(phones):
        httpx.post(url, json=unsubscribe_event(phone, 1757849748 + n))
    httpx.post(url, json=subscribe_event(phones[0], 1757849900))
    handed: list[tuple[list[Any], str]] = []
    monkeypatch.setattr(main_window, "send_to_submit",
                        lambda inputs, origin: handed.append((inputs, origin)))
    page = main_window.show_page("inbox")
    qtbot.waitUntil(lambda: page.model.rowCount() == 5, timeout=10_000)
    page.forward()
    qtbot.waitUntil(lambda: bool(handed), timeout=10_000)
    inputs, origin = handed[0]
    assert origin.startswith("Inbox forward #")
    assert sorted(i.identifier.key for i in inputs) == sorted(phones)  # no resubscribe
    # What the Submit page does with them: plan, journal under the origin, send.
    plan = submit.prepare_plan("demo", inputs)
    outcome = submit.execute_plan(submit.save_plan(plan, source_file=origin), verify=False)
    assert outcome.status == "completed"
    qtbot.waitUntil(lambda: page.counts_label.text().startswith("4 opt-outs · 0 new"),
                    timeout=10_000)
    statuses = {cell(page, r, "identifier"): cell(page, r, "status") for r in range(5)
                if cell(page, r, "kind") == "opt-out"}
    assert statuses == dict.fromkeys(phones, "forwarded to demo")
    submitted = sandbox.state.submitted[0]["PhoneNumbers"]
    assert sorted(submitted) == sorted(phones)


def test_pull_from_relays_fills_the_inbox_and_says_which_relay_failed(
        qtbot: Any, main_window: Any, receiver: Any, lox24_source: tuple[str, str],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the desktop could pull a relay only from the CLI (`optout-desk inbox pull`):
    the Inbox page had no way to show what an always-on host received."""
    from PySide6.QtCore import Qt

    _name, url = lox24_source
    token = inbox.new_api_token()  # before the receiver first reads its sources and token
    for n in range(3):
        assert httpx.post(url, json=unsubscribe_event(f"+4915112345{n:03d}", 1757849748 + n,
                                                      reason_id=2)).status_code == 200
    # The relay's database is the receiver's; the desktop's is another folder.
    monkeypatch.setenv("OPTOUT_DESK_HOME", str(tmp_path / "desk"))
    connect().close()
    add_connection("relay", "inbox-relay", base_url=receiver.base_url,
                   secrets={"TOKEN": token}, session_only=True)
    add_connection("stale", "inbox-relay", base_url=receiver.base_url,
                   secrets={"TOKEN": "w" * 32}, session_only=True)
    page = main_window.show_page("inbox")
    page.poll()
    qtbot.waitUntil(lambda: page.pull_button.isVisible(), timeout=10_000)
    assert not page.banner.isVisible()  # the relay receives; nothing here has to
    bar = main_window.message_bar
    qtbot.mouseClick(page.pull_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "relay: 3 events fetched, 3 new." in bar.text.text(),
                    timeout=10_000)
    assert bar.level == "warning"
    assert "stale: The relay at 127.0.0.1" in bar.text.text()
    assert "refused the token" in bar.text.text()
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=10_000)
    assert {cell(page, row, "source") for row in range(3)} == {"relay/lox"}
    assert not page.panel.isVisible()  # no status line outlives its task
    httpx.post(url, json=unsubscribe_event("+4915112345999", 1757849999))
    page.fetch()  # F5
    qtbot.waitUntil(lambda: "relay: 1 event fetched, 1 new." in bar.text.text(),
                    timeout=10_000)
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=10_000)
    # Between presses the page pulls by itself; it speaks only when something new came (the
    # stale relay's failure, said already, is not said again every minute).
    assert page.relay_timer.isActive()
    page.relay_timer.setInterval(100)
    main_window.notify("marker", "info")
    qtbot.wait(800)
    assert bar.text.text() == "marker"
    httpx.post(url, json=unsubscribe_event("+4915112345998", 1757849998))
    qtbot.waitUntil(lambda: page.model.rowCount() == 5, timeout=10_000)
    assert "relay: 1 event fetched, 1 new." in bar.text.text()


class _EndlessRelay:
    """A relay's pull API with more and more pages, each a little slow: a pull that only
    Cancel ends."""

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        import time

        from optout_desk.sandbox.service import json_reply

        time.sleep(0.05)
        after = int(target.split("after=", 1)[1].split("&", 1)[0])
        events = [{"seq": after + 1, "event_id": f"e{after + 1}", "source": "lox",
                   "system": "lox24", "event": "phone.unsubscribe", "kind": "optout",
                   "id_kind": "phone", "identifier": f"+49151{after + 1:08d}",
                   "occurred_at": "2026-11-30T10:00:00.0000000Z",
                   "received_at": "2026-11-30T10:00:01.0000000Z", "deliveries": 1}]
        return json_reply(200, {"events": events, "next_after": after + 1, "more": True,
                                "total": 10**6, "last_seq": 10**6, "relay_id": "endless"})


def test_a_pull_is_cancelled_from_its_panel_and_keeps_what_it_pulled(
        qtbot: Any, main_window: Any) -> None:
    from PySide6.QtCore import Qt

    from optout_desk.sandbox.loopback import LoopbackServer

    with LoopbackServer(_EndlessRelay(), name="endless-relay") as server:
        add_connection("endless", "inbox-relay", base_url=server.origin,
                       secrets={"TOKEN": "t" * 32}, session_only=True)
        page = main_window.show_page("inbox")
        page.poll()
        qtbot.waitUntil(lambda: page.pull_button.isVisible(), timeout=10_000)
        page.fetch()  # F5
        qtbot.waitUntil(lambda: "Pulling endless" in page.panel.status.text() and
                        "events" in page.panel.status.text(), timeout=10_000)
        assert not page.pull_button.isEnabled()
        qtbot.mouseClick(page.panel.cancel_button, Qt.MouseButton.LeftButton)
        bar = main_window.message_bar
        qtbot.waitUntil(lambda: "Pull cancelled" in bar.text.text(), timeout=10_000)
    assert page.pull_button.isEnabled() and not page.panel.isVisible()
    entries, _ = inbox.load_entries()
    assert entries  # each page was committed with its cursor
    qtbot.waitUntil(lambda: page.model.rowCount() == len(entries), timeout=10_000)


class _SlowRelay:
    """A relay's pull API that takes a second to answer its one page of one event."""

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        import time

        from optout_desk.sandbox.service import json_reply

        time.sleep(1.0)
        after = int(target.split("after=", 1)[1].split("&", 1)[0])
        events = [] if after else [{
            "seq": 1, "event_id": "e1", "source": "lox", "system": "lox24",
            "event": "phone.unsubscribe", "kind": "optout", "id_kind": "phone",
            "identifier": "+4915100000001", "occurred_at": "2026-11-30T10:00:00.0000000Z",
            "received_at": "2026-11-30T10:00:01.0000000Z", "deliveries": 1}]
        return json_reply(200, {"events": events, "next_after": 1, "more": False,
                                "total": 1, "last_seq": 1, "relay_id": "slow"})


def test_pull_pressed_during_a_background_pull_says_so_and_then_its_result(
        qtbot: Any, main_window: Any) -> None:
    """Before, Pull pressed while the page pulled by itself did nothing visible until that
    pull ended (up to its timeout): it looked like a dead button."""
    from optout_desk.sandbox.loopback import LoopbackServer

    with LoopbackServer(_SlowRelay(), name="slow-relay") as server:
        add_connection("slow", "inbox-relay", base_url=server.origin,
                       secrets={"TOKEN": "t" * 32}, session_only=True)
        page = main_window.show_page("inbox")
        page.poll()
        qtbot.waitUntil(lambda: page.pull_button.isVisible(), timeout=10_000)
        page._pull_in_background()
        assert page._background_pull is not None
        bar = main_window.message_bar
        page.fetch()  # F5 while the background pull waits on the relay
        assert "being pulled in the background already" in bar.text.text()
        qtbot.waitUntil(lambda: "slow: 1 event fetched, 1 new." in bar.text.text(),
                        timeout=10_000)
        qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=10_000)
