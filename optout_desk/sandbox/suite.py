"""All three simulators at once: CheckMarket, myKaarma and Dynamic Yield on loopback ports.

Used by `optout-desk sandbox` (and the demo): each simulator keeps its own demo credentials.
myKaarma's demo department also holds a share of CheckMarket's opt-outs (chosen from the seed),
so a CRM export built from CheckMarket's list (sandbox/crm.py) finds people already opted out
on myKaarma too, as well as the ones myKaarma's own generated list holds.
"""

from __future__ import annotations

import random
import re
from types import TracebackType
from typing import Self

from optout_desk.sandbox.dynamic_yield import DynamicYieldConfig, DynamicYieldSandbox
from optout_desk.sandbox.mykaarma import MyKaarmaConfig, MyKaarmaSandbox
from optout_desk.sandbox.server import Sandbox, SandboxConfig

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class SandboxSuite:
    """`with SandboxSuite() as suite: suite.checkmarket.base_url, suite.mykaarma.base_url,
    suite.dynamic_yield.us_url …`. Pass a configured simulator to use it instead of the default
    one; `shared_with_mykaarma` is the share of CheckMarket's opt-outs copied to myKaarma."""

    def __init__(self, *, checkmarket: Sandbox | None = None,
                 mykaarma: MyKaarmaSandbox | None = None,
                 dynamic_yield: DynamicYieldSandbox | None = None, seed: int = 1,
                 latency_ms: float = 0.0, shared_with_mykaarma: float = 0.5) -> None:
        if not 0.0 <= shared_with_mykaarma <= 1.0:
            raise ValueError("shared_with_mykaarma is a share from 0 to 1")
        self.checkmarket = checkmarket or Sandbox(SandboxConfig(seed=seed,
                                                                latency_ms=latency_ms))
        self.mykaarma = mykaarma or MyKaarmaSandbox(MyKaarmaConfig(seed=seed,
                                                                   latency_ms=latency_ms))
        self.dynamic_yield = dynamic_yield or DynamicYieldSandbox(
            DynamicYieldConfig(latency_ms=latency_ms))
        self.shared_with_mykaarma = self._share(seed, shared_with_mykaarma)

    def _share(self, seed: int, share: float) -> int:
        """Copy a seeded share of CheckMarket's opt-outs into myKaarma's demo department; the
        number of people copied."""
        rng = random.Random(f"suite-{seed}")
        pairs: list[tuple[str, str]] = []
        people = 0
        for optout in self.checkmarket.state.optouts():
            if rng.random() >= share:
                continue
            email = (optout.get("Email") or "").strip().lower()
            phone = "".join(ch for ch in (optout.get("Phone") or "") if ch.isdigit() or ch == "+")
            found = [("EMAIL", email)] if email else []
            if _E164.match(phone):  # national forms cannot be placed without a region
                found.append(("TEXT", phone))
            pairs.extend(found)
            people += bool(found)
        self.mykaarma.state.add_optouts(self.mykaarma.department_uuid, pairs)
        return people

    def start(self) -> Self:
        """Start all three; if one cannot listen, the others are stopped again."""
        try:
            self.checkmarket.start()
            self.mykaarma.start()
            self.dynamic_yield.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for simulator in (self.dynamic_yield, self.mykaarma, self.checkmarket):
            simulator.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"SandboxSuite(checkmarket={self.checkmarket.base_url!r}, "
                f"mykaarma={self.mykaarma.base_url!r}, "
                f"dynamic_yield={self.dynamic_yield.us_url!r})")
