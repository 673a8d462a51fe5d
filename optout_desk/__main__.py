"""`python -m optout_desk` is the same as the `optout-desk` command."""

from optout_desk.cli import main

raise SystemExit(main())
