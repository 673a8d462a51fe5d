#!/usr/bin/env bash
# Turn the PyInstaller bundle "dist/Opt-out Desk.app" into dist/Opt-out-Desk-VERSION.dmg.
#   packaging/macos/build_dmg.sh VERSION        (packaging/build.sh calls it on macOS)
#
# Signing and notarisation run only when their environment variables are set, so an unsigned
# developer build still works (Gatekeeper will then ask the user to confirm the first start):
#   MACOS_SIGN_IDENTITY   "Developer ID Application: Name (TEAMID)" in the login keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   an app-specific password for notarytool
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:?usage: build_dmg.sh VERSION}
APP="dist/Opt-out Desk.app"
DMG="dist/Opt-out-Desk-$VERSION.dmg"
ENTITLEMENTS=packaging/macos/entitlements.plist
[ -d "$APP" ] || { echo "build_dmg.sh: $APP is missing (run make package)" >&2; exit 1; }

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    echo "== codesign ($MACOS_SIGN_IDENTITY)"
    # Hardened runtime (required for notarisation); --deep signs the bundled Qt frameworks and
    # Python extension modules before the app itself.
    codesign --force --deep --timestamp --options runtime \
        --entitlements "$ENTITLEMENTS" --sign "$MACOS_SIGN_IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
else
    echo "== codesign skipped (MACOS_SIGN_IDENTITY is not set)"
fi

echo "== dmg"
rm -f "$DMG"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"   # drag-to-install
hdiutil create -volname "Opt-out Desk $VERSION" -srcfolder "$STAGE" -fs HFS+ \
    -format UDZO -imagekey zlib-level=9 -ov "$DMG"

if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
fi

if [ -n "${MACOS_SIGN_IDENTITY:-}" ] && [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] \
    && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
    echo "== notarytool"
    xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
else
    echo "== notarisation skipped (needs MACOS_SIGN_IDENTITY, APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD)"
fi
echo "built $DMG ($(du -h "$DMG" | cut -f1))"
