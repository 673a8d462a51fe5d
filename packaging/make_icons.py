"""Render resources/icons/optout-desk.svg into every raster icon the installers need.

    .venv/bin/python packaging/make_icons.py

Writes, next to the SVG:
- optout-desk-<N>.png for N in PNG_SIZES (Linux hicolor theme, window icon fallbacks);
- optout-desk.ico with PNG-compressed entries 16…256 (Windows exe, installer, Start menu);
- optout-desk.icns with the PNG chunk types macOS reads (icp4…ic10).

Qt only rasterises and PNG-encodes here: its ICO writer stores one image per file and its ICNS
plugin is not in every wheel, so both containers are written by hand (each is a short header and
a table of PNG blobs). The output is deterministic, so re-running it on an unchanged SVG leaves
git clean. The files are committed; the build does not need to run this.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG = ICON_DIR / "optout-desk.svg"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 256)
# ICNS chunk type -> pixel size (the @2x types reuse a larger rendering).
ICNS_CHUNKS = (
    ("icp4", 16), ("icp5", 32), ("icp6", 64), ("ic07", 128), ("ic08", 256),
    ("ic09", 512), ("ic10", 1024), ("ic11", 32), ("ic12", 64), ("ic13", 256), ("ic14", 512),
)


def render(renderer: QSvgRenderer, size: int) -> bytes:
    """The SVG at size×size pixels, as PNG bytes."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SystemExit(f"could not encode a {size}px PNG")
    buffer.close()
    return bytes(data.data())


def ico_container(images: dict[int, bytes]) -> bytes:
    """ICONDIR + one ICONDIRENTRY per size + the PNG blobs (PNG entries: Windows Vista+)."""
    sizes = sorted(images)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        blob = images[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset)
        blobs += blob
        offset += len(blob)
    return header + entries + blobs


def icns_container(chunks: list[tuple[str, bytes]]) -> bytes:
    """'icns' + total length, then per chunk: 4-byte type + length (header included) + PNG."""
    body = b"".join(
        kind.encode("ascii") + struct.pack(">I", len(blob) + 8) + blob for kind, blob in chunks
    )
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def main() -> int:
    _app = QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG for Qt")
    cache: dict[int, bytes] = {}

    def png(size: int) -> bytes:
        if size not in cache:
            cache[size] = render(renderer, size)
        return cache[size]

    for size in PNG_SIZES:
        (ICON_DIR / f"optout-desk-{size}.png").write_bytes(png(size))
    (ICON_DIR / "optout-desk.ico").write_bytes(ico_container({s: png(s) for s in ICO_SIZES}))
    (ICON_DIR / "optout-desk.icns").write_bytes(
        icns_container([(kind, png(size)) for kind, size in ICNS_CHUNKS])
    )
    print(f"wrote {len(PNG_SIZES)} PNGs, optout-desk.ico and optout-desk.icns in {ICON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
