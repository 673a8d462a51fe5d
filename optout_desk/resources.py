"""Where the top-level `resources/` folder (icons, .desktop file, samples) is at run time.

From a source checkout it sits next to the `optout_desk` package; in a PyInstaller build the spec
copies it into the bundle's data folder (`sys._MEIPASS`). Nothing here imports Qt: the GUI turns
`app_icon_path()` into a QIcon itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_ICON = "icons/optout-desk.svg"


class ResourceNotFoundError(FileNotFoundError):
    """A file the installation should contain is missing (a broken build or checkout)."""


def resources_dir() -> Path:
    """The `resources/` folder of this installation or source tree."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)  # set by the PyInstaller bootloader
    if bundle:
        candidates.append(Path(bundle) / "resources")
    package_dir = Path(__file__).resolve().parent
    candidates += [package_dir.parent / "resources", package_dir / "resources"]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ResourceNotFoundError(
        "The desk's resources folder is missing (looked in "
        + ", ".join(str(c) for c in candidates)
        + "). Reinstall Opt-out Desk."
    )


def resource_path(relative: str) -> Path:
    """The path of `relative` (e.g. "icons/optout-desk.svg") inside `resources/`.

    Raises ResourceNotFoundError when the file is not there, so a broken installation is named
    rather than showing up later as a blank icon.
    """
    path = resources_dir() / relative
    if not path.exists():
        raise ResourceNotFoundError(
            f"The desk's resource file {relative} is missing from {path.parent}. "
            "Reinstall Opt-out Desk."
        )
    return path


def app_icon_path() -> Path:
    """The application icon (scalable SVG; Qt needs its svg image plugin to load it)."""
    return resource_path(APP_ICON)


def app_icon_png(size: int) -> Path:
    """A rendered PNG of the icon (sizes: 16, 22, 24, 32, 48, 64, 128, 256, 512), for places
    that cannot draw SVG."""
    return resource_path(f"icons/optout-desk-{size}.png")
