"""`optout-desk sandbox` serves myKaarma and Dynamic Yield beside CheckMarket: each block's base
URL and demo credentials, as printed, work against the running simulators."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from optout_desk.connectors.dynamic_yield import DynamicYieldClient, DynamicYieldSettings
from optout_desk.connectors.errors import AuthenticationError
from optout_desk.connectors.mykaarma import Communication, MyKaarmaClient, MyKaarmaSettings
from tests.integration.test_sandbox_cli import start_sandbox, stop


def test_sandbox_prints_all_three_systems_and_their_credentials_work() -> None:
    process, printed = start_sandbox("--records", "150", "--seed", "4")
    try:
        cm_url = printed["Base URL"]  # CheckMarket's lines keep their wording
        assert printed["Key"] and printed["Master key"]
        with httpx.Client(base_url=cm_url, headers={"X-Master-Key": printed["Master key"],
                                                    "X-Key": printed["Key"]}) as c:
            assert c.get("3/contacts/optouts").json()["Meta"]["TotalRowCount"] == 150

        mk_url = printed["myKaarma base URL"]
        assert mk_url.startswith("http://127.0.0.1:") and mk_url.endswith("/communications/")
        department = printed["myKaarma department UUID"]
        settings = MyKaarmaSettings.from_mapping(mk_url, {"department_uuid": department})
        with MyKaarmaClient(settings, printed["myKaarma username"],
                            printed["myKaarma password"]) as mk:
            assert department in mk.check().message
            mk.update_optout_status([Communication("email", "cli@example.com")])
            assert mk.lookup_one("email", "cli@example.com").opted_out is True

        us, eu = printed["Dynamic Yield US base URL"], printed["Dynamic Yield EU base URL"]
        assert us.endswith("/us/v2/") and eu.endswith("/eu/v2/")
        us_key, eu_key = printed["Dynamic Yield US API key"], printed["Dynamic Yield EU API key"]
        with DynamicYieldClient(DynamicYieldSettings(us), us_key) as dy:
            assert dy.opt_out_email("cli@example.com").http_status == 200
        with DynamicYieldClient(DynamicYieldSettings(eu, max_retries=0), us_key) as wrong:
            try:
                wrong.check()
                raise AssertionError("a US key must not work on EU")
            except AuthenticationError:
                pass
        with DynamicYieldClient(DynamicYieldSettings(eu), eu_key) as dy:
            assert dy.check().proven
    finally:
        code, output = stop(process)
    assert code == 0 and "Sandbox stopped." in output


def test_sandbox_prints_connection_add_hints_for_each_system() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "optout_desk", "sandbox"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        stop(process)
    values = {k.strip(): v.strip() for k, _, v in (x.partition(": ") for x in lines)}
    hints = [x for x in lines if x.startswith("optout-desk connection add")]
    assert hints == [
        f"optout-desk connection add demo --system checkmarket --base-url {values['Base URL']}",
        f"optout-desk connection add demo-mykaarma --system mykaarma --base-url "
        f"{values['myKaarma base URL']} --department-uuid "
        f"{values['myKaarma department UUID']}",
        f"optout-desk connection add demo-dy-us --system dynamic-yield --base-url "
        f"{values['Dynamic Yield US base URL']}",
        f"optout-desk connection add demo-dy-eu --system dynamic-yield --base-url "
        f"{values['Dynamic Yield EU base URL']}",
    ]
