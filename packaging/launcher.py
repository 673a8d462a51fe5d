"""The frozen app's entry point: PyInstaller freezes a script, and this one is the same as
`python -m optout_desk` (the spec collects the whole optout_desk package next to it).

The frozen app is also the process that parses untrusted spreadsheets (files/_isolated.py starts
it again with its reader flag: a frozen app has no Python to run `-c` with)."""

from optout_desk.files._isolated import run_if_reader_child

run_if_reader_child()

from optout_desk.cli import main  # noqa: E402 - after the reader child has gone its way

raise SystemExit(main())
