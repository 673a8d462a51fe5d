"""The frozen app's entry point: PyInstaller freezes a script, and this one is the same as
`python -m optout_desk` (the spec collects the whole optout_desk package next to it)."""

from optout_desk.cli import main

raise SystemExit(main())
