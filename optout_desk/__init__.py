"""Opt-out Desk: keep opt-outs in sync across survey, email and SMS platforms and your CRM."""

import logging as _logging
from functools import cache as _cache


def __getattr__(name: str) -> str:
    # __version__ on first use: importlib.metadata costs 50 ms, and the desk's child processes
    # (the file reader, the sender) import this package without ever asking.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@_cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optout-desk")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


# Until setup_logging() adds the log file, nothing the desk logs may reach stderr through
# logging's last-resort handler (tracebacks on the terminal, personal data in CI output).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
