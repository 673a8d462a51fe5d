"""One sender per destination: an OS file lock that names its holder, released when the
holder dies, refusing a second holder in this process and in another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from optout_desk.store import locks


def test_a_second_holder_in_this_process_is_refused_with_the_holder_named() -> None:
    with locks.hold("Sending to acme", "plan 7"):
        with pytest.raises(locks.LockHeldError) as caught:
            with locks.hold("Sending to acme", "plan 8"):
                pass
        assert caught.value.holder["what"] == "plan 7"
        assert caught.value.holder["pid"] == os.getpid()
        assert "plan 7" in caught.value.message and f"pid {os.getpid()}" in caught.value.message
        assert locks.is_held("Sending to acme") is not None
        with locks.hold("Sending to other", "plan 9"):  # another name is free
            pass
    assert locks.is_held("Sending to acme") is None
    with locks.hold("Sending to acme", "plan 8"):  # released: free again
        pass


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from optout_desk import paths
    from optout_desk.store import locks
    paths.set_data_dir(Path(sys.argv[1]))
    with locks.hold("Sending to acme", "plan 12"):
        print("held", flush=True)
        time.sleep(60)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_another_process_holds_it_until_it_dies(isolated_home: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(isolated_home)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        holder = locks.is_held("Sending to acme")
        assert holder is not None and holder["what"] == "plan 12"
        assert holder["pid"] == child.pid
        with pytest.raises(locks.LockHeldError, match=f"plan 12 \\(pid {child.pid}"):
            with locks.hold("Sending to acme", "plan 13"):
                pass
        child.send_signal(signal.SIGKILL)  # no clean-up runs: the OS releases the lock
        child.wait(10)
        deadline = time.monotonic() + 5
        while locks.is_held("Sending to acme") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        with locks.hold("Sending to acme", "plan 13"):
            pass
    finally:
        child.kill()
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
