"""MyKaarmaSettings.from_mapping: the documented defaults, and each bad value refused with a
message naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from optout_desk.connectors import mykaarma
from optout_desk.connectors.errors import ConfigurationError
from optout_desk.connectors.mykaarma import MyKaarmaClient, MyKaarmaSettings

URL = "https://api.mykaarma.com/communications/"


def settings(**values: Any) -> MyKaarmaSettings:
    return MyKaarmaSettings.from_mapping(URL, {"department_uuid": "dep-1", **values})


def test_defaults_are_the_safe_ones() -> None:
    s = settings()
    assert (s.base_url, s.department_uuid) == (URL, "dep-1")
    assert (s.email_type, s.phone_type) == ("EMAIL", "TEXT")
    assert (s.event, s.update_type, s.api_call_source) == ("USER_REQUESTED_OPT_OUT",
                                                           "CUSTOMER", "optout-desk")
    assert s.process_synchronously is True and s.send_customer_uuid is False
    assert (s.entries_per_request, s.lookup_batch_size) == (1, 100)
    assert (s.opted_out_states, s.opted_in_states) == (("OPTED_OUT",), ("OPTED_IN",))
    assert (s.concurrency, s.requests_per_second, s.timeout_s) == (4, 0.0, 30.0)
    assert MyKaarmaSettings().base_url == mykaarma.DEFAULT_BASE_URL == URL
    assert mykaarma.SECRET_FIELDS == ("USERNAME", "PASSWORD")
    assert mykaarma.SECRET_LABELS == ("Username", "Password")


def test_values_are_converted_and_unknown_names_ignored() -> None:
    s = settings(entries_per_request="25", process_synchronously="false",
                 send_customer_uuid=True, customer_uuid="c-9", opted_out_states="OUT, STOP",
                 opted_in_states=["IN"], requests_per_second=2.5, colour="blue")
    assert (s.entries_per_request, s.process_synchronously, s.send_customer_uuid) == (
        25, False, True)
    assert (s.customer_uuid, s.opted_out_states, s.opted_in_states) == ("c-9", ("OUT", "STOP"),
                                                                        ("IN",))
    assert s.requests_per_second == 2.5


@pytest.mark.parametrize(("values", "message"), [
    ({"department_uuid": ""}, "needs the department UUID"),
    ({"department_uuid": "a/b"}, "department_uuid = 'a/b' is not usable"),
    ({"entries_per_request": 0}, "entries_per_request = 0 is not usable: give a number from 1"),
    ({"lookup_batch_size": "lots"}, "lookup_batch_size = 'lots'"),
    ({"concurrency": True}, "concurrency = True"),
    ({"update_type": "EVERYONE"}, "MESSAGE or CUSTOMER or DEPLOYMENT"),
    ({"email_type": "E MAIL"}, "email_type = 'E MAIL'"),
    ({"process_synchronously": "maybe"}, "give true or false"),
    ({"opted_out_states": 3}, "separated by commas"),
    ({"opted_out_states": "X", "opted_in_states": "x"}, "cannot mean both"),
    ({"email_type": "TEXT"}, "must be different"),
])
def test_bad_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(**values)


def test_the_client_needs_both_credentials_and_keeps_them_out_of_its_repr() -> None:
    with pytest.raises(ConfigurationError, match="both the username and the password"):
        MyKaarmaClient(settings(), "user", "")
    with pytest.raises(ConfigurationError, match="department UUID"):
        MyKaarmaClient(MyKaarmaSettings(), "user", "pw")
    with pytest.raises(ConfigurationError, match="Plain http"):
        MyKaarmaClient(MyKaarmaSettings.from_mapping("http://example.com/",
                                                     {"department_uuid": "d"}), "u", "p")
    client = MyKaarmaClient(settings(), "the-user", "the-password")
    try:
        assert "the-user" not in repr(client) and "the-password" not in repr(client)
        assert repr(client) == f"MyKaarmaClient({URL}, department dep-1)"
    finally:
        client.close()
