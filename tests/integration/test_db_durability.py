"""A commit survives the process being killed, even while other threads open connections to
the same database and another process reads it: the fan-out reliability run found committed
"sent" marks lost. Opening the database file to make it private (and closing that descriptor)
dropped the POSIX locks SQLite's other connections in the process held on it; a connection of
another process closing then believed itself the last one, checkpointed and reset the WAL the
desk was still writing into, and the commits after that were gone."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

WRITER = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from optout_desk.store.db import connect
    path = Path(sys.argv[1])
    db = connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER)")
    db.execute("INSERT OR IGNORE INTO counter VALUES (1, 0)")

    def opener():
        while True:  # what every other thread of the desk does: open, read, close
            other = connect(path)
            other.execute("SELECT COUNT(*) FROM counter").fetchone()
            other.close()

    for _ in range(2):
        threading.Thread(target=opener, daemon=True).start()
    n = 0
    while True:
        n += 1
        db.execute("UPDATE counter SET n = ? WHERE id = 1", (n,))
        sys.stdout.write(f"{n}\\n")
        sys.stdout.flush()
""")


def test_commits_survive_a_kill_while_other_threads_open_connections(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        last = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.6:
            line = child.stdout.readline()
            if line.strip():
                last = int(line)
            if last % 200 == 0:  # another process (the GUI, a CLI run) reads it and closes
                peek = sqlite3.connect(path)
                peek.execute("SELECT n FROM counter").fetchone()
                peek.close()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        last = max([last, *(int(x) for x in child.stdout.read().split())])
        child.stdout.close()
        raw = sqlite3.connect(path)
        try:
            stored = raw.execute("SELECT n FROM counter").fetchone()[0]
        finally:
            raw.close()
        assert stored >= last, f"committed {last}, the database holds {stored}"
