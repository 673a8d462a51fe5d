"""workflows.connections with the real Secret Service: keys and profiles stay in step."""

from __future__ import annotations

import pytest

from optout_desk import secrets
from optout_desk.connectors.errors import AuthenticationError, ConfigurationError
from optout_desk.core.errors import BadInputError
from optout_desk.sandbox.server import Sandbox
from optout_desk.workflows import connections as workflow
from optout_desk.workflows.sync import sync_optouts
from tests.fixtures.keyring import RealKeyring

pytestmark = pytest.mark.keyring


def add(sandbox: Sandbox, name: str = "acme", key: str | None = None) -> None:
    workflow.add_connection(
        name, "checkmarket", base_url=sandbox.base_url,
        secrets={"MASTER_KEY": sandbox.master_key, "KEY": key or sandbox.key},
    )


def test_failed_profile_save_forgets_the_keys_it_stored(
    sandbox: Sandbox, real_keyring: RealKeyring
) -> None:
    add(sandbox, "acme-eu")
    # Passes the early checks, then the profile is refused (same environment variable names).
    with pytest.raises(BadInputError, match="environment variables would be the same"):
        add(sandbox, "ACME EU")
    assert real_keyring.desk_items() == ["acme-eu:KEY", "acme-eu:MASTER_KEY"]


def test_remove_with_a_locked_keyring_keeps_the_connection_to_retry(
    sandbox: Sandbox, real_keyring: RealKeyring
) -> None:
    add(sandbox)
    fetched = sync_optouts("acme")
    assert fetched.total == 250
    real_keyring.lock()
    with pytest.raises(secrets.KeyringLockedError):
        workflow.remove_connection("acme")
    assert workflow.get_connection("acme").name == "acme"
    real_keyring.unlock()
    assert workflow.remove_connection("acme") == 250
    assert real_keyring.desk_items() == []
    assert workflow.list_connections() == []


def test_edit_changes_url_settings_and_one_key(
    sandbox: Sandbox, real_keyring: RealKeyring
) -> None:
    add(sandbox, key="wrong")
    check = workflow.test_connection("acme")
    assert not check.ok
    assert isinstance(check.error, AuthenticationError)
    edited = workflow.edit_connection(
        "acme", settings={"page_size": 50, "concurrency": 2}, secrets={"KEY": sandbox.key}
    ).profile
    assert edited.settings == {"page_size": 50, "concurrency": 2}
    assert workflow.test_connection("acme").total_optouts == 250
    edited = workflow.edit_connection("acme", settings={"concurrency": None}).profile
    assert edited.settings == {"page_size": 50}
    edited = workflow.edit_connection("acme", region="us").profile
    assert (edited.region, edited.base_url) == (
        "us", "https://api-us.agileresearch.medallia.com/")
    with pytest.raises(ConfigurationError):
        workflow.edit_connection("acme", settings={"page_size": -1})
    assert workflow.get_connection("acme").settings == {"page_size": 50}


def test_other_keys_drop_the_cached_list_and_the_same_keys_keep_it(
    sandbox: Sandbox, real_keyring: RealKeyring
) -> None:
    """Before, new keys (perhaps another account's on the same server) kept the list cached
    with the old ones, and the next fetch was incremental: the new account's recent opt-outs
    were merged into the old account's list, and reconcile compared against the mix."""
    from optout_desk.sandbox.checkmarket import ALL_ROLES

    add(sandbox)
    assert sync_optouts("acme").total == 250
    same = workflow.edit_connection("acme", secrets={"KEY": sandbox.key})
    assert (same.dropped, same.why) == (None, None)  # typed again unchanged: the cache stays
    assert workflow.list_connections()[0].cached == 250
    sandbox.state.add_key(sandbox.master_key, "another-key-0123456789", set(ALL_ROLES))
    real_keyring.lock()  # the new keys cannot be stored: nothing changes, the cache included
    with pytest.raises(secrets.KeyringLockedError):
        workflow.edit_connection("acme", secrets={"KEY": "another-key-0123456789"})
    assert workflow.list_connections(describe_secrets=False)[0].cached == 250
    real_keyring.unlock()
    other = workflow.edit_connection("acme", secrets={"KEY": "another-key-0123456789"})
    assert (other.dropped, other.why) == (250, workflow.NEW_KEYS)
    assert workflow.list_connections()[0].cached == 0
    assert secrets.read_secret("acme", "KEY") == "another-key-0123456789"
    refetched = sync_optouts("acme")
    assert (refetched.full, refetched.total) == (True, 250)  # in full, not from a watermark


def test_session_only_keys_work_and_vanish_with_the_session(
    sandbox: Sandbox, real_keyring: RealKeyring
) -> None:
    workflow.add_connection(
        "demo", "checkmarket", base_url=sandbox.base_url, session_only=True,
        secrets={"MASTER_KEY": sandbox.master_key, "KEY": sandbox.key},
    )
    assert real_keyring.desk_items() == []
    assert workflow.list_connections()[0].secrets_location == "held for this session only"
    assert workflow.test_connection("demo").ok
    secrets.clear_session()
    check = workflow.test_connection("demo")
    assert not check.ok
    assert isinstance(check.error, secrets.MissingSecretError)
    assert "OPTOUT_DESK_SECRET_DEMO_MASTER_KEY" in check.message
