"""Which platforms the desk can connect to: the only place that knows which systems exist.

Each connector module declares its system (secrets, settings, regions, identifier kinds,
capabilities, client and payload format, see connectors/base.py); this module lists them and
answers the questions every caller asks: what does a system need, what can it do, open me a
client, format a plan for it. The UI and the CLI offer what a system declares, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optout_desk.connectors import checkmarket, dynamic_yield, inbox_relay, mykaarma
from optout_desk.connectors.base import (
    Capability,
    Client,
    ListingClient,
    LookupClient,
    Pacing,
    SecretField,
    SubmittingClient,
    SystemInfo,
    validate_settings,
)
from optout_desk.connectors.errors import ConfigurationError
from optout_desk.connectors.http import validate_base_url
from optout_desk.core.plan import PayloadFormat

CUSTOM_REGION = "custom"


def _checkmarket_client(base_url: str, secrets: Mapping[str, str],
                        settings: Mapping[str, Any]) -> Client:
    return checkmarket.CheckMarketClient(
        checkmarket.CheckMarketSettings.from_mapping(base_url, settings),
        secrets["MASTER_KEY"], secrets["KEY"])


def _checkmarket_pacing(settings: Mapping[str, Any]) -> Pacing:
    return Pacing(concurrency=1)  # one POST at a time: batches of 500 are few


def _mykaarma_client(base_url: str, secrets: Mapping[str, str],
                     settings: Mapping[str, Any]) -> Client:
    return mykaarma.MyKaarmaClient(mykaarma.MyKaarmaSettings.from_mapping(base_url, settings),
                                   secrets["USERNAME"], secrets["PASSWORD"])


def _dynamic_yield_client(base_url: str, secrets: Mapping[str, str],
                          settings: Mapping[str, Any]) -> Client:
    return dynamic_yield.DynamicYieldClient(
        dynamic_yield.DynamicYieldSettings.from_mapping(base_url, settings), secrets["API_KEY"])


def _relay_client(base_url: str, secrets: Mapping[str, str],
                  settings: Mapping[str, Any]) -> Client:
    return inbox_relay.InboxRelayClient(base_url, secrets["TOKEN"])


def _paced(settings: Mapping[str, Any]) -> Pacing:
    """Concurrency and requests per second as the connection's settings say (the client
    paces itself; this is what the preview estimates with)."""
    return Pacing(int(settings.get("concurrency") or 1),
                  float(settings.get("requests_per_second") or 0.0))


SYSTEMS: dict[str, SystemInfo] = {
    info.id: info for info in (
        SystemInfo(
            id="checkmarket",
            label="CheckMarket (Medallia Agile Research)",
            secrets=(SecretField("MASTER_KEY", "Master key", "CheckMarket: Account > API keys"),
                     SecretField("KEY", "Key", "CheckMarket: Account > API keys")),
            settings=checkmarket.SETTINGS,
            capabilities=frozenset({Capability.LIST, Capability.SUBMIT, Capability.RECEIVE}),
            regions={**checkmarket.REGIONS, CUSTOM_REGION: ""},
            default_region="eu",
            routes=checkmarket.ROUTES,
            survey_scopes=True,
            open_client=_checkmarket_client,
            payload_format=checkmarket.CheckMarketFormat.from_settings,
            pacing=_checkmarket_pacing,
        ),
        SystemInfo(
            id="mykaarma",
            label="myKaarma",
            secrets=(SecretField("USERNAME", "Username", "from your myKaarma representative"),
                     SecretField("PASSWORD", "Password", "from your myKaarma representative")),
            settings=mykaarma.SETTINGS,
            capabilities=frozenset({Capability.LOOKUP, Capability.SUBMIT}),
            regions={"default": mykaarma.DEFAULT_BASE_URL, CUSTOM_REGION: ""},
            default_region="default",
            routes=mykaarma.ROUTES,
            open_client=_mykaarma_client,
            payload_format=mykaarma.MyKaarmaFormat.from_settings,
            pacing=_paced,
            verify_hint="looked up again after sending",
        ),
        SystemInfo(
            id="dynamic-yield",
            label="Dynamic Yield",
            secrets=(SecretField("API_KEY", "API key (server-side)",
                                 "Dynamic Yield: Settings > API Keys"),),
            settings=dynamic_yield.SETTINGS,
            capabilities=frozenset({Capability.SUBMIT}),
            regions={**dynamic_yield.REGIONS, CUSTOM_REGION: ""},
            default_region="us",
            routes=dynamic_yield.ROUTES,
            open_client=_dynamic_yield_client,
            payload_format=dynamic_yield.DynamicYieldFormat.from_settings,
            pacing=_paced,
        ),
        # A receiver on an always-on host (`optout-desk receive`), read through its pull API:
        # its list is the opt-outs it received.
        SystemInfo(
            id="inbox-relay",
            label="Inbox relay (optout-desk receive)",
            secrets=(SecretField("TOKEN", "Pull API token",
                                 "printed by `optout-desk inbox api-token` on the relay"),),
            settings=(),
            capabilities=frozenset({Capability.LIST}),
            regions={CUSTOM_REGION: ""},
            default_region=CUSTOM_REGION,
            open_client=_relay_client,
        ),
        # Pushes unsubscribes by webhook only (no API the desk calls): a webhook source of the
        # inbox, never a connection.
        SystemInfo(
            id="lox24",
            label="LOX24",
            secrets=(),
            settings=(),
            capabilities=frozenset({Capability.RECEIVE}),
        ),
    )
}


def system_info(system: str) -> SystemInfo:
    try:
        return SYSTEMS[system]
    except KeyError:
        known = ", ".join(sorted(SYSTEMS))
        raise ConfigurationError(f"Unknown system '{system}'; the desk knows: {known}.") from None


def system_label(system: str) -> str:
    """The name operators know a system by; the id itself for one this desk does not know."""
    info = SYSTEMS.get(system)
    return info.label if info is not None else system


def systems_that(capability: Capability) -> list[SystemInfo]:
    return [info for info in SYSTEMS.values() if info.can(capability)]


def connectable() -> list[SystemInfo]:
    """The systems a connection can be made to (the ones the desk calls)."""
    return [info for info in SYSTEMS.values() if info.open_client is not None]


def base_url_for(system: str, region: str | None, custom_url: str | None) -> str:
    """The base URL of a connection: the custom URL when given (https, or http to this
    computer), else the region's."""
    info = system_info(system)
    if custom_url:
        return validate_base_url(custom_url)
    if region and region != CUSTOM_REGION and info.regions.get(region):
        return info.regions[region]
    choices = ", ".join(r for r in info.regions if r != CUSTOM_REGION)
    if region == CUSTOM_REGION or not choices:
        raise ConfigurationError(f"{info.label} needs a base URL (--base-url).")
    raise ConfigurationError(
        f"Unknown region '{region or ''}' for {info.label}: choose one of {choices}, or give "
        "a base URL."
    )


def settings_for(system: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared setting of the system, validated, defaults filled in."""
    return validate_settings(system_info(system).settings, values)


def parse_given(system: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given (None = not given), each parsed as its declared type: what a
    connection profile stores."""
    info = system_info(system)
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        if raw is None:
            continue
        spec = info.setting(name)
        if spec is None:
            raise ConfigurationError(f"{info.label} has no setting {name}.")
        parsed[name] = spec.parse(raw)
    return parsed


def check_secrets(system: str, secrets: Mapping[str, str]) -> None:
    """ConfigurationError when a key holds a character no API key holds: a control character
    (a line break or tab pasted with it) or one outside printable ASCII (an accented letter,
    a typographic quote, a non-breaking space from a web page or a document). Such a key could
    never work, and sent in a header it fails as a confusing network or encoding error. The
    message says which kind of character, never the key."""
    info = system_info(system)
    labels = dict(zip(info.secret_fields, info.secret_labels, strict=True))
    for secret_field, value in secrets.items():
        problem = _secret_problem(value or "")
        if problem:
            label = labels.get(secret_field, secret_field)
            raise ConfigurationError(
                f"The {label.lower()} holds characters no key can hold ({problem}): paste it "
                f"again from {info.label}, copying only the key."
            )


def _secret_problem(value: str) -> str | None:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return "a line break, tab or other control character"
    if any(ord(char) > 0x7E for char in value):
        return ("a character outside plain ASCII, such as an accented letter, a typographic "
                "quote or a non-breaking space")
    return None


def open_client(system: str, base_url: str, secrets: Mapping[str, str],
                settings: Mapping[str, Any]) -> Client:
    info = system_info(system)
    missing = [secret.label for secret in info.secrets if not secrets.get(secret.name)]
    if missing:
        raise ConfigurationError(
            f"The connection lacks its {' and '.join(missing)}: edit the connection to enter "
            "them.")
    # Keys from the keyring or an environment variable are checked again before use: either
    # may have been set outside the desk.
    check_secrets(system, {name: secrets[name] for name in info.secret_fields})
    if info.open_client is None:
        raise ConfigurationError(f"{info.label} has no client in this desk.")
    # The connector's own settings class validates (in its own words where it has them).
    return info.open_client(validate_base_url(base_url), secrets, settings)


def payload_format(system: str, settings: Mapping[str, Any]) -> PayloadFormat:
    """How `system` takes identifiers (no keys, no network: a preview needs neither)."""
    info = system_info(system)
    if info.payload_format is None or not info.can(Capability.SUBMIT):
        raise ConfigurationError(f"{info.label} does not take opt-outs from the desk.")
    return info.payload_format(settings)


def pacing(system: str, settings: Mapping[str, Any]) -> Pacing:
    info = system_info(system)
    return info.pacing(validate_settings(info.settings, settings, require=False))


def _cannot(system: str, what: str) -> ConfigurationError:
    return ConfigurationError(f"{system_label(system)} cannot {what}.")


def as_lister(client: Client, system: str) -> ListingClient:
    if not isinstance(client, ListingClient):
        raise _cannot(system, "list its opt-outs")
    return client


def as_lookup(client: Client, system: str) -> LookupClient:
    if not isinstance(client, LookupClient):
        raise _cannot(system, "look identifiers up")
    return client


def as_submitter(client: Client, system: str) -> SubmittingClient:
    if not isinstance(client, SubmittingClient):
        raise _cannot(system, "take opt-outs")
    return client
