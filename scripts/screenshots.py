"""Render each page of the app in demo mode to docs/screenshots/<page>.png (1280x800).

    make screenshots        (or: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py)
    scripts/screenshots.py --size 1024x700 --out /tmp/shots     (another size, another folder)

Runs offscreen (QWidget.grab works without an X server) or under a real X server
(QT_QPA_PLATFORM=xcb under xvfb-run), in a throwaway data folder, against the built-in sandbox,
with the demo-eu list fetched so the tables and the chart show data, the demo CRM export
reconciled (its mapping step saved as mapping.png) and its To submit bucket sent to Submit.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def wait_until(app: object, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        app.processEvents()  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    width, height = (int(part) for part in args.size.lower().split("x"))
    os.environ["OPTOUT_DESK_HOME"] = tempfile.mkdtemp(prefix="optout-desk-shots-")
    from optout_desk.ui import tasks
    from optout_desk.ui.app import build_window, ensure_application
    from optout_desk.ui.pages import PAGES

    app = ensure_application()
    window, controller = build_window(demo=True)
    assert controller is not None
    window.resize(width, height)
    window.show()
    controller.start()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        wait_until(app, lambda: controller.started is not None)
        optouts = window.show_page("optouts")
        wait_until(app, lambda: optouts.connection.count() >= 1)
        optouts.connection.setCurrentText("demo-eu")
        optouts.fetch()
        wait_until(app, lambda: not optouts.fetching)
        wait_until(app, lambda: not tasks.running_tasks())
        connections = window.show_page("connections")
        connections.refresh()
        wait_until(app, lambda: connections._listing_task is None)
        connections.select("demo-eu")
        connections.test_selected()
        wait_until(app, lambda: not tasks.running_tasks())
        # Reconcile the demo CRM export against demo-eu, and hand its "To submit" bucket to the
        # Submit page, so both show what an operator sees mid-task.
        from optout_desk.ui.dialogs.mapping import MappingChoice, MappingDialog

        def accept_proposal(cls: object, parent: object, table: object,
                            mapping: object) -> MappingChoice:
            dialog = MappingDialog(table, mapping, window)  # type: ignore[arg-type]
            dialog.show()
            app.processEvents()
            dialog.grab().save(str(out / "mapping.png"))
            print(f"wrote {out / 'mapping.png'}")
            choice = dialog.choice()
            dialog.deleteLater()
            return choice

        MappingDialog.ask = classmethod(accept_proposal)  # type: ignore[method-assign, assignment]
        reconcile = window.show_page("reconcile")
        reconcile._load_connections()
        wait_until(app, lambda: reconcile.against_value() is not None)
        reconcile.open_file(controller.started.spreadsheet)
        wait_until(app, lambda: reconcile.run is not None)
        wait_until(app, lambda: not tasks.running_tasks())
        to_submit = reconcile.tables["to_submit"]
        to_submit.view.selectRow(0)  # the Explain pane shows why the row is there
        reconcile.send_to_submit()
        window.message_bar.dismiss()
        for spec in PAGES:
            window.show_page(spec.key)
            wait_until(app, lambda: not tasks.running_tasks())
            app.processEvents()
            path = out / f"{spec.key}.png"
            window.grab().save(str(path))
            print(f"wrote {path}")
        # The To-submit bucket to all three demo platforms: the preview shown before anything
        # is sent, the destinations sending side by side, then the outcomes.
        submit = window.show_page("submit")
        for name in ("demo-eu", "demo-mykaarma", "demo-dy"):
            submit.matrix.set_ticked(name, True)
        submit.make_plan()
        wait_until(app, lambda: submit.preview is not None and submit.preview.isVisible())
        app.processEvents()
        path = out / "preview.png"
        submit.preview.grab().save(str(path))
        print(f"wrote {path}")
        submit.preview.confirm_button.click()
        wait_until(app, lambda: any(row.bar.value() > 0 for row in submit.sending.rows.values()))
        app.processEvents()
        path = out / "submit-sending.png"
        window.grab().save(str(path))
        print(f"wrote {path}")
        wait_until(app, lambda: submit.outcome is not None)
        wait_until(app, lambda: submit.outcomes.isVisible())
        window.message_bar.dismiss()
        app.processEvents()
        path = out / "submit-outcome.png"
        window.grab().save(str(path))
        print(f"wrote {path}")
    finally:
        window.close()
        controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
