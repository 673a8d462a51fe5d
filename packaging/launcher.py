"""The frozen app's entry point (PyInstaller runs this as a script, so it cannot be the
package's own __main__.py, whose imports are relative to the package)."""

from optout_desk.cli import main

raise SystemExit(main())
