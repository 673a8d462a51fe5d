#!/usr/bin/env bash
# Build the installer for the current OS (`make package`):
#   every OS: the PyInstaller onedir app in dist/optout-desk (packaging/optout-desk.spec)
#   Linux:    dist/optout-desk_VERSION_ARCH.deb          (packaging/linux/build_deb.sh)
#   macOS:    dist/Opt-out Desk.app and dist/Opt-out-Desk-VERSION.dmg (packaging/macos/build_dmg.sh)
#   Windows:  dist/optout-desk-VERSION-setup.exe         (packaging/windows/optout-desk.iss, Inno Setup)
# The version comes from pyproject.toml, the one place it is written.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=.venv/Scripts/python.exe   # a Windows venv
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

echo "== PyInstaller: Opt-out Desk $VERSION"
rm -rf dist/optout-desk "dist/Opt-out Desk.app"
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/optout-desk.spec

case "$(uname -s)" in
    Linux)
        echo "== .deb"
        bash packaging/linux/build_deb.sh "$VERSION"
        ;;
    Darwin)
        echo "== .dmg"
        bash packaging/macos/build_dmg.sh "$VERSION"
        ;;
    MINGW* | MSYS* | CYGWIN*)
        echo "== Inno Setup"
        # Inno Setup 6 is preinstalled on GitHub's Windows runners; MSYS_NO_PATHCONV stops Git
        # Bash from rewriting /D as a path.
        ISCC=${ISCC:-iscc}
        MSYS_NO_PATHCONV=1 "$ISCC" /Q "/DAppVersion=$VERSION" packaging/windows/optout-desk.iss
        ;;
    *)
        echo "build.sh: no installer for $(uname -s); the app is in dist/optout-desk" >&2
        ;;
esac
