"""SandboxSuite: the three simulators on their own loopback ports with their own credentials,
myKaarma holding a share of CheckMarket's opt-outs, and everything stopped afterwards."""

from __future__ import annotations

import socket

import httpx
import pytest

from optout_desk.connectors.checkmarket import CheckMarketClient, CheckMarketSettings
from optout_desk.connectors.dynamic_yield import DynamicYieldClient, DynamicYieldSettings
from optout_desk.connectors.mykaarma import Communication, MyKaarmaClient, MyKaarmaSettings
from optout_desk.sandbox.dynamic_yield import DynamicYieldConfig, DynamicYieldSandbox
from optout_desk.sandbox.server import Sandbox, SandboxConfig
from optout_desk.sandbox.suite import SandboxSuite


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_suite_serves_all_three_with_their_demo_credentials() -> None:
    with SandboxSuite(checkmarket=Sandbox(SandboxConfig(records=120, seed=5)), seed=5) as suite:
        cm, mk, dy = suite.checkmarket, suite.mykaarma, suite.dynamic_yield
        assert len({cm.port, mk.port, dy.port}) == 3
        with CheckMarketClient(CheckMarketSettings(cm.base_url), cm.master_key, cm.key) as c:
            assert c.check().total_optouts == 120
        settings = MyKaarmaSettings.from_mapping(mk.base_url,
                                                 {"department_uuid": mk.department_uuid})
        with MyKaarmaClient(settings, mk.username, mk.password) as k:
            assert "accepted" in k.check().message
            shared = next(o["Email"].strip() for o in cm.state.optouts()
                          if o["Email"] and ("EMAIL", o["Email"].strip().lower())
                          in mk.state.opted_out(mk.department_uuid))
            assert k.lookup_statuses([Communication("email", shared)])[0].opted_out is True
        for region in ("us", "eu"):
            with DynamicYieldClient(DynamicYieldSettings(dy.base_url(region)),
                                    dy.key_for(region)) as d:
                assert d.check().proven
        ports = (cm.port, mk.port, dy.port)
        assert suite.shared_with_mykaarma > 0
    assert not any(listening(port) for port in ports)


def test_the_share_with_mykaarma_follows_the_seed_and_can_be_off() -> None:
    def held(seed: int, share: float) -> tuple[int, set[tuple[str, str]]]:
        suite = SandboxSuite(checkmarket=Sandbox(SandboxConfig(records=200, seed=seed)),
                             seed=seed, shared_with_mykaarma=share)
        return suite.shared_with_mykaarma, suite.mykaarma.state.opted_out(
            suite.mykaarma.department_uuid)

    assert held(2, 0.5) == held(2, 0.5)
    shared, with_share = held(2, 0.5)
    none, without = held(2, 0.0)
    assert 60 < shared < 140 and none == 0
    assert without < with_share
    with pytest.raises(ValueError, match="share from 0 to 1"):
        SandboxSuite(shared_with_mykaarma=1.5)


def test_a_simulator_that_cannot_listen_stops_the_others() -> None:
    with Sandbox() as taken:
        suite = SandboxSuite(dynamic_yield=DynamicYieldSandbox(DynamicYieldConfig(
            port=taken.port)))
        with pytest.raises(OSError):
            suite.start()  # CheckMarket and myKaarma start first, then Dynamic Yield fails
        cm_port, mk_port = suite.checkmarket.port, suite.mykaarma.port
        assert cm_port and mk_port
        assert not listening(cm_port) and not listening(mk_port)
        assert suite.mykaarma.base_url == ""
        assert httpx.get(taken.base_url + "3/throttle").status_code == 401  # untouched
