"""The root of every error the desk raises on purpose.

Each error carries a message written for an operator (one or two plain sentences: what happened
and what to do) and the exit code the CLI uses for it. Secrets and personal data never go into
these messages.
"""

from __future__ import annotations

EXIT_FAILED = 1  # the operation failed: network, API, keyring
EXIT_BAD_INPUT = 2  # bad usage or bad input


class DeskError(Exception):
    """An expected failure with a message fit to show an operator."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInputError(DeskError):
    """The user gave something the desk cannot use (a bad file, a bad argument)."""

    exit_code = EXIT_BAD_INPUT


class Cancelled(DeskError):
    """The user cancelled the operation; nothing half-done was kept."""

    def __init__(self, message: str = "Cancelled; nothing was changed.") -> None:
        super().__init__(message)
