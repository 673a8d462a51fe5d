"""`optout-desk --self-test`: checks what breaks only in a packaged build, one line per check.

A frozen app loses what Python finds at run time rather than by import: package metadata (the
version, keyring's backend entry points), data files (phonenumbers' per-region metadata, certifi,
the resources folder), Qt plugins (platform, image formats) and modules imported by name. Each
check below exercises one of those the way the app does, prints `ok`, `warn` or `FAIL` with a
short reason, and the command exits 1 if any check failed.

A missing keyring backend is a warning (the desk still works, asking for keys each session)
unless OPTOUT_DESK_REQUIRE_KEYRING=1 says a Secret Service must be there, as in CI.

Qt is imported here only, inside its checks: the self-test is a top-level tool, not a layer.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from optout_desk import __version__, paths

T = TypeVar("T")

KEYRING_TIMEOUT_S = 8.0
SANDBOX_TIMEOUT_S = 8.0
CHILD_TIMEOUT_S = 20.0  # a child process of the desk starts, answers and ends
PROBE_SERVICE = "optout-desk-self-test"
# The entry point name of each OS's native keyring backend, as keyring registers them.
NATIVE_KEYRING = {"linux": "SecretService", "win32": "Windows", "darwin": "macOS"}
NATIVE_QT_PLATFORM = {"linux": "xcb", "win32": "windows", "darwin": "cocoa"}


class CheckWarning(Exception):
    """The check found something degraded but usable."""


@dataclass(frozen=True)
class CheckResult:
    status: str  # "ok" | "warn" | "FAIL"
    name: str
    detail: str
    seconds: float

    def line(self) -> str:
        if self.status == "ok":
            return f"ok   {self.name} ({self.detail})" if self.detail else f"ok   {self.name}"
        return f"{self.status:<4} {self.name}: {self.detail}"


def keyring_required() -> bool:
    return os.environ.get("OPTOUT_DESK_REQUIRE_KEYRING") == "1"


def run_with_timeout(work: Callable[[], T], seconds: float, what: str) -> T:
    """Run `work` on a daemon thread; raise TimeoutError if it has not finished in `seconds`
    (a keyring waiting on an unlock prompt, a server that never answers)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread as is
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"self-test {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not answer within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


# --- the checks: each returns a detail for its "ok" line or raises ---------------------------


def check_version() -> str:
    if __version__.endswith("+unknown"):
        raise RuntimeError(
            "the optout-desk package metadata is missing, so the version is unknown "
            "(a build without copy_metadata('optout-desk'))"
        )
    mode = "frozen" if getattr(sys, "frozen", False) else "source"
    return f"{__version__}, {mode}, Python {sys.version.split()[0]}, {sys.platform}"


def check_data_folder() -> str:
    folder = paths.data_dir()
    payload = secrets.token_bytes(32)
    fd, name = tempfile.mkstemp(prefix=".self-test-", dir=folder)
    probe = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if probe.read_bytes() != payload:
            raise RuntimeError(f"what was written to {folder} did not read back the same")
    finally:
        probe.unlink(missing_ok=True)
    return str(folder)


def check_database() -> str:
    from optout_desk.store import db

    conn = db.connect()
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return f"schema v{version}, {mode}"


def check_xlsx_round_trip() -> str:
    """openpyxl writes a tiny workbook, calamine reads it back: the two import paths."""
    from importlib.metadata import version

    import openpyxl
    import python_calamine

    rows: list[list[Any]] = [["Email", "Phone"], ["alice@example.com", 32470123456]]
    with tempfile.TemporaryDirectory(prefix="optout-desk-self-test-") as folder:
        path = Path(folder) / "probe.xlsx"
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        for row in rows:
            sheet.append(row)
        book.save(path)
        with python_calamine.CalamineWorkbook.from_path(str(path)) as workbook:
            read = workbook.get_sheet_by_index(0).to_python()
    if read != rows:  # calamine returns the number as 32470123456.0, which compares equal
        raise RuntimeError(f"calamine read back {read!r}, expected {rows!r}")
    return f"openpyxl {openpyxl.__version__} wrote, calamine {version('python-calamine')} read"


def check_xlsxwriter() -> str:
    import xlsxwriter

    with tempfile.TemporaryDirectory(prefix="optout-desk-self-test-") as folder:
        path = Path(folder) / "export.xlsx"
        book = xlsxwriter.Workbook(str(path))
        book.add_worksheet("Opt-outs").write_row(0, 0, ["Email", "Phone"])
        book.close()
        size = path.stat().st_size
    return f"xlsxwriter {xlsxwriter.__version__}, {size} bytes written"


def check_reader_child() -> str:
    """A spreadsheet is read by a child process (files/_isolated.py); the frozen app starts
    itself again as that child, with its reader flag."""
    from optout_desk.files.spreadsheet import read_table

    with tempfile.TemporaryDirectory(prefix="optout-desk-self-test-") as folder:
        path = Path(folder) / "probe.csv"
        path.write_text("Email\nalice@example.com\n", encoding="utf-8")
        table = run_with_timeout(lambda: read_table(path), CHILD_TIMEOUT_S, "the file reader")
    if table.rows != [["alice@example.com"]]:
        raise RuntimeError(f"the reader child read {len(table.rows)} rows, expected 1")
    return "a child process read 1 row"


def check_sender_child() -> str:
    """The window's submissions are sent by a child process (workflows/submission_process.py);
    the frozen app starts itself again as that child, with its sender flag."""
    from optout_desk.workflows.submission_process import execute_submission_isolated

    outcome = run_with_timeout(lambda: execute_submission_isolated({}, submission_id=None),
                               CHILD_TIMEOUT_S, "the sender")
    if outcome.runs:
        raise RuntimeError("the sender child answered an empty submission with runs")
    return "a child process answered"


def check_phone_metadata() -> str:
    """phonenumbers loads each region's metadata module by name on first use."""
    import phonenumbers

    results = []
    for text, region, expected in (
        ("0470 12 34 56", "BE", "+32470123456"),
        ("(201) 555-0123", "US", "+12015550123"),
    ):
        number = phonenumbers.parse(text, region)
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if formatted != expected or not phonenumbers.is_valid_number(number):
            raise RuntimeError(f"{region} number parsed as {formatted}, expected {expected}")
        results.append(region)
    return f"phonenumbers {phonenumbers.__version__}, {' and '.join(results)} parsed"


def check_email_validator() -> str:
    import email_validator

    info = email_validator.validate_email("Alice@Bücher.example", check_deliverability=False)
    if info.ascii_domain != "xn--bcher-kva.example":
        raise RuntimeError(f"IDNA domain came out as {info.ascii_domain!r}")
    try:
        email_validator.validate_email("not an address", check_deliverability=False)
    except email_validator.EmailNotValidError:
        pass
    else:
        raise RuntimeError("an invalid address was accepted")
    return f"email-validator {email_validator.__version__}, IDNA domains"


def _backend_name(backend: Any) -> str:
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        return " + ".join(_backend_name(b) for b in backend.backends) or "empty chain"
    return f"{type(backend).__module__}.{type(backend).__name__}"


def check_keyring() -> str:
    """The backend keyring picks, then a throwaway secret stored, read and deleted."""
    from importlib.metadata import entry_points

    import keyring
    from keyring.backends import fail, null
    from keyring.backends.chainer import ChainerBackend
    from keyring.errors import KeyringLocked

    registered = {ep.name for ep in entry_points(group="keyring.backends")}
    native = NATIVE_KEYRING.get(sys.platform)
    if native and native not in registered:
        raise RuntimeError(
            f"keyring's backend list is missing {native} (found: {sorted(registered) or 'none'}); "
            "the build lost keyring's entry-point metadata"
        )
    backend = keyring.get_keyring()
    name = _backend_name(backend)
    empty = isinstance(backend, fail.Keyring | null.Keyring) or (
        isinstance(backend, ChainerBackend) and not backend.backends
    )
    if empty:
        message = (
            f"no keyring backend is available ({name}); the desk will ask for API keys each "
            "session or read them from environment variables"
        )
        if keyring_required():
            raise RuntimeError(message)
        raise CheckWarning(message)

    def round_trip() -> None:
        username = f"probe-{os.getpid()}-{secrets.token_hex(4)}"
        secret = secrets.token_urlsafe(24)
        keyring.set_password(PROBE_SERVICE, username, secret)
        try:
            if keyring.get_password(PROBE_SERVICE, username) != secret:
                raise RuntimeError("the secret read back differs from the one stored")
        finally:
            keyring.delete_password(PROBE_SERVICE, username)
        if keyring.get_password(PROBE_SERVICE, username) is not None:
            raise RuntimeError("the throwaway secret was still there after deleting it")

    try:
        run_with_timeout(round_trip, KEYRING_TIMEOUT_S, "the keyring")
    except KeyringLocked as exc:
        message = (
            f"{name} is there but locked ({exc}); unlock it (log in to the desktop session or "
            "open the keyring app) and run the self-test again"
        )
        if keyring_required():
            raise RuntimeError(message) from exc
        raise CheckWarning(message) from exc
    except Exception as exc:
        message = f"{name} is there but a throwaway secret did not round-trip: {_reason(exc)}"
        if keyring_required():
            raise RuntimeError(message) from exc
        raise CheckWarning(message) from exc
    return f"{name}, secret stored, read and deleted"


def check_sandbox_fetch() -> str:
    """The built-in sandbox starts and the CheckMarket connector fetches from it over HTTP."""
    from optout_desk.connectors.checkmarket import CheckMarketClient, CheckMarketSettings
    from optout_desk.sandbox.server import Sandbox, SandboxConfig

    def fetch() -> str:
        sandbox = Sandbox(SandboxConfig(records=40, seed=6, surveys=2)).start()
        try:
            settings = CheckMarketSettings(base_url=sandbox.base_url, page_size=15, timeout_s=5.0)
            with CheckMarketClient(settings, sandbox.master_key, sandbox.key) as client:
                records = client.list_optouts()
        finally:
            sandbox.stop()
        if not records:
            raise RuntimeError("the fetch from the sandbox returned no opt-outs")
        return f"{len(records)} opt-outs fetched from {sandbox.base_url}"

    return run_with_timeout(fetch, SANDBOX_TIMEOUT_S, "the sandbox fetch")


def check_receiver() -> str:
    """The webhook receiver (Starlette on uvicorn, loaded by name in a frozen app) starts on
    loopback, stores one LOX24 delivery before it answers, and stops."""
    import httpx

    from optout_desk.sandbox.lox24 import generate_events
    from optout_desk.store import inbox
    from optout_desk.store.db import connect
    from optout_desk.webhooks.runner import Receiver, ReceiverOptions

    def receive() -> str:
        token = secrets.token_urlsafe(24)
        db = connect()
        try:
            name = f"self-test-{secrets.token_hex(4)}"
            inbox.add_source(db, name, "lox24", inbox.hash_token(token))
        finally:
            db.close()
        receiver = Receiver(ReceiverOptions(port=0)).start()
        try:
            [event] = generate_events(1, seed=3, resubscribe_share=0)
            answer = httpx.post(f"{receiver.base_url}/hooks/{token}", json=event, timeout=10)
            if answer.status_code != 200 or answer.json().get("status") != "stored":
                raise RuntimeError(f"the receiver answered HTTP {answer.status_code}")
        finally:
            receiver.stop()
            db = connect()
            try:
                inbox.remove_source(db, name)
            finally:
                db.close()
        return f"a delivery stored and acknowledged at {receiver.base_url}"

    return run_with_timeout(receive, SANDBOX_TIMEOUT_S, "the webhook receiver")


def _ensure_platform_for_headless() -> str | None:
    """Without a display and without QT_QPA_PLATFORM, creating a QApplication aborts the
    process; test offscreen instead and say so."""
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return "no display found, so offscreen"
    return None


def check_qt_platform() -> str:
    """The platform plugin loads and a window shows (the part of start-up Qt owns)."""
    note = _ensure_platform_for_headless()
    started = time.perf_counter()
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "optout-desk"])
    assert isinstance(app, QApplication)
    window = QLabel("Opt-out Desk self-test")
    window.resize(320, 120)
    window.show()
    app.processEvents()
    shown = window.isVisible()
    elapsed = time.perf_counter() - started
    window.close()
    window.deleteLater()
    app.processEvents()
    if not shown:
        raise RuntimeError(f"a window did not show on the {app.platformName()} platform")
    detail = f"{app.platformName()}, a window shown in {elapsed:.2f} s"
    return f"{detail}; {note}" if note else detail


def check_qt_plugins() -> str:
    """Image format plugins (the SVG window icon, ICO) and the OS's native platform plugin."""
    from PySide6.QtCore import QLibraryInfo
    from PySide6.QtGui import QIcon, QImageReader

    from optout_desk.resources import app_icon_path

    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    missing = [f for f in ("svg", "ico", "png") if f not in formats]
    if missing:
        raise RuntimeError(f"Qt cannot read {', '.join(missing)} images (image format plugins)")
    icon = QIcon(str(app_icon_path()))
    if icon.pixmap(64, 64).isNull():
        raise RuntimeError(f"the application icon {app_icon_path()} did not render")
    plugin_dir = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    found = sorted(
        p.name.split(".")[0].removeprefix("libq").removeprefix("q")
        for p in plugin_dir.glob("*")
        if p.is_file()
    )
    native = NATIVE_QT_PLATFORM.get(sys.platform)
    if native and native not in found:
        raise RuntimeError(
            f"the {native} platform plugin is not in {plugin_dir} (found: {found or 'none'})"
        )
    return f"svg/ico images, app icon, platforms: {', '.join(found)}"


def check_charts() -> str:
    """pyqtgraph imports (it loads QtOpenGL by name) and draws a plot offscreen."""
    import pyqtgraph
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        raise RuntimeError("no QApplication (the Qt platform check failed first)")
    plot = pyqtgraph.PlotWidget()
    plot.plot([1, 2, 3, 4], [3, 1, 4, 2])
    plot.resize(240, 160)
    image = plot.grab().toImage()
    plot.deleteLater()
    if image.isNull():
        raise RuntimeError("the plot did not render")
    return f"pyqtgraph {pyqtgraph.__version__}, a plot rendered"


CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("version", check_version),
    ("data folder writable", check_data_folder),
    ("database", check_database),
    ("xlsx (openpyxl, calamine)", check_xlsx_round_trip),
    ("xlsx export (xlsxwriter)", check_xlsxwriter),
    ("file reader (child process)", check_reader_child),
    ("sender (child process)", check_sender_child),
    ("phone number metadata", check_phone_metadata),
    ("email validation", check_email_validator),
    ("keyring", check_keyring),
    ("sandbox fetch", check_sandbox_fetch),
    ("webhook receiver (uvicorn)", check_receiver),
    ("qt platform plugin", check_qt_platform),
    ("qt plugins and icon", check_qt_plugins),
    ("charts (pyqtgraph)", check_charts),
)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or "no message"
    return text if isinstance(exc, RuntimeError | CheckWarning) else f"{type(exc).__name__}: {text}"


def run_check(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        status = "ok"
    except CheckWarning as exc:
        status, detail = "warn", _reason(exc)
    except Exception as exc:  # every failure becomes one line; the traceback is not the point
        status, detail = "FAIL", _reason(exc)
    return CheckResult(status, name, detail, time.perf_counter() - started)


def run_self_test(out: TextIO | None = None) -> int:
    """Run every check, print one line each as it finishes, return 1 if any failed."""
    stream = out or sys.stdout
    started = time.perf_counter()
    results = []
    for name, check in CHECKS:
        result = run_check(name, check)
        results.append(result)
        print(result.line(), file=stream, flush=True)
    failed = sum(r.status == "FAIL" for r in results)
    warned = sum(r.status == "warn" for r in results)
    total = time.perf_counter() - started
    verdict = "FAILED" if failed else "passed"
    print(
        f"self-test {verdict}: {len(results) - failed - warned} ok, {warned} warnings, "
        f"{failed} failed in {total:.1f} s",
        file=stream,
        flush=True,
    )
    return 1 if failed else 0
