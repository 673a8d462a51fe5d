"""ui/chart_library.py: pyqtgraph is imported on a worker only once the GUI thread has created
every lazily-made PySide6 type it touches (the race that crashed the demo with SIGSEGV)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from optout_desk.ui import chart_library

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: in this one pyqtgraph (and every type) is loaded already.
_FRESH = textwrap.dedent("""
    import importlib, sys, threading
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QWidget
    app = QApplication([])
    from optout_desk.ui import chart_library

    seen = {}
    real = chart_library._import_pyqtgraph

    def watched(progress, cancel):
        seen["worker"] = threading.current_thread() is not threading.main_thread()
        lazy = []
        for name in chart_library.QT_MODULES:
            module = sys.modules.get("PySide6." + name)
            if module is None:
                lazy.append(name + " (not imported)")
                continue
            lazy += [name + "." + n for n in dir(module) if n not in module.__dict__]
        seen["still_lazy"] = lazy
        return real(progress, cancel)

    chart_library._import_pyqtgraph = watched
    owner, closed = QWidget(), QWidget()
    calls = []
    chart_library.when_ready(owner, lambda: calls.append("owner"))
    chart_library.when_ready(closed, lambda: calls.append("closed"))
    closed.deleteLater()
    QTimer.singleShot(20000, app.quit)

    def check():
        if "owner" in calls:
            app.quit()
        else:
            QTimer.singleShot(20, check)

    check()
    app.exec()
    chart_library.when_ready(owner, lambda: calls.append("later"))
    print(seen["worker"], len(seen["still_lazy"]), seen["still_lazy"][:5], calls,
          "pyqtgraph" in sys.modules)
""")


def test_worker_imports_pyqtgraph_only_after_every_type_exists() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True,
                          env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    # On a worker; no type left for it to create; the closed page not called; a late caller
    # called at once.
    assert done.stdout.split("\n")[-2] == "True 0 [] ['owner', 'later'] True"


def test_when_ready_calls_back_at_once_once_loaded(qtbot: Any) -> None:
    import pyqtgraph  # noqa: F401  (loaded: nothing to wait for)

    calls: list[str] = []
    chart_library.when_ready(QObject(), lambda: calls.append("now"))
    assert calls == ["now"]
