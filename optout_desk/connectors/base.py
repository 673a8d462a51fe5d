"""The connector contract: what a platform connector declares and the protocols it implements.

A system (CheckMarket, myKaarma, Dynamic Yield…) is described once by a `SystemInfo` in
connectors/registry.py: the secrets it needs (with the operator's names for them), its
non-secret settings (with defaults and bounds), its regions, the identifier kinds it takes and
what it can do. Its client implements one protocol per capability:

- LIST    — fetch the platform's whole opt-out list, incremental (`ListingClient`);
- LOOKUP  — given identifiers, say which the platform holds as opted out (`LookupClient`);
- SUBMIT  — send one frozen payload (`SubmittingClient`); the payloads themselves are built by
            the system's pure `SubmitFormat` (core/plan.PayloadFormat) when the plan is
            previewed, so planning needs no keys and no network;
- RECEIVE — a webhook source (the receiver in webhooks/).

Workflows, the store and the pages ask the registry what a system can do and talk to its client
through these protocols only: no platform's field names are known outside connectors/ (and the
sandbox that simulates the platforms).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from optout_desk.connectors.errors import ConfigurationError
from optout_desk.core.identifiers import IdKind
from optout_desk.core.plan import Payload, PayloadFormat
from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.core.records import OptOutRecord


class Capability(StrEnum):
    LIST = "list"
    LOOKUP = "lookup"
    SUBMIT = "submit"
    RECEIVE = "receive"


CAPABILITY_LABELS: dict[Capability, str] = {
    Capability.LIST: "fetch its opt-out list",
    Capability.LOOKUP: "check given identifiers",
    Capability.SUBMIT: "take opt-outs",
    Capability.RECEIVE: "push opt-outs by webhook",
}


@dataclass(frozen=True)
class SecretField:
    """A secret a connection needs: `name` files it in the keyring and names its environment
    variable (OPTOUT_DESK_SECRET_<CONNECTION>_<NAME>); `label` is what the operator calls it."""

    name: str
    label: str
    where_to_find: str = ""  # "CheckMarket: Account > API keys"


@dataclass(frozen=True)
class Setting:
    """A non-secret, per-connection setting, declared once: its type, default and bounds drive
    the CLI flag, the Connections dialog field and the validation of stored values."""

    name: str
    label: str
    kind: type  # int, float, str, bool, or list (of text; given as a list or comma-separated)
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # the connection cannot work without it (e.g. a department UUID)
    advanced: bool = True  # shown under "More settings" in the dialog; False: always shown
    pattern: re.Pattern[str] | None = None  # what a text (or each list item) must look like
    what: str = ""  # the pattern in words, for the refusal: "a channel name such as email"

    @property
    def flag(self) -> str:
        """The CLI option: --department-uuid for department_uuid."""
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any) -> Any:
        """The value as this setting's type; ConfigurationError saying what would work."""
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise self._refuse(raw, "give true or false")
        if self.kind is list:
            if isinstance(raw, str):
                items: list[Any] = [part for part in raw.split(",") if part.strip()]
            elif isinstance(raw, list | tuple):
                items = list(raw)
            else:
                raise self._refuse(raw, f"give {self.what or 'names'}, separated by commas")
            return list(dict.fromkeys(self._text(item) for item in items))
        if self.kind is str:
            return self._text(raw)
        if isinstance(raw, bool):
            raise self._refuse(raw, self._range())
        try:
            value = self.kind(raw)
        except (TypeError, ValueError):
            raise self._refuse(raw, self._range()) from None
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            raise self._refuse(raw, self._range())
        return value

    def _text(self, raw: Any) -> str:
        text = raw.strip() if isinstance(raw, str) else None
        if text is None:
            raise self._refuse(raw, f"give {self.what or 'a text'}")
        if self.choices and text not in self.choices:
            raise self._refuse(raw, "give " + " or ".join(self.choices))
        if text and self.pattern is not None and not self.pattern.fullmatch(text):
            raise self._refuse(raw, f"give {self.what or 'a plain name'}")
        return text

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return f"give a number from {self.low:g} to {self.high:g}"
        return "give a number"

    def _refuse(self, raw: Any, hint: str) -> ConfigurationError:
        return ConfigurationError(
            f"The setting {self.name} = {raw!r} is not usable: {hint}.")


def validate_settings(specs: Sequence[Setting], values: Mapping[str, Any], *,
                      require: bool = True) -> dict[str, Any]:
    """Every declared setting's value: the stored one parsed, else its default. Unknown names
    are ignored (a setting a newer version wrote); a required one left empty is refused
    (unless `require` is off: the connector then says it in its own words)."""
    chosen: dict[str, Any] = {}
    for spec in specs:
        raw = values.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip() and spec.kind is not str):
            value = spec.default
        else:
            value = spec.parse(raw)
        if require and spec.required and (value is None or value == ""):
            raise ConfigurationError(
                f"The setting {spec.label} is required: give it with {spec.flag} (or in the "
                "connection's settings).")
        chosen[spec.name] = value
    return chosen


@dataclass(frozen=True)
class CheckResult:
    """What `check()` found: a sentence for the operator, and the list's size where known."""

    message: str
    total_optouts: int | None = None
    proven: bool = True  # False: the platform answered, but could not prove the keys yet


@dataclass(frozen=True)
class SendResult:
    """A payload the platform accepted. `warnings` are the platform's own (kept in the receipt);
    `message` says what was accepted, in the operator's words."""

    http_status: int
    message: str
    attempts: int
    body_status: int | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LookupAnswer:
    """A platform's answer for one identifier: opted out or not, and since when if it says."""

    opted_out: bool
    state: str = ""  # the platform's own word for it ("OPTED_OUT")
    changed_at: str | None = None


@runtime_checkable
class Client(Protocol):
    """Every connector client: one platform account, closed by its owner."""

    @property
    def host(self) -> str: ...

    def check(self) -> CheckResult: ...

    def close(self) -> None: ...


@runtime_checkable
class ListingClient(Client, Protocol):
    def list_optouts(self, *, since: str | None = None, survey_id: int | None = None,
                     progress: ProgressCallback = ..., cancel: CancelToken = ...
                     ) -> list[OptOutRecord]: ...


@runtime_checkable
class LookupClient(Client, Protocol):
    def lookup(self, identifiers: Sequence[tuple[IdKind, str]], *,
               progress: ProgressCallback = ..., cancel: CancelToken = ...
               ) -> dict[tuple[IdKind, str], LookupAnswer]: ...


@runtime_checkable
class SubmittingClient(Client, Protocol):
    def send(self, payload: Payload, cancel: CancelToken = ...) -> SendResult: ...


@dataclass(frozen=True)
class Pacing:
    """How a destination wants to be sent to: requests in flight and requests per second
    (0 = as fast as the platform answers)."""

    concurrency: int = 1
    per_second: float = 0.0

    def seconds_for(self, requests: int, latency_s: float = 0.1) -> float:
        """A preview's estimate of how long `requests` take."""
        if requests <= 0:
            return 0.0
        by_latency = requests / max(1, self.concurrency) * latency_s
        by_rate = requests / self.per_second if self.per_second > 0 else 0.0
        return max(by_latency, by_rate)


@dataclass(frozen=True)
class KindRoute:
    """Where one kind of identifier goes on a destination: "emails → email channel"."""

    kind: IdKind
    label: str


@dataclass(frozen=True)
class Routes:
    """The kinds a destination takes and under which name, in display order."""

    routes: tuple[KindRoute, ...] = field(default=())

    @property
    def kinds(self) -> frozenset[IdKind]:
        return frozenset(route.kind for route in self.routes)

    def label(self, kind: IdKind) -> str | None:
        for route in self.routes:
            if route.kind is kind:
                return route.label
        return None


ClientFactory = Callable[[str, Mapping[str, str], Mapping[str, Any]], Client]
FormatFactory = Callable[[Mapping[str, Any]], PayloadFormat]


@dataclass(frozen=True)
class SystemInfo:
    """Everything the desk knows about one platform, declared by its connector module and
    listed by connectors/registry.py. `open_client(base_url, secrets, settings)` makes a client
    (settings already validated); `payload_format(settings)` the pure formatter of a
    destination; `pacing(settings)` how fast to send to it."""

    id: str
    label: str
    secrets: tuple[SecretField, ...]
    settings: tuple[Setting, ...]
    capabilities: frozenset[Capability]
    regions: Mapping[str, str] = field(default_factory=dict)  # region -> base URL
    default_region: str = ""
    routes: Routes = field(default_factory=Routes)
    survey_scopes: bool = False  # its list can be fetched per survey
    open_client: ClientFactory | None = None
    payload_format: FormatFactory | None = None
    pacing: Callable[[Mapping[str, Any]], Pacing] = field(default=lambda _: Pacing())
    verify_hint: str = ""  # how a submission to it can be confirmed, when it cannot list

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(secret.name for secret in self.secrets)

    @property
    def secret_labels(self) -> tuple[str, ...]:
        return tuple(secret.label for secret in self.secrets)

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def setting(self, name: str) -> Setting | None:
        return next((spec for spec in self.settings if spec.name == name), None)

    def abilities(self) -> str:
        """"fetch its opt-out list and take opt-outs" — what a connection to it can do."""
        order = [c for c in Capability if c in self.capabilities]
        labels = [CAPABILITY_LABELS[c] for c in order]
        if len(labels) <= 1:
            return "".join(labels)
        return ", ".join(labels[:-1]) + " and " + labels[-1]
