"""The desk's own child processes: how one starts, gets its request, answers and ends.

Three children: the file reader (files/_isolated.py: an untrusted spreadsheet cannot take the
app down), the sender (workflows/submission_process.py: sending cannot take the window's GIL)
and the receiver's event store (webhooks/event_store.py: commits beside the event loop). Each
gets its request pickled on stdin and answers in frames on stdout: an 8-byte little-endian
length and a pickle of (kind, payload). Only the app's own child writes to the pipe it reads,
so unpickling trusts what it reads.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO, NoReturn

FRAME = struct.Struct("<Q")


def child_command(flag: str, module: str) -> list[str]:
    """From source, a plain interpreter (`-c`: multiprocessing's spawn would re-import the
    caller's __main__) runs `module`'s child_main; the frozen app, which has no Python to run
    `-c` with, runs itself with `flag` (packaging/launcher.py)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, flag]
    # The parent's sys.path comes first, so the child finds the project before importing it.
    return [sys.executable, "-c",
            "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
            f"from {module} import child_main; child_main(pickle.load(sys.stdin.buffer))"]


def start_child(flag: str, module: str, request: Any) -> subprocess.Popen[bytes]:
    """Start a child and hand it `request` (plain data) on its stdin, which stays open for
    the caller to say more or to close. Raises OSError when the child cannot start."""
    process = subprocess.Popen(child_command(flag, module), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
    assert process.stdin is not None
    try:
        pickle.dump(list(sys.path), process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(request, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        process.stdin.flush()
    except OSError:
        pass  # it has already ended; its pipe and exit code say how
    return process


def run_child(module: str) -> NoReturn:
    """The frozen app started with a child's flag: be that child, then exit."""
    pickle.load(sys.stdin.buffer)  # the parent's sys.path: a frozen app has its own
    importlib.import_module(module).child_main(pickle.load(sys.stdin.buffer))
    raise SystemExit(0)


def end_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Close its stdin (each child's sign to finish), wait, kill it past `timeout`."""
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def read_frame(stream: Any) -> bytes | None:
    """The next frame's pickle, or None when the pipe closed (or closed mid-frame)."""
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (size,) = FRAME.unpack(header)
    frame = stream.read(size)
    return frame if len(frame) == size else None


def read_frames(stream: Any, frames: queue.Queue[bytes | None]) -> None:
    """Put each frame's pickle on `frames`, then None when the pipe closes (a thread's body)."""
    try:
        while (frame := read_frame(stream)) is not None:
            frames.put(frame)
    except (OSError, ValueError):
        pass
    frames.put(None)


class FrameWriter:
    """Writes (kind, payload) frames to a binary stream; safe to call from several threads."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, kind: str, payload: Any) -> None:
        buffer = io.BytesIO()
        buffer.write(bytes(FRAME.size))
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.fast = True  # no memo: 20x faster for millions of rows, none shared or recursive
        pickler.dump((kind, payload))
        view = buffer.getbuffer()
        FRAME.pack_into(view, 0, len(view) - FRAME.size)
        with self._lock:
            self._stream.write(view)
            self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def take_stdout() -> BinaryIO:
    """The child's stdout for frames only: anything else printed there (a library's print)
    would break them, so fd 1 now points at nothing and the frames go to a copy of it."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return out
