"""The frozen app's entry point: PyInstaller freezes a script, and this one is the same as
`python -m optout_desk` (the spec collects the whole optout_desk package next to it).

The frozen app is also the process that parses untrusted spreadsheets (files/_isolated.py starts
it again with its reader flag) and the one that sends a submission for the window
(workflows/submission_process.py, with its sender flag) and the one that commits the webhook
receiver's events (webhooks/event_store.py, with its store flag): a frozen app has no Python to
run `-c` with."""

from optout_desk.files._isolated import run_if_reader_child

run_if_reader_child()

from optout_desk.workflows.submission_process import run_if_sender_child  # noqa: E402

run_if_sender_child()

from optout_desk.webhooks.event_store import run_if_store_child  # noqa: E402

run_if_store_child()

from optout_desk.cli import main  # noqa: E402 - after the children have gone their way

raise SystemExit(main())
