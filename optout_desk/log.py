"""Logging to a rotated file in the data folder, with personal data kept out.

Code logs counts and `fingerprint()`s, never emails, phones or keys. As a safety net the file
handler also masks anything that looks like an email address or a phone number.
"""

from __future__ import annotations

import hashlib
import io
import logging
import logging.handlers
import re
from pathlib import Path

from optout_desk import paths

_EMAIL = re.compile(r"[^\s@<>()\"']+@[^\s@<>()\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ().\-]{6,}\d(?![\w.])")
# Dates and times are not phones: "2024-05-01", "2024-05-01 12:30", "12:30:05".
_DATE_OR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?|\d{2}(?::\d{2})+")

LOG_FILE_NAME = "optout-desk.log"
SENDER_LOG_FILE_NAME = "optout-desk-sender.log"
EVENT_STORE_LOG_FILE_NAME = "optout-desk-event-store.log"


def fingerprint(value: str) -> str:
    """A short, stable hash that lets support correlate a value across log lines without it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def redact(text: str) -> str:
    text = _EMAIL.sub("<email>", text)
    return _PHONE.sub(_phone_or_date, text)


def _phone_or_date(match: re.Match[str]) -> str:
    return match.group() if _DATE_OR_TIME.fullmatch(match.group()) else "<phone>"


class RedactingFormatter(logging.Formatter):
    """Masks emails and phones in what was logged (the message, its arguments, a traceback),
    never in what the formatter adds itself: the line's timestamp is no phone number."""

    def format(self, record: logging.LogRecord) -> str:
        redacted = logging.makeLogRecord(record.__dict__)
        redacted.msg, redacted.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            redacted.exc_text = self.formatException(record.exc_info)
        if redacted.exc_text:
            redacted.exc_text = redact(redacted.exc_text)
        if record.stack_info:
            redacted.stack_info = redact(record.stack_info)
        redacted.exc_info = None  # already formatted (and redacted) into exc_text
        return super().format(redacted)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotated log whose files are readable by the user only (0600), the first one and every
    one started by a rotation."""

    def _open(self) -> io.TextIOWrapper:
        paths.private_file(Path(self.baseFilename))
        return super()._open()


def setup_logging(debug: bool = False, file_name: str = LOG_FILE_NAME) -> logging.Handler:
    """Send the `optout_desk` loggers to a rotated file; returns the handler. The desk's
    child processes (the sender, the receiver's event store) each write a file of their own:
    two processes rotating one file lose lines (and on Windows the rename fails while the
    other holds the file open)."""
    handler = PrivateRotatingFileHandler(
        paths.log_dir() / file_name, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    logger = logging.getLogger("optout_desk")
    for old in list(logger.handlers):
        if isinstance(old, logging.handlers.RotatingFileHandler):
            logger.removeHandler(old)
            old.close()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    # httpx logs full URLs at INFO; they carry no keys (keys go in headers) but are noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
