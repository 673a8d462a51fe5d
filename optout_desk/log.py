"""Logging to a rotated file in the data folder, with personal data kept out.

Code logs counts and `fingerprint()`s, never emails, phones or keys. As a safety net the file
handler also masks anything that looks like an email address or a phone number.
"""

from __future__ import annotations

import hashlib
import logging
import logging.handlers
import re

from optout_desk import paths

_EMAIL = re.compile(r"[^\s@<>()\"']+@[^\s@<>()\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ().\-]{6,}\d(?![\w.])")

LOG_FILE_NAME = "optout-desk.log"


def fingerprint(value: str) -> str:
    """A short, stable hash that lets support correlate a value across log lines without it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def redact(text: str) -> str:
    text = _EMAIL.sub("<email>", text)
    return _PHONE.sub("<phone>", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(debug: bool = False) -> logging.Handler:
    """Send the `optout_desk` loggers to a rotated file; returns the handler."""
    handler = logging.handlers.RotatingFileHandler(
        paths.log_dir() / LOG_FILE_NAME, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
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
