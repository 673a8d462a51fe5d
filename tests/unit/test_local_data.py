"""The data folder holds personal data: it is private to the user (folder 0700, files 0600),
including folders and files an older desk left readable; the log masks values, not the
timestamp of every line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from optout_desk import log, paths
from optout_desk.store.db import connect

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_data_folder_and_database_are_private(isolated_home: Path) -> None:
    os.chmod(isolated_home, 0o755)  # as an older desk (or mkdir) left it
    db = connect()
    try:
        db.execute("CREATE TABLE t (x)")  # writes: the -wal and -shm exist now
        db.execute("INSERT INTO t VALUES (1)")
        database = paths.database_path()
        assert mode(isolated_home) == 0o700
        assert mode(database) == 0o600
        for suffix in ("-wal", "-shm"):
            companion = database.with_name(database.name + suffix)
            assert companion.exists()
            assert mode(companion) == 0o600
    finally:
        db.close()


@posix_only
def test_existing_world_readable_database_is_tightened(isolated_home: Path) -> None:
    database = paths.database_path()
    connect().close()
    database.chmod(0o644)
    wal = database.with_name(database.name + "-wal")
    wal.write_bytes(b"")
    wal.chmod(0o666)
    connect().close()
    assert mode(database) == 0o600
    assert not wal.exists() or mode(wal) == 0o600


@posix_only
def test_a_new_data_folder_is_created_private(tmp_path: Path) -> None:
    paths.set_data_dir(tmp_path / "new" / "desk")
    folder = paths.data_dir()
    assert mode(folder) == 0o700
    assert mode(paths.exports_dir()) == 0o700
    assert mode(paths.log_dir()) == 0o700


@posix_only
def test_log_files_are_private_also_after_rotation(isolated_home: Path) -> None:
    handler = log.setup_logging()
    try:
        logfile = Path(handler.baseFilename)
        assert mode(logfile) == 0o600
        handler.doRollover()
        assert mode(logfile) == 0o600
        assert mode(logfile.with_name(logfile.name + ".1")) == 0o600
    finally:
        logging.getLogger("optout_desk").removeHandler(handler)
        handler.close()


@posix_only
def test_settings_file_is_private_and_stays_so_when_qt_saves_it(isolated_home: Path) -> None:
    from PySide6.QtCore import QSettings

    path = paths.settings_path()
    assert mode(path) == 0o600
    settings = QSettings(str(path), QSettings.Format.IniFormat)
    settings.setValue("window/last_page", "reconcile")
    settings.sync()
    assert settings.status() == QSettings.Status.NoError
    assert "reconcile" in path.read_text()
    assert mode(path) == 0o600


def test_a_formatted_log_line_keeps_its_timestamp_and_masks_values(
    isolated_home: Path,
) -> None:
    handler = log.setup_logging()
    logger = logging.getLogger("optout_desk.test")
    try:
        logger.info("submitted %s and %s; synced 2024-05-01 12:30 (2,537 of 2,537)",
                    "ann.smith@example.com", "+32 470 12 34 56")
        try:
            raise ValueError("bad row for bob@example.org, 0470 98 76 54")
        except ValueError:
            logger.exception("row failed")
        handler.flush()
        text = Path(handler.baseFilename).read_text(encoding="utf-8")
    finally:
        logger.parent.removeHandler(handler)  # type: ignore[union-attr]
        handler.close()
    first = text.splitlines()[0]
    timestamp = first.split(" INFO ")[0]
    assert timestamp[:4].isdigit() and "<phone>" not in timestamp  # "2026-12-02 17:08:10,302"
    assert first.endswith(
        "submitted <email> and <phone>; synced 2024-05-01 12:30 (2,537 of 2,537)")
    assert "ann.smith" not in text and "470 12 34 56" not in text
    assert "bob@example.org" not in text and "98 76 54" not in text
    assert "ValueError: bad row for <email>, <phone>" in text


def test_redact_leaves_dates_and_times_but_masks_phones() -> None:
    assert log.redact("at 2024-05-01T10:00:00Z") == "at 2024-05-01T10:00:00Z"
    assert log.redact("at 2024-05-01 10:00:00") == "at 2024-05-01 10:00:00"
    assert log.redact("call 0032 470 12 34 56 now") == "call <phone> now"
    assert log.redact("call +32470123456") == "call <phone>"
