"""A corpus of broken and hostile files, generated here: each gives ONE clear sentence
(BadInputError, exit code 2), never a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import os
import struct
import time
import zipfile
from pathlib import Path

import pytest

from optout_desk.core.errors import EXIT_BAD_INPUT, BadInputError
from optout_desk.files import _sniff
from optout_desk.files.spreadsheet import list_sheets, read_table


def _refused(path: Path, pattern: str) -> BadInputError:
    started = time.perf_counter()
    with pytest.raises(BadInputError, match=pattern) as caught:
        read_table(path)
    assert time.perf_counter() - started < 10
    error = caught.value
    assert error.exit_code == EXIT_BAD_INPUT
    assert "\n" not in error.message and "Traceback" not in error.message
    return error


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "gone.xlsx", "does not exist")


def test_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    _refused(folder, "is a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_no_permission(tmp_path: Path) -> None:
    path = tmp_path / "locked.csv"
    path.write_text("Email\na@example.com\n")
    path.chmod(0)
    _refused(path, "not allowed to read")


def test_no_permission_message_without_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs as root too: opening is made to fail the way a locked file does."""
    path = tmp_path / "locked.csv"
    path.write_text("Email\na@example.com\n")
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", deny)
    _refused(path, "not allowed to read")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    _refused(path, "is empty")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "list.pdf"
    path.write_bytes(b"%PDF-1.4")
    _refused(path, r"not a spreadsheet the desk can open.*\.xlsx")


def test_truncated_xlsx(contacts_xlsx: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(contacts_xlsx.read_bytes()[: contacts_xlsx.stat().st_size // 2])
    _refused(path, "damaged or incomplete")


def test_corrupt_member_inside_a_valid_zip(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<<<this is not xml")
    _refused(path, "damaged")


def test_garbage_with_xlsx_name(tmp_path: Path) -> None:
    path = tmp_path / "garbage.xlsx"
    path.write_bytes(bytes(range(256)) * 64)
    _refused(path, "binary data")


def test_binary_garbage_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(os.urandom(20_000))
    _refused(path, "binary data")


def test_control_characters_without_nul(tmp_path: Path) -> None:
    path = tmp_path / "weird.csv"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15]) * 500)
    _refused(path, "binary data")


def test_password_protected_xlsx(tmp_path: Path) -> None:
    """Excel saves an encrypted xlsx as an OLE compound file with an EncryptedPackage stream."""
    path = tmp_path / "secret.xlsx"
    name = "EncryptedPackage".encode("utf-16-le")
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000 + name + b"\x00" * 600)
    _refused(path, "protected by a password")


def test_encrypted_zip_members(tmp_path: Path) -> None:
    path = tmp_path / "zipcrypto.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", b"x")
    # zipfile cannot write ZipCrypto; set the "encrypted" flag bit in the central directory.
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1
    path.write_bytes(bytes(data))
    _refused(path, "protected by a password")


def test_damaged_legacy_xls(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000)
    _refused(path, "damaged")


def test_html_saved_as_xls(tmp_path: Path) -> None:
    path = tmp_path / "report.xls"
    path.write_text("<html><body><table><tr><td>Email</td></tr></table></body></html>")
    _refused(path, "web page")


def test_word_document_renamed(tmp_path: Path) -> None:
    path = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    _refused(path, "Word document")


def test_plain_zip_archive(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("list.csv", "Email\na@example.com\n")
    _refused(path, "zip archive")


def test_zip_bomb_by_total_size_is_refused_from_the_directory(tmp_path: Path) -> None:
    """The central directory claims 3 GB; nothing is decompressed to find out."""
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * 1000)
    _patch_uncompressed_size(path, "xl/worksheets/sheet1.xml", 3 * 1024**3)
    _refused(path, "would unpack to 3.0 GB")


def test_zip_bomb_by_ratio(tmp_path: Path) -> None:
    path = tmp_path / "ratio.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (_sniff.RATIO_CHECK_ABOVE_BYTES + 1))
    _refused(path, "zip bomb")


def test_list_sheets_refuses_the_same_files(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    with pytest.raises(BadInputError, match="is empty"):
        list_sheets(path)


def test_workbook_with_only_empty_sheets(make_xlsx: object, tmp_path: Path) -> None:
    from tests.fixtures.spreadsheets import write_xlsx

    path = write_xlsx(tmp_path / "blank.xlsx", {"One": [], "Two": []})
    _refused(path, "Every sheet .* is empty")


def test_a_header_without_data(tmp_path: Path) -> None:
    from tests.fixtures.spreadsheets import write_xlsx

    path = write_xlsx(tmp_path / "header.xlsx", {"S": [["Email", "Phone"]]})
    _refused(path, "header row but no data rows")


def test_a_file_that_disappears_between_checks(
    contacts_xlsx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted after the app's checks, before the reader process opens it."""
    real_check = _sniff.check_readable

    def check_then_delete(path: Path) -> int:
        size = real_check(path)
        path.unlink()
        return size

    monkeypatch.setattr("optout_desk.files.spreadsheet.check_readable", check_then_delete)
    with pytest.raises(BadInputError, match="moved or deleted while it was being read"):
        read_table(contacts_xlsx)


def _patch_uncompressed_size(path: Path, member: str, size: int) -> None:
    """Rewrite the central directory's uncompressed size of `member` as ZIP64 would not:
    a plain 32-bit field, so values above 4 GB are out; 3 GB fits."""
    data = bytearray(path.read_bytes())
    signature = b"PK\x01\x02"
    start = 0
    while (start := data.find(signature, start)) != -1:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        name = bytes(data[start + 46:start + 46 + name_length]).decode()
        if name == member:
            struct.pack_into("<I", data, start + 24, size)
        start += 4
    path.write_bytes(bytes(data))
