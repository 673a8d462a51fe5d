"""Demo mode: the sandbox starts in a worker, demo connections appear with session-only keys,
a fetch works, and the sandbox stops on quit; the real data folder is left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optout_desk import paths, secrets
from optout_desk.ui.app import build_window, ensure_application


def _accept(mapping: Any) -> Any:
    from optout_desk.ui.dialogs.mapping import MappingChoice

    return MappingChoice(mapping=mapping, sheet=None)


def test_demo_mode_starts_the_sandbox_and_fetches(qtbot: Any, isolated_home: Path,
                                                  monkeypatch: Any) -> None:
    ensure_application()
    window, controller = build_window(demo=True)
    qtbot.addWidget(window)
    # OPTOUT_DESK_HOME names a folder, so the demo uses it (see ui/demo.py).
    assert window.context.temporary_data_dir is None
    assert paths.data_dir() == isolated_home
    assert controller is not None
    window.show()
    errors: list[BaseException] = []
    controller._failed = errors.append  # type: ignore[method-assign]
    controller.start()
    try:
        qtbot.waitUntil(lambda: controller.started is not None or bool(errors), timeout=30_000)
        assert errors == [], getattr(errors[0], '_desk_traceback', errors)
        assert window.context.demo_connections == ["demo-eu", "demo-us", "demo-mykaarma",
                                                   "demo-dy"]
        assert window.demo_badge.isVisible()
        assert secrets.describe_location("demo-eu", "KEY") == "held for this session only"
        page = window.show_page("optouts")
        qtbot.waitUntil(lambda: page.connection.count() == 2, timeout=15_000)
        page.connection.setCurrentText("demo-eu")
        page.fetch()
        qtbot.waitUntil(lambda: not page.fetching, timeout=60_000)
        qtbot.waitUntil(lambda: page.model.total_rows > 0, timeout=15_000)
        assert page.model.total_rows == len(window.context.sandbox.state.optouts())

        # The demo CRM export is offered under Reconcile's recent files; comparing it with
        # demo-eu lands rows in every bucket.
        from optout_desk.ui.dialogs.mapping import MappingDialog

        spreadsheet = controller.started.spreadsheet
        assert spreadsheet is not None and spreadsheet.is_file()
        reconcile = window.show_page("reconcile")
        assert reconcile.recent_files()[0] == str(spreadsheet)
        monkeypatch.setattr(MappingDialog, "ask",
                            classmethod(lambda cls, parent, table, mapping: _accept(mapping)))
        reconcile.open_file(spreadsheet)
        qtbot.waitUntil(lambda: reconcile.run is not None, timeout=60_000)
        counts = reconcile.run.counts
        assert all(counts[bucket] > 0 for bucket in ("to_submit", "in_sync", "invalid",
                                                       "duplicate", "missing_from_crm")), counts
    finally:
        window.close()
        sandbox = window.context.sandbox
        controller.stop()
    assert controller.started is None
    assert sandbox is not None


def test_demo_without_a_named_folder_uses_a_temporary_one(monkeypatch: Any, qtbot: Any) -> None:
    from optout_desk.ui import demo

    monkeypatch.setattr(demo, "user_named_data_dir", lambda: False)
    ensure_application()
    window, _controller = build_window(demo=True)
    qtbot.addWidget(window)
    folder = window.context.temporary_data_dir
    assert folder is not None and paths.data_dir() == folder
    window.close()
    demo.remove_temporary_data_dir(folder)
    assert not folder.exists()
