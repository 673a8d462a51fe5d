"""Typed failures of a platform call. The UI and CLI map these types to messages and actions;
nobody parses error strings. No message ever contains a key or a personal identifier."""

from __future__ import annotations

from optout_desk.core.errors import DeskError
from optout_desk.core.wording import counted


class ConnectorError(DeskError):
    """A platform call failed."""


class AuthenticationError(ConnectorError):
    """The platform refused the keys (HTTP 401)."""


class MissingRoleError(ConnectorError):
    """The key is valid but lacks the role this call needs (HTTP 403)."""

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.role = role


class ThrottledError(ConnectorError):
    """The platform's rate limit was hit and retries ran out."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlatformError(ConnectorError):
    """The platform answered with an error status (5xx, or a body-level status under 200)."""

    def __init__(self, message: str, http_status: int | None, body_status: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body_status = body_status


class RejectedRequestError(PlatformError):
    """The platform refused the request itself (4xx other than 401/403/429): retrying the same
    request will not help."""


class PayloadRejectedError(RejectedRequestError):
    """The platform refused what one payload carries (it named the values or their format):
    that payload failed, the others can still go. `codes` are the platform's error codes."""

    def __init__(self, message: str, http_status: int | None = None,
                 body_status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message, http_status, body_status)
        self.codes = codes


class NetworkError(ConnectorError):
    """The platform could not be reached (DNS, refused, dropped connection, TLS)."""


class PlatformTimeoutError(ConnectorError):
    """The platform did not answer in time."""


class MalformedResponseError(ConnectorError):
    """The platform answered with something that is not the JSON it documents."""


class ConfigurationError(ConnectorError):
    """The connection's settings cannot work (e.g. plain http to a remote host)."""

    exit_code = 2


class IncompleteFetchError(ConnectorError):
    """A list fetch did not add up: the distinct opt-outs fetched differ from the count the
    platform itself reports, even after re-asking. Nothing from the fetch may be kept."""

    def __init__(self, platform: str, expected: int, got: int, *,
                 kept: str = "nothing from this fetch was kept", what: str = "opt-outs") -> None:
        self.platform = platform
        self.expected = expected
        self.got = got
        self.what = what
        super().__init__(
            f"{platform} said it holds {expected:,} {what} but the fetch got {got:,}; {kept}. "
            f"Fetch again later; if the numbers keep disagreeing, {platform} is serving pages "
            "that do not add up to its own count: report both numbers to its support."
        )

    def left_unchanged(self, cached: int) -> IncompleteFetchError:
        """The same failure, told the way the sync workflow ends it: the cache untouched."""
        return IncompleteFetchError(
            self.platform, self.expected, self.got, what=self.what,
            kept=f"the cached list was left unchanged ({counted(cached, 'opt-out')})")
