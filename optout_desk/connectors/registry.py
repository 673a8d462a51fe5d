"""Which platforms the desk can connect to, what each needs, and how to open a client.

A connector declares its capabilities ("list_all", "submit", "receive", "lookup"); the UI and
the CLI offer what the connector declares, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optout_desk.connectors import checkmarket
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
                settings: Mapping[str, Any]) -> checkmarket.CheckMarketClient:
    info = system_info(system)
    missing = [label for name, label in zip(info.secret_fields, info.secret_labels, strict=True)
               if not secrets.get(name)]
    if missing:
        raise ConfigurationError(
            f"The connection lacks its {' and '.join(missing)}: edit the connection to enter "
            "them.")
    # Keys from the keyring or an environment variable are checked again before use: either
    # may have been set outside the desk.
    check_secrets(system, {name: secrets[name] for name in info.secret_fields})
    if system == "checkmarket":
        return checkmarket.CheckMarketClient(
            checkmarket.CheckMarketSettings.from_mapping(validate_base_url(base_url), settings),
            secrets["MASTER_KEY"], secrets["KEY"])
    raise ConfigurationError(f"No client for system '{system}' yet.")
