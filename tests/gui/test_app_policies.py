"""App-level policies: full garbage collections only while no task runs."""

from __future__ import annotations

import gc
from typing import Any

from optout_desk.ui.app import IdleCollector, ensure_application, install_gc_policy


def test_full_collections_only_when_idle(monkeypatch: Any) -> None:
    previous = gc.get_threshold()
    app = ensure_application()
    try:
        install_gc_policy(app)
        collector = app.findChild(IdleCollector)
        assert collector is not None and gc.get_threshold()[2] >= 1_000_000
        calls: list[int] = []
        monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or 0)
        from optout_desk.ui import tasks

        monkeypatch.setattr(tasks, "running_tasks", lambda: [object()])
        collector.collect_if_idle()
        assert calls == []
        monkeypatch.setattr(tasks, "running_tasks", lambda: [])
        collector.collect_if_idle()
        assert calls == [1]
    finally:
        collector = app.findChild(IdleCollector)
        if collector is not None:
            collector.timer.stop()
            collector.setParent(None)
        gc.set_threshold(*previous)
