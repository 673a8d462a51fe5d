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
    assert "3 opt-outs · 3 new · 1 resubscribes (1 to decide)" in page.counts_label.text()
    assert page.reason_chart.counts == [("Zu viele Nachrichten", 3)]
    assert int(page.day_chart.counts.counts.sum()) == 3
    assert "lox (lox24): http://127.0.0.1:" in page.urls.toPlainText()
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
    assert "quiet (lox24): http://127.0.0.1:" in page.urls.toPlainText()
    assert page.copy_urls().startswith("quiet: http://127.0.0.1:")
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
