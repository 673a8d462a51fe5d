"""Opt-out Desk: keep opt-outs in sync across survey, email and SMS platforms and your CRM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("optout-desk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

import logging as _logging

# Until setup_logging() adds the log file, nothing the desk logs may reach stderr through
# logging's last-resort handler (tracebacks on the terminal, personal data in CI output).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
