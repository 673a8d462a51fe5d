"""What a file really is, judged by its bytes rather than its name, and whether it is safe to open.

Operators rename files ("list.xlsx" that is really a CSV export, an HTML page saved as .xls), and
some files are hostile or broken (zip bombs, truncated downloads, password-protected workbooks).
Everything here answers with one plain sentence in a BadInputError before any parser runs, so a
bad file never produces a traceback, a hang or a memory blow-up.
"""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path

from optout_desk.core.errors import BadInputError
from optout_desk.core.wording import counted

from .formats import (
    PLAIN_TEXT_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    TABLE_TEXT_EXTENSIONS,
    WORKBOOK_EXTENSIONS,
    describe_extensions,
)
from .limits import (
    MAX_RATIO,
    MAX_UNCOMPRESSED_BYTES,
    MAX_ZIP_MEMBERS,
    RATIO_CHECK_ABOVE_BYTES,
)

# Extensions the desk opens (one definition: files/formats.py); anything else is refused by
# name before its bytes are read.
EXCEL_EXTENSIONS = frozenset(WORKBOOK_EXTENSIONS)
TEXT_EXTENSIONS = frozenset(TABLE_TEXT_EXTENSIONS + PLAIN_TEXT_EXTENSIONS)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_OTHER_MAGIC = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"Rar!", b"\x1f\x8b", b"7z\xbc\xaf")
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


class FileKind(StrEnum):
    XLSX = "xlsx"  # also xlsm: the same container
    ODS = "ods"
    XLS = "xls"
    TEXT = "text"


def check_readable(path: Path) -> int:
    """The file's size; BadInputError if it is missing, a folder, unreadable, empty, or of an
    extension the desk does not open."""
    name = path.name
    _check_exists(path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise BadInputError(
            f"'{name}' is not a spreadsheet the desk can open: use an "
            f"{describe_extensions()} file."
        )
    size = check_file(path)
    if size == 0:
        raise BadInputError(f"'{name}' is empty (0 bytes); export the spreadsheet again.")
    return size


def check_file(path: Path) -> int:
    """The size of a file the desk is about to read; BadInputError if it is missing, a folder
    or unreadable (any kind of file: spreadsheets, and the text lists submit reads)."""
    _check_exists(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise _missing(path) from None
    except PermissionError:
        raise BadInputError(
            f"The desk is not allowed to read '{path}'; check the file's permissions."
        ) from None
    except IsADirectoryError:
        raise _folder(path) from None
    except OSError as exc:
        raise BadInputError(f"'{path}' could not be read: {exc.strerror or exc}.") from None
    return size


def _check_exists(path: Path) -> None:
    try:
        if path.is_dir():
            raise _folder(path)
        if not path.exists():
            raise _missing(path)
    except OSError as exc:
        raise BadInputError(f"'{path}' could not be read: {exc.strerror or exc}.") from None


def _folder(path: Path) -> BadInputError:
    return BadInputError(
        f"'{path}' is a folder, not a file; choose a file inside it."
    )


def _missing(path: Path) -> BadInputError:
    return BadInputError(f"The file '{path}' does not exist (it may have been moved or deleted).")


def sniff_kind(path: Path) -> FileKind:
    """The file's real format from its first bytes (and, for zips, its directory)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    name = path.name
    if head.startswith(_ZIP_MAGIC):
        return _zip_kind(path)
    if head.startswith(_OLE_MAGIC):
        if _contains(path, _ENCRYPTED_PACKAGE):
            raise _password_protected(name)
        return FileKind.XLS
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<table")):
        raise BadInputError(
            f"'{name}' is a web page saved with a spreadsheet name, not a real workbook; open it "
            "in Excel and save it as .xlsx or .csv."
        )
    if lowered.startswith(b"<?xml"):
        raise BadInputError(
            f"'{name}' is an XML file (perhaps 'XML Spreadsheet 2003'); open it in Excel and save "
            "it as .xlsx or .csv."
        )
    if head.startswith(_OTHER_MAGIC):
        raise BadInputError(
            f"'{name}' is not a spreadsheet (it looks like a PDF, an image or an archive)."
        )
    return FileKind.TEXT


def _zip_kind(path: Path) -> FileKind:
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            try:
                mimetype = archive.read("mimetype")[:100] if _has(members, "mimetype") else b""
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError):
                mimetype = b""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise BadInputError(
            f"'{name}' is damaged or incomplete (its zip container cannot be read); download or "
            "export it again."
        ) from None
    _check_bomb(name, members)
    if any(member.flag_bits & 0x1 for member in members):
        raise _password_protected(name)
    names = {member.filename for member in members}
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        if "xl/workbook.bin" in names and "xl/workbook.xml" not in names:
            raise BadInputError(
                f"'{name}' is an Excel binary workbook (.xlsb), which the desk cannot read; open "
                "it in Excel and save it as .xlsx."
            )
        return FileKind.XLSX
    if mimetype.startswith(_ODS_MIMETYPE) or "content.xml" in names:
        return FileKind.ODS
    if "word/document.xml" in names:
        raise BadInputError(f"'{name}' is a Word document, not a spreadsheet.")
    raise BadInputError(
        f"'{name}' is a zip archive, not a spreadsheet; extract the spreadsheet from it first."
    )


def _has(members: list[zipfile.ZipInfo], filename: str) -> bool:
    return any(member.filename == filename for member in members)


def _check_bomb(name: str, members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_ZIP_MEMBERS:
        raise BadInputError(
            f"'{name}' is a zip of {counted(len(members), 'file')}, not a workbook (a workbook "
            "holds a few dozen); the desk will not open it."
        )
    total = sum(member.file_size for member in members)
    compressed = sum(member.compress_size for member in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise BadInputError(
            f"'{name}' would unpack to {total / 1024**3:.1f} GB, more than the desk's limit of "
            f"{MAX_UNCOMPRESSED_BYTES / 1024**3:.1f} GB; split it into smaller files."
        )
    if total > RATIO_CHECK_ABOVE_BYTES and total > MAX_RATIO * max(compressed, 1):
        raise BadInputError(
            f"'{name}' is suspicious: it unpacks to {total // max(compressed, 1)} times its own "
            "size (a 'zip bomb'), so the desk will not open it."
        )


def _contains(path: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether the file holds `needle`, read in chunks so a large file costs no memory."""
    tail = b""
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            if needle in tail + block[: len(needle)] or needle in block:
                return True
            tail = block[-len(needle):]
    return False


def _password_protected(name: str) -> BadInputError:
    return BadInputError(
        f"'{name}' is protected by a password; open it in Excel, remove the password "
        "(File > Info > Protect Workbook) and save it again."
    )
