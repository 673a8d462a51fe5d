"""The frozen app's entry point: PyInstaller freezes a script, and this one is the same as
`python -m optout_desk` (the spec collects the whole optout_desk package next to it).

The frozen app is also each child process of the desk (a frozen app has no Python to run `-c`
with), started again with one flag as its only argument: the reader that parses untrusted
spreadsheets (files/_isolated.py), the sender of the window's submissions
(workflows/submission_process.py) and the store of the webhook receiver's events
(webhooks/event_store.py). The flag is looked at before anything is imported: every start of
the app would otherwise pay for the children's imports (keyring, SQLite: a quarter second).
"""

import sys

# Each is its module's READER_FLAG / SENDER_FLAG / STORE_FLAG (tests/unit/test_launcher.py).
_CHILDREN = {
    "--optout-desk-file-reader": "optout_desk.files._isolated",
    "--optout-desk-sender": "optout_desk.workflows.submission_process",
    "--optout-desk-event-store": "optout_desk.webhooks.event_store",
}

if len(sys.argv) == 2 and sys.argv[1] in _CHILDREN:
    from optout_desk.frames import run_child

    run_child(_CHILDREN[sys.argv[1]])  # the module's child_main, then exit

from optout_desk.cli import main  # noqa: E402 - after the children have gone their way

raise SystemExit(main())
