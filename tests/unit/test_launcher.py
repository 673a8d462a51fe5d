"""The frozen app's entry point knows every child process of the desk by its flag, and hands
each to the module whose child_main runs it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from optout_desk.files import _isolated
from optout_desk.webhooks import event_store
from optout_desk.workflows import submission_process

LAUNCHER = Path(__file__).resolve().parents[2] / "packaging" / "launcher.py"


def _children() -> dict[str, str]:
    tree = ast.parse(LAUNCHER.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_CHILDREN":
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("packaging/launcher.py has no _CHILDREN")


def test_every_child_flag_leads_to_the_module_that_runs_it() -> None:
    assert _children() == {
        _isolated.READER_FLAG: "optout_desk.files._isolated",
        submission_process.SENDER_FLAG: "optout_desk.workflows.submission_process",
        event_store.STORE_FLAG: "optout_desk.webhooks.event_store",
    }
    for module in _children().values():
        assert callable(importlib.import_module(module).child_main)
