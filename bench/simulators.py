"""The simulators in their own process, as real platforms are (their request handling then does
not compete with the desk for this interpreter): `optout-desk sandbox`, its printed base URLs
and demo credentials read back."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def simulators_process(latency_ms: float, records: int = 100) -> Iterator[dict[str, str]]:
    """Yields the sandbox's printed "Label: value" lines as a dict ("Base URL", "Key",
    "myKaarma base URL", "Dynamic Yield EU API key", …)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "optout_desk", "sandbox", "--records", str(records),
         "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        for line in proc.stdout:
            label, _, value = line.partition(":")
            if value:
                printed.setdefault(label.strip(), value.strip())
            if line.startswith("Press Ctrl-C"):
                break
        if "Dynamic Yield EU base URL" not in printed:
            raise RuntimeError("the simulators did not start")
        yield printed
    finally:
        proc.terminate()
        proc.wait(10)
