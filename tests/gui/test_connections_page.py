"""The Connections page driven like a user: add a connection to the sandbox, test it, a wrong
key, edit, remove; no keyring backend (the choices), a locked one, and the real Secret Service.
Modal dialogs are patched through their `ask` classmethods."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from optout_desk import secrets
from optout_desk.ui.dialogs.connection import (
    RETRY,
    SESSION_ONLY,
    ConnectionDialog,
    ConnectionInput,
    KeyringChoice,
)
from optout_desk.ui.pages.connections import ConnectionsPage


@pytest.fixture
def page(main_window: Any, qtbot: Any) -> Any:
    page = main_window.show_page("connections")
    qtbot.waitUntil(lambda: page._listing_task is None, timeout=15_000)
    return page


def answer_dialog(monkeypatch: Any, value: ConnectionInput | None) -> list[Any]:
    asked: list[Any] = []

    def ask(cls: Any, parent: Any, existing: Any = None, keyring_note: str = "",
            session_only_choice: bool = False) -> Any:
        asked.append((existing, keyring_note, session_only_choice))
        return value

    monkeypatch.setattr(ConnectionDialog, "ask", classmethod(ask))
    return asked


def sandbox_input(sandbox: Any, name: str = "eu-sandbox", key: str | None = None) -> Any:
    return ConnectionInput(name=name, system="checkmarket", region="custom",
                           custom_url=sandbox.base_url,
                           secrets={"MASTER_KEY": sandbox.master_key, "KEY": key or sandbox.key})


def wait_listed(page: Any, qtbot: Any, name: str, timeout_ms: int = 15_000) -> Any:
    qtbot.waitUntil(lambda: any(r.name == name for r in page.rows), timeout=timeout_ms)
    qtbot.waitUntil(lambda: page._listing_task is None, timeout=15_000)
    return next(r for r in page.rows if r.name == name)


def test_add_test_and_remove_with_the_real_secret_service(
        page: Any, qtbot: Any, sandbox: Any, monkeypatch: Any, main_window: Any,
        real_keyring: Any) -> None:
    assert not page.banner.isVisible()
    answer_dialog(monkeypatch, sandbox_input(sandbox))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    row = wait_listed(page, qtbot, "eu-sandbox")
    assert row.keys == "All keys: stored in Secret Service"
    assert secrets.read_secret("eu-sandbox", "KEY") == sandbox.key

    page.select("eu-sandbox")
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.checks.get("eu-sandbox", "").startswith("works"),
                    timeout=15_000)
    assert main_window.message_bar.level == "success"
    assert f"{len(sandbox.state.optouts()):,} opt-outs" in main_window.message_bar.text.text()

    monkeypatch.setattr(ConnectionsPage, "confirm_remove", classmethod(lambda c, p, n: True))
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not any(r.name == "eu-sandbox" for r in page.rows), timeout=15_000)
    assert secrets.describe_location("eu-sandbox", "KEY") == "not stored"


def test_a_wrong_key_shows_the_platform_message(page: Any, qtbot: Any, sandbox: Any,
                                                monkeypatch: Any, main_window: Any) -> None:
    answer_dialog(monkeypatch, sandbox_input(sandbox, "wrong-key", key="nope"))
    monkeypatch.setattr(KeyringChoice, "ask", classmethod(lambda c, p, m, locked: SESSION_ONLY))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    wait_listed(page, qtbot, "wrong-key")
    page.select("wrong-key")
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.checks.get("wrong-key") == "failed", timeout=15_000)
    assert main_window.message_bar.level == "warning"
    assert "key" in main_window.message_bar.text.text().lower()
    assert page.test_button.isEnabled()


def test_no_keyring_backend_says_so_and_offers_session_only(
        page: Any, qtbot: Any, sandbox: Any, monkeypatch: Any, main_window: Any,
        no_keyring_backend: Any) -> None:
    page.refresh()
    qtbot.waitUntil(lambda: page.banner.isVisible(), timeout=15_000)
    assert "never written to a file" in page.banner_text.text()
    asked_dialog = answer_dialog(monkeypatch, sandbox_input(sandbox))
    choices: list[tuple[str, bool]] = []

    def choose(cls: Any, parent: Any, message: str, locked: bool) -> str:
        choices.append((message, locked))
        return SESSION_ONLY

    monkeypatch.setattr(KeyringChoice, "ask", classmethod(choose))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    row = wait_listed(page, qtbot, "eu-sandbox")
    assert "session only" in asked_dialog[0][1]
    assert len(choices) == 1 and choices[0][1] is False
    assert row.keys == "All keys: held for this session only"
    page.select("eu-sandbox")
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.checks.get("eu-sandbox", "").startswith("works"),
                    timeout=15_000)


def test_no_keyring_and_cancel_saves_nothing(page: Any, qtbot: Any, sandbox: Any,
                                             monkeypatch: Any, main_window: Any,
                                             no_keyring_backend: Any) -> None:
    answer_dialog(monkeypatch, sandbox_input(sandbox))
    asked: list[str] = []
    monkeypatch.setattr(KeyringChoice, "ask",
                        classmethod(lambda c, p, m, locked: asked.append(m)))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(asked), timeout=15_000)
    qtbot.waitUntil(lambda: main_window.message_bar.text.text() == "Nothing was saved.",
                    timeout=15_000)
    qtbot.waitUntil(lambda: page._listing_task is None, timeout=15_000)
    assert page.rows == []
    assert page.empty_label.isVisibleTo(page)


def test_locked_keyring_offers_unlock_and_retry(page: Any, qtbot: Any, sandbox: Any,
                                                monkeypatch: Any, locked_keyring: Any) -> None:
    page.refresh()
    qtbot.waitUntil(lambda: page.banner.isVisible(), timeout=30_000)
    assert page.retry_button.text() == "Unlock and retry"
    answer_dialog(monkeypatch, sandbox_input(sandbox))
    answers = [RETRY, SESSION_ONLY]
    seen: list[bool] = []

    def choose(cls: Any, parent: Any, message: str, locked: bool) -> str:
        seen.append(locked)
        return answers.pop(0)

    monkeypatch.setattr(KeyringChoice, "ask", classmethod(choose))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    # Each attempt against the locked keyring may wait for gnome-keyring's unlock prompt until
    # the keyring timeout (10 s): allow for two such waits on a loaded machine.
    row = wait_listed(page, qtbot, "eu-sandbox", timeout_ms=45_000)
    assert seen == [True, True]  # retried while still locked, then chose the session
    assert "held for this session only" in row.keys


def test_edit_keeps_the_name_and_replaces_only_typed_keys(
        page: Any, qtbot: Any, sandbox: Any, monkeypatch: Any, sandbox_factory: Any) -> None:
    monkeypatch.setattr(KeyringChoice, "ask", classmethod(lambda c, p, m, locked: SESSION_ONLY))
    answer_dialog(monkeypatch, sandbox_input(sandbox, "to-edit"))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    wait_listed(page, qtbot, "to-edit")
    from optout_desk.workflows.sync import sync_optouts

    assert sync_optouts("to-edit").total == 250
    other = sandbox_factory(records=3, seed=2)
    asked = answer_dialog(monkeypatch, ConnectionInput(
        name="to-edit", system="checkmarket", region="custom", custom_url=other.base_url,
        secrets={}, original_name="to-edit"))
    page.select("to-edit")
    qtbot.mouseClick(page.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: next(r for r in page.rows if r.name == "to-edit").base_url
                    == other.base_url, timeout=15_000)
    assert asked[0][0].name == "to-edit"
    assert secrets.read_secret("to-edit", "KEY") == sandbox.key
    # Another address: the list cached from the old one is not merged with the new one's.
    bar = page.window().message_bar
    qtbot.waitUntil(lambda: "was dropped" in bar.text.text(), timeout=10_000)
    assert "the list cached from the old one (250 opt-outs) was dropped: fetch it again" in \
        bar.text.text()


def test_edit_with_other_keys_says_the_cached_list_was_dropped(
        page: Any, qtbot: Any, sandbox: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(KeyringChoice, "ask", classmethod(lambda c, p, m, locked: SESSION_ONLY))
    answer_dialog(monkeypatch, sandbox_input(sandbox, "rekeyed"))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    wait_listed(page, qtbot, "rekeyed")
    from optout_desk.sandbox.checkmarket import ALL_ROLES
    from optout_desk.workflows.sync import sync_optouts

    assert sync_optouts("rekeyed").total == 250
    sandbox.state.add_key(sandbox.master_key, "rotated-key-0123456789", set(ALL_ROLES))
    answer_dialog(monkeypatch, ConnectionInput(
        name="rekeyed", system="checkmarket", region="custom", custom_url=sandbox.base_url,
        secrets={"KEY": "rotated-key-0123456789"}, original_name="rekeyed"))
    page.select("rekeyed")
    qtbot.mouseClick(page.edit_button, Qt.MouseButton.LeftButton)
    bar = page.window().message_bar
    qtbot.waitUntil(lambda: "was dropped" in bar.text.text(), timeout=15_000)
    assert "Its keys changed (they may be another account's), so the list cached with the " \
        "old keys (250 opt-outs) was dropped: fetch it again." in bar.text.text()
    assert secrets.read_secret("rekeyed", "KEY") == "rotated-key-0123456789"


def test_dialog_validates_and_masks_keys(qtbot: Any) -> None:
    from optout_desk.ui.dialogs.connection import available_systems

    dialog = ConnectionDialog(None, available_systems())
    qtbot.addWidget(dialog)
    assert dialog.problem() == "Give the connection a name."
    dialog.name.setText("x")
    assert "Master key" in dialog.problem()
    key = dialog.secret_fields["KEY"]
    assert key.echoMode() == key.EchoMode.Password
    key.toggle.trigger()
    assert key.echoMode() == key.EchoMode.Normal
    dialog.region.setCurrentIndex(dialog.region.findData("custom"))
    for widget in dialog.secret_fields.values():
        widget.setText("k")
    assert dialog.problem() == "Enter the base URL, or choose a region."
    dialog.custom_url.setText("http://127.0.0.1:1/")
    assert dialog.problem() == ""
    assert dialog.value().secrets == {"MASTER_KEY": "k", "KEY": "k"}


def test_without_a_keyring_the_dialog_choice_is_the_one_message(
        page: Any, qtbot: Any, sandbox: Any, monkeypatch: Any, main_window: Any,
        no_keyring_backend: Any) -> None:
    page.refresh()
    qtbot.waitUntil(lambda: page.backend_state == "none", timeout=15_000)
    value = sandbox_input(sandbox)
    value.session_only = True
    asked = answer_dialog(monkeypatch, value)
    chosen: list[str] = []
    monkeypatch.setattr(KeyringChoice, "ask",
                        classmethod(lambda c, p, m, locked: chosen.append(m)))
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    row = wait_listed(page, qtbot, "eu-sandbox")
    assert asked[0][2] is True  # the dialog offered "this session only" itself
    assert chosen == []  # no second question after saving
    assert "held for this session only" in row.keys
    assert main_window.message_bar.text.text() == (
        "Connection eu-sandbox saved; its keys are held for this session only.")


def test_dialog_asks_for_the_session_only_choice_without_a_keyring(qtbot: Any) -> None:
    from optout_desk.ui.dialogs.connection import available_systems

    dialog = ConnectionDialog(None, available_systems(), session_only_choice=True)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.name.setText("x")
    for widget in dialog.secret_fields.values():
        widget.setText("k")
    assert "session only" in dialog.problem()
    dialog.session_only.setChecked(True)
    assert dialog.problem() == ""
    assert dialog.value().session_only is True


def test_remove_asks_with_cancel_as_the_default(page: Any, qtbot: Any) -> None:
    box, remove = ConnectionsPage.remove_box(page, "acme")
    qtbot.addWidget(box)
    assert box.defaultButton() is not remove
    assert box.defaultButton() is box.button(box.StandardButton.Cancel)
    assert box.escapeButton() is box.button(box.StandardButton.Cancel)
    assert "acme" in box.text()


def test_dialog_test_button_checks_the_typed_keys_before_saving(qtbot: Any,
                                                               sandbox: Any) -> None:
    from optout_desk.store import connections
    from optout_desk.store.db import connect
    from optout_desk.ui.dialogs.connection import available_systems

    dialog = ConnectionDialog(None, available_systems())
    qtbot.addWidget(dialog)
    dialog.name.setText("tested")
    dialog.region.setCurrentIndex(dialog.region.findData("custom"))
    dialog.custom_url.setText(sandbox.base_url)
    dialog.test_button.click()
    assert "to test them" in dialog.test_result.text()  # keys first
    dialog.secret_fields["MASTER_KEY"].setText(sandbox.master_key)
    dialog.secret_fields["KEY"].setText("wrong")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=15_000)
    assert "key" in dialog.test_result.text().lower()
    assert dialog.test_result.styleSheet()  # shown as a problem
    dialog.secret_fields["KEY"].setText(sandbox.key)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("These keys work"),
                    timeout=15_000)
    db = connect()
    try:
        assert not connections.exists(db, "tested")  # nothing was saved
    finally:
        db.close()


def test_tab_order_follows_the_fields(qtbot: Any) -> None:
    from optout_desk.ui.dialogs.connection import available_systems

    dialog = ConnectionDialog(None, available_systems())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    chain = dialog.tab_chain()
    assert chain[:3] == [dialog.name, dialog.system, dialog.region]
    dialog.name.setFocus()
    seen = [dialog.focusWidget()]
    for _ in range(len(chain) - 1):
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
        seen.append(dialog.focusWidget())
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    order = [dialog.system, dialog.region, dialog.secret_fields["MASTER_KEY"],
             dialog.secret_fields["KEY"], save]
    positions = [seen.index(widget) for widget in order]
    assert positions == sorted(positions)  # Tab walks the fields in the order shown


def test_demo_mode_shows_no_keyring_warning(qtbot: Any, no_keyring_backend: Any) -> None:
    from optout_desk.ui.app import ensure_application, prepare_database
    from optout_desk.ui.main_window import AppContext, MainWindow

    ensure_application()
    prepare_database()
    window = MainWindow(AppContext(demo=True))
    qtbot.addWidget(window)
    page = window.show_page("connections")
    qtbot.waitUntil(lambda: page._listing_task is None and page.backend_state == "none",
                    timeout=15_000)
    assert not page.banner.isVisibleTo(page)
    assert "held in memory for this session only" in page.intro.text()
    window.close()
