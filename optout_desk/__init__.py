"""Opt-out Desk: keep opt-outs in sync across survey, email and SMS platforms and your CRM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("optout-desk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
