"""Where exported files go: the user's documents folder by default, then the last folder chosen
in each save dialog (remembered per dialog: the receipt dialog and the table export each keep
their own). In demo mode the data folder is temporary and deleted on quit: exports written into
it are remembered, and the window asks what to do with them before it quits.

    paths = SavePaths(settings, temporary=context.temporary_data_dir)
    path = SaveDialog.ask(parent, paths, "reconcile-result", "Export the result",
                          "crm-reconciled.xlsx", "Excel workbook (*.xlsx);;CSV (*.csv)")
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog, QWidget

_KEY = "exports/last_folder/"


def documents_folder() -> Path:
    """The user's documents folder (their home folder where the platform names none)."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    folder = Path(location) if location else Path.home()
    return folder if folder.is_dir() else Path.home()


class SavePaths:
    """The folders offered by each save dialog, and the exports a demo's quit would delete."""

    def __init__(self, settings: QSettings, temporary: Path | None = None) -> None:
        self.settings = settings
        self.temporary = temporary
        self.written: list[Path] = []

    def folder(self, dialog: str) -> Path:
        """The last folder chosen in this dialog if it still exists, else documents."""
        remembered = str(self.settings.value(_KEY + dialog, "") or "")
        if remembered and Path(remembered).is_dir():
            return Path(remembered)
        return documents_folder()

    def suggested(self, dialog: str, file_name: str) -> Path:
        return self.folder(dialog) / file_name

    def chosen(self, dialog: str, path: Path) -> None:
        """The operator chose `path` in this dialog: its folder is offered next time."""
        self.settings.setValue(_KEY + dialog, str(Path(path).parent))

    def exported(self, path: Path) -> None:
        """A file was written: remember it if a demo's quit would delete it."""
        if self.temporary is not None and _inside(Path(path), self.temporary):
            self.written.append(Path(path))

    def at_risk(self) -> list[Path]:
        """Exports written into the temporary demo folder that still exist."""
        return [path for path in dict.fromkeys(self.written) if path.exists()]

    def rescue(self, target: Path | None = None) -> list[Path]:
        """Move the exports at risk to `target` (documents by default); returns new paths."""
        folder = target or documents_folder()
        moved = []
        for path in self.at_risk():
            destination = _free_name(folder / path.name)
            shutil.move(str(path), destination)
            moved.append(destination)
        self.written.clear()
        return moved


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _free_name(path: Path) -> Path:
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")
        number += 1
    return candidate


class SaveDialog:
    """The save dialog (a classmethod, so tests patch `ask` instead of a modal loop)."""

    @classmethod
    def ask(cls, parent: QWidget | None, paths: SavePaths, dialog: str, title: str,
            file_name: str, filters: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(parent, title,
                                              str(paths.suggested(dialog, file_name)), filters)
        if not name:
            return None
        paths.chosen(dialog, Path(name))
        return Path(name)
