#!/usr/bin/env bash
# Package the PyInstaller build in dist/optout-desk as a .deb:
#   /opt/optout-desk/...                         the frozen app
#   /usr/bin/optout-desk -> /opt/optout-desk/optout-desk
#   /usr/share/applications/optout-desk.desktop  so it appears in the application menu
#   /usr/share/icons/hicolor/*/apps/optout-desk.*  (PNG sizes + scalable SVG)
# Depends lists the shared libraries the bundle links but does not contain, found with ldd and
# mapped to packages with dpkg -S on this (Debian) build machine; the build fails if a library
# the bundle needs is missing here (PyInstaller leaves such a library out with only a warning).
# Desktop and icon caches are refreshed by the dpkg triggers of desktop-file-utils and
# gtk-update-icon-cache, so the package needs no maintainer scripts.
#   packaging/linux/build_deb.sh VERSION   ->  dist/optout-desk_VERSION_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:?usage: build_deb.sh VERSION}
APP=dist/optout-desk
[ -x "$APP/optout-desk" ] || { echo "build_deb.sh: no PyInstaller build in $APP (run make package)" >&2; exit 1; }

ARCH=$(dpkg --print-architecture)
STAGE=build/deb/optout-desk_${VERSION}_${ARCH}
DEB=dist/optout-desk_${VERSION}_${ARCH}.deb
rm -rf "$STAGE" dist/optout-desk_*.deb   # one .deb in dist/, for CI to find
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/doc/optout-desk"

cp -a "$APP" "$STAGE/opt/optout-desk"
ln -s /opt/optout-desk/optout-desk "$STAGE/usr/bin/optout-desk"
install -m 0644 resources/linux/optout-desk.desktop "$STAGE/usr/share/applications/"
for png in resources/icons/optout-desk-*.png; do
    size=${png##*-}; size=${size%.png}
    install -D -m 0644 "$png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/optout-desk.png"
done
install -D -m 0644 resources/icons/optout-desk.svg \
    "$STAGE/usr/share/icons/hicolor/scalable/apps/optout-desk.svg"
cat > "$STAGE/usr/share/doc/optout-desk/copyright" <<'EOF'
Opt-out Desk. Proprietary. Bundles Python, Qt 6 (LGPLv3, via PySide6) and the Python libraries
listed in /opt/optout-desk/_internal/*.dist-info, each under its own licence.
EOF

# Dependencies: what the bundled binaries link that is not in the bundle.
bundle=$STAGE/opt/optout-desk/_internal
external=$(find "$bundle" -name '*.so*' -type f -print0 \
    | LD_LIBRARY_PATH="$bundle:$bundle/PySide6/Qt/lib" xargs -0 -n 50 ldd 2>/dev/null \
    | awk '/=>/ {print $1, $3}' | sort -u)
missing=$(awk '$2 == "not" {print $1}' <<<"$external" | sort -u)
if [ -n "$missing" ]; then
    echo "build_deb.sh: libraries the bundle needs are missing on this machine:" $missing >&2
    echo "  install them (see .ci/run) and rebuild so PyInstaller can bundle or declare them" >&2
    exit 1
fi
packages=$(awk '$2 ~ /^\// && $2 !~ /\/_internal\// {print $2}' <<<"$external" \
    | while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"; done \
    | cut -d: -f1 | sort -u)
glibc=$(dpkg-query -W -f='${Version}' libc6 | cut -d- -f1)
# Data (not libraries) the bundled Qt reads from the system: font configuration and fonts,
# keyboard layouts for xkbcommon.
depends="libc6 (>= $glibc), fontconfig-config, fonts-dejavu-core | fonts-freefont-ttf, xkb-data"
for pkg in $packages; do
    case $pkg in libc6) ;; *) depends="$depends, $pkg" ;; esac
done

installed_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: optout-desk
Version: $VERSION
Architecture: $ARCH
Maintainer: Opt-out Desk maintainers <optout-desk@example.com>
Installed-Size: $installed_kb
Depends: $depends
Recommends: gnome-keyring | keepassxc | kwalletmanager
Section: utils
Priority: optional
Homepage: https://example.com/optout-desk
Description: keep opt-outs in sync across survey, email and SMS platforms
 Opt-out Desk fetches opt-out lists from CheckMarket and other platforms, reconciles them
 with a CRM spreadsheet and submits the missing opt-outs in bulk, with a journal and a run
 history. API keys are kept in the desktop keyring (Secret Service).
EOF

# Predictable permissions whatever the umask of the build machine.
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f ! -perm -u+x -exec chmod 0644 {} +
find "$STAGE" -type f -perm -u+x -exec chmod 0755 {} +

# zstd: about a second here, where the default xz takes minutes.
dpkg-deb --build --root-owner-group -Zzstd -z3 "$STAGE" "$DEB" >/dev/null
echo "built $DEB ($(du -h "$DEB" | cut -f1); Depends: $depends)"
