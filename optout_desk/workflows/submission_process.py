"""Sending a submission from a child process, so the desktop's window never waits for it.

Sending 100,000 identifiers to three platforms is a score of threads of Python: a journal
commit around every request, every answer parsed, the receipt workbook written at the end. In
the window's process they hold the GIL the GUI thread needs, and the window froze for up to
220 ms at a time while they sent (issue 11's target: 50 ms). So the desktop runs
`execute_submission` in a child process of its own (the same on Windows, macOS and Linux; the
frozen app runs itself with SENDER_FLAG) and only relays:

- the request goes down the child's stdin, pickled: the plan ids, the submission, the data
  folder, and the keys this session holds only in memory (the demo's, or keys the operator
  chose not to store) — never on a command line, in the environment or in a file. Keys in the
  keyring or in an environment variable the child reads itself;
- progress, then the outcome, come back on its stdout in frames (frames.py);
- Cancel (all, or one destination) goes down stdin; if the desktop goes away (stdin closes)
  the child cancels everything: in-flight requests finish and are journaled, the rest stays
  resumable;
- a child that dies (killed, a crash) is reported in one sentence; its plans stay unfinished
  and are offered at the next start (the journal is crash-safe: the SIGKILL tests prove it).

The CLI sends in its own process: it has no window to keep responsive.
"""

from __future__ import annotations

import logging
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optout_desk import paths, secrets
from optout_desk.core.errors import DeskError
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken, Progress
from optout_desk.frames import FrameWriter, end_child, read_frames, start_child, take_stdout

if TYPE_CHECKING:  # the frozen app's entry point imports this module before anything else
    from optout_desk.workflows.submission import ProgressFor, SubmissionOutcome

log = logging.getLogger(__name__)

# The frozen app (PyInstaller) has no Python to run `-c` with: it becomes the sender when
# started with this as its only argument (packaging/launcher.py).
SENDER_FLAG = "--optout-desk-sender"
_POLL_SECONDS = 0.05
# A destination's progress goes up at most this often (the window redraws at 10 Hz).
_PROGRESS_EVERY_SECONDS = 0.1
# After the window let go of the child (it closed, or gave up waiting): how long the child has
# to finish its in-flight requests and journal them before it is killed.
_GRACE_SECONDS = 60.0
_ALL = "*"


def execute_submission_isolated(
    plan_ids: Mapping[str, int],
    *,
    submission_id: int | None,
    progress: ProgressFor | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    cancel_each: Mapping[str, CancelToken] | None = None,
) -> SubmissionOutcome:
    """submission.execute_submission(...) run by a child process; the same outcome."""
    names = list(plan_ids)
    request = {
        "data_dir": str(paths.data_dir()),
        "plan_ids": dict(plan_ids),
        "submission_id": submission_id,
        "session_secrets": secrets.session_secrets(names),
    }
    try:
        process = start_child(SENDER_FLAG, __name__, request)
    except OSError as exc:  # nothing was sent: the plans wait, journaled, for a resume
        raise DeskError(f"The sending process could not start ({exc.strerror or exc}); "
                        "nothing was sent. Try again, or send from the command line with "
                        "optout-desk submit --resume.") from None
    frames: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=read_frames, args=(process.stdout, frames),
                              name="sender-pipe", daemon=True)
    reader.start()
    assert process.stdin is not None
    stdin = process.stdin
    try:
        return _relay(process, frames, stdin, progress, cancel, dict(cancel_each or {}))
    finally:
        end_child(process, _GRACE_SECONDS)  # stdin's end: the child cancels what it still does
        reader.join(5)


def _relay(process: subprocess.Popen[bytes], frames: queue.Queue[bytes | None], stdin: Any,
           progress: ProgressFor | None, cancel: CancelToken,
           cancel_each: dict[str, CancelToken]) -> SubmissionOutcome:
    told: set[str] = set()
    while True:
        _pass_cancels(stdin, cancel, cancel_each, told)
        try:
            frame = frames.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
        if frame is None:
            code = process.wait(30)
            log.error("the sending process ended without an outcome (exit %s)", code)
            raise DeskError(
                f"The sending process stopped unexpectedly (exit {code}). Every request it "
                "had acknowledged is in the journal: resume the submission with Submit › "
                "Unfinished submissions… (or at the next start); nothing acknowledged is sent "
                "again.")
        kind, payload = pickle.loads(frame)
        if kind == "progress":
            if progress is not None:
                name, report = payload
                progress(name, report)
        elif kind == "done":
            outcome: SubmissionOutcome = payload
            return outcome
        elif kind == "error":
            raise DeskError(payload)


def _pass_cancels(stdin: Any, cancel: CancelToken, cancel_each: dict[str, CancelToken],
                  told: set[str]) -> None:
    wanted = [_ALL] if cancel.cancelled else []
    wanted += [name for name, token in cancel_each.items() if token.cancelled]
    for name in wanted:
        if name in told:
            continue
        told.add(name)
        try:
            pickle.dump(("cancel", name), stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except OSError:
            pass  # the child has ended; its pipe says how


# ---------------------------------------------------------------- the child


def child_main(request: dict[str, Any]) -> None:
    """The child: send the submission, report on stdout, take cancels from stdin. A failure
    is reported as a sentence; it never raises."""
    # Ctrl+C in the terminal reaches the whole process group: the parent decides when this
    # child ends (it closes stdin), so nothing half-done is left by the keystroke.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = FrameWriter(take_stdout())
    try:
        paths.set_data_dir(Path(request["data_dir"]))
        from optout_desk.log import SENDER_LOG_FILE_NAME, setup_logging
        from optout_desk.workflows.submission import execute_submission

        setup_logging(file_name=SENDER_LOG_FILE_NAME)
        for (connection, field), value in request["session_secrets"]:
            secrets.store_secret(connection, field, value, session_only=True)
        plan_ids: dict[str, int] = request["plan_ids"]
        everything = CancelToken()
        each = {name: CancelToken() for name in plan_ids}
        threading.Thread(target=_take_cancels, args=(sys.stdin.buffer, everything, each),
                         name="sender-cancels", daemon=True).start()
        outcome = execute_submission(
            plan_ids, submission_id=request["submission_id"], progress=_Throttled(writer),
            cancel=everything, cancel_each=each)
        _tell(writer, "done", outcome)
    except DeskError as exc:
        _tell(writer, "error", exc.message)
    except BaseException as exc:  # a bug: the window says so, the log has the trace
        log.exception("the sending process failed")
        _tell(writer, "error", f"The submission stopped on an unexpected error "
                               f"({type(exc).__name__}); resume it with Submit › Unfinished "
                               "submissions….")


def _tell(writer: FrameWriter, kind: str, payload: Any) -> None:
    try:
        writer.send(kind, payload)
        writer.close()
    except OSError:  # the window has gone; the journal and the history hold the outcome
        pass


def _take_cancels(stream: Any, everything: CancelToken, each: dict[str, CancelToken]) -> None:
    """Cancel messages from the window; the end of stdin (the window went away) cancels all."""
    try:
        while True:
            kind, name = pickle.load(stream)
            if kind != "cancel":
                continue
            if name == _ALL:
                everything.cancel()
            elif name in each:
                each[name].cancel()
    except (EOFError, OSError, pickle.UnpicklingError, ValueError):
        everything.cancel()


class _Throttled:
    """The progress callback of the child: each destination's report goes up at most every
    _PROGRESS_EVERY_SECONDS, except a report that says something new (another phase) or is
    the last (it reaches its total): those always go."""

    def __init__(self, writer: FrameWriter) -> None:
        self._writer = writer
        self._last: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, report: Progress) -> None:
        now = time.monotonic()
        final = report.total is not None and report.done >= report.total
        with self._lock:
            sent_at, message = self._last.get(name, (0.0, ""))
            if not final and report.message == message and \
                    now - sent_at < _PROGRESS_EVERY_SECONDS:
                return
            self._last[name] = (now, report.message)
        try:
            self._writer.send("progress", (name, report))
        except OSError:  # the window has gone (stdin's end cancels the run): nobody to tell
            pass
