"""DynamicYieldSettings.from_mapping: defaults, channels, and bad values refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from optout_desk.connectors import dynamic_yield
from optout_desk.connectors.dynamic_yield import (
    REGIONS,
    DynamicYieldClient,
    DynamicYieldSettings,
)
from optout_desk.connectors.errors import ConfigurationError


def settings(**values: Any) -> DynamicYieldSettings:
    return DynamicYieldSettings.from_mapping(REGIONS["eu"], values)


def test_defaults() -> None:
    s = settings()
    assert (s.base_url, s.email_channel, s.push_channel, s.extra_channels) == (
        "https://dy-api.eu/v2/", "email", "web-push", ())
    assert (s.concurrency, s.requests_per_second, s.send_associated_device) == (4, 0.0, False)
    assert s.channels == ("email", "web-push")
    assert dynamic_yield.SECRET_FIELDS == ("API_KEY",)
    assert len(dynamic_yield.SECRET_LABELS) == 1


def test_channels_from_text_or_list_without_duplicates() -> None:
    assert settings(extra_channels="sms, app-push,sms").extra_channels == ("sms", "app-push")
    assert settings(extra_channels=["email", "sms"]).channels == ("email", "web-push", "sms")
    assert settings(push_channel="app-push", concurrency="8").concurrency == 8


@pytest.mark.parametrize(("values", "message"), [
    ({"concurrency": 0}, "concurrency = 0 is not usable: give a number from 1 to 64"),
    ({"requests_per_second": -1}, "requests_per_second"),
    ({"email_channel": "e/mail"}, "email_channel = 'e/mail' is not usable: give a channel"),
    ({"extra_channels": ["ok", "not ok"]}, "extra_channels = 'not ok'"),
    ({"extra_channels": 5}, "separated by commas"),
    ({"send_associated_device": "sometimes"}, "give true or false"),
])
def test_bad_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(**values)


def test_the_client_needs_a_key_and_keeps_it_out_of_its_repr() -> None:
    with pytest.raises(ConfigurationError, match="server-side API key"):
        DynamicYieldClient(settings(), "")
    client = DynamicYieldClient(settings(), "secret-key-42")
    try:
        assert repr(client) == "DynamicYieldClient(https://dy-api.eu/v2/)"
    finally:
        client.close()
