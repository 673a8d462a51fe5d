"""Which platforms the desk can connect to, what each needs, and how to open a client.

A connector declares its capabilities ("list_all", "submit", "receive", "lookup"); the UI and
the CLI offer what the connector declares, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from optout_desk.connectors import checkmarket, inbox_relay
from optout_desk.connectors.errors import ConfigurationError
from optout_desk.connectors.http import validate_base_url

CUSTOM_REGION = "custom"


@dataclass(frozen=True)
class SystemInfo:
    label: str
    secret_fields: tuple[str, ...]
    secret_labels: tuple[str, ...]  # what the operator calls each secret field, same order
    regions: dict[str, str]  # region -> base URL; "custom" -> "" (the operator gives the URL)
    capabilities: frozenset[str]
    default_region: str = ""


SYSTEMS: dict[str, SystemInfo] = {
    "checkmarket": SystemInfo(
        label="CheckMarket (Medallia Agile Research)",
        secret_fields=checkmarket.SECRET_FIELDS,
        secret_labels=("Master key", "Key"),
        regions={**checkmarket.REGIONS, CUSTOM_REGION: ""},
        capabilities=frozenset({"list_all", "submit", "receive"}),
        default_region="eu",
    ),
    # A receiver on an always-on host, read through its pull API (issue 12). Minimal entry
    # until the connector contract declares it as a "list" source.
    "inbox-relay": SystemInfo(
        label="Inbox relay (optout-desk receive)",
        secret_fields=inbox_relay.SECRET_FIELDS,
        secret_labels=("Pull API token",),
        regions={CUSTOM_REGION: ""},
        capabilities=frozenset({"list"}),
        default_region=CUSTOM_REGION,
    ),
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


def base_url_for(system: str, region: str | None, custom_url: str | None) -> str:
    """The base URL of a connection: the custom URL when given (https, or http to this
    computer), else the region's."""
    info = system_info(system)
    if custom_url:
        return validate_base_url(custom_url)
    if region and region != CUSTOM_REGION and region in info.regions:
        return info.regions[region]
    choices = ", ".join(r for r in info.regions if r != CUSTOM_REGION)
    if region == CUSTOM_REGION:
        raise ConfigurationError("The custom region needs a base URL (--base-url).")
    raise ConfigurationError(
        f"Unknown region '{region or ''}' for {info.label}: choose one of {choices}, or give "
        "a base URL."
    )


def open_client(system: str, base_url: str, secrets: Mapping[str, str],
                settings: Mapping[str, Any]) -> checkmarket.CheckMarketClient:
    info = system_info(system)
    missing = [label for name, label in zip(info.secret_fields, info.secret_labels, strict=True)
               if not secrets.get(name)]
    if missing:
        raise ConfigurationError(
            f"The connection lacks its {' and '.join(missing)}: edit the connection to enter "
            "them.")
    if system == "checkmarket":
        return checkmarket.CheckMarketClient(
            checkmarket.CheckMarketSettings.from_mapping(validate_base_url(base_url), settings),
            secrets["MASTER_KEY"], secrets["KEY"])
    if system == "inbox-relay":
        # Only check() is used on it (connection test) until the connector contract lands.
        return cast(checkmarket.CheckMarketClient, inbox_relay.InboxRelayClient(
            validate_base_url(base_url), secrets["TOKEN"]))
    raise ConfigurationError(f"No client for system '{system}' yet.")
