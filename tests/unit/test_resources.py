"""The resources folder is found from source and from a frozen bundle, and the committed icon
files are what the installers expect (sizes, containers, the .desktop entry)."""

from __future__ import annotations

import configparser
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

from optout_desk import resources
from optout_desk.resources import ResourceNotFoundError, app_icon_path, app_icon_png

REPO = Path(__file__).resolve().parents[2]
ICONS = REPO / "resources" / "icons"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


def load_make_icons() -> ModuleType:
    script = REPO / "packaging" / "make_icons.py"
    spec = importlib.util.spec_from_file_location("make_icons", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_source_tree_resources_are_found() -> None:
    assert resources.resources_dir() == REPO / "resources"
    assert app_icon_path() == ICONS / "optout-desk.svg"
    assert app_icon_png(256) == ICONS / "optout-desk-256.png"


def test_a_frozen_bundle_wins_over_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "resources" / "icons").mkdir(parents=True)
    (tmp_path / "resources" / "icons" / "optout-desk.svg").write_text("<svg/>")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    assert app_icon_path() == tmp_path / "resources" / "icons" / "optout-desk.svg"


def test_a_missing_file_names_itself_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "resources").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    message = r"icons/optout-desk\.svg is missing.*Reinstall"
    with pytest.raises(ResourceNotFoundError, match=message):
        app_icon_path()


def test_no_resources_folder_anywhere_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_package = tmp_path / "site-packages" / "optout_desk"
    fake_package.mkdir(parents=True)
    monkeypatch.setattr(resources, "__file__", str(fake_package / "resources.py"))
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)

    with pytest.raises(ResourceNotFoundError, match="resources folder is missing"):
        resources.resources_dir()


@pytest.mark.parametrize("size", [16, 22, 24, 32, 48, 64, 128, 256, 512])
def test_each_png_has_its_size(size: int) -> None:
    assert png_size(app_icon_png(size).read_bytes()) == (size, size)


def test_ico_holds_every_windows_size_as_png() -> None:
    data = (ICONS / "optout-desk.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        blob = data[offset : offset + length]
        assert png_size(blob) == (width or 256, height or 256)
        sizes.append(width or 256)
    assert sizes == [16, 20, 24, 32, 40, 48, 64, 256]


def test_icns_chunks_are_consistent() -> None:
    data = (ICONS / "optout-desk.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    chunks, offset = {}, 8
    while offset < len(data):
        kind = data[offset : offset + 4].decode()
        length = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        chunks[kind] = png_size(data[offset + 8 : offset + length])[0]
        offset += length
    assert offset == len(data)
    assert chunks == {"icp4": 16, "icp5": 32, "icp6": 64, "ic07": 128, "ic08": 256,
                      "ic09": 512, "ic10": 1024, "ic11": 32, "ic12": 64, "ic13": 256, "ic14": 512}


def test_ico_container_writer_round_trips_offsets() -> None:
    make_icons = load_make_icons()
    blobs = {16: PNG_SIGNATURE + b"a" * 30, 256: PNG_SIGNATURE + b"b" * 50}

    data = make_icons.ico_container(blobs)

    first = struct.unpack("<BBBBHHII", data[6:22])
    second = struct.unpack("<BBBBHHII", data[22:38])
    assert first[0] == 16 and second[0] == 0  # 0 stands for 256
    assert data[first[7] : first[7] + first[6]] == blobs[16]
    assert data[second[7] : second[7] + second[6]] == blobs[256]


def test_desktop_entry_launches_the_installed_command() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(REPO / "resources" / "linux" / "optout-desk.desktop")
    section = entry["Desktop Entry"]

    assert section["Type"] == "Application"
    assert section["Exec"] == "optout-desk"
    assert section["Icon"] == "optout-desk"  # the hicolor name the .deb installs
    assert section["Name"] == "Opt-out Desk"
    assert section["Categories"].endswith(";")
    assert section["StartupWMClass"] == "optout-desk"
