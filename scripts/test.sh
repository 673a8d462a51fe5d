#!/usr/bin/env bash
# The whole check: ruff, mypy, then pytest headless. When gnome-keyring and D-Bus are installed,
# pytest runs inside a private D-Bus session with an unlocked gnome-keyring, so the keyring tests
# talk to a real Secret Service (and are required to: OPTOUT_DESK_REQUIRE_KEYRING=1).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export QT_QPA_PLATFORM=offscreen

echo "== ruff"; "$VENV/bin/ruff" check optout_desk tests bench
echo "== mypy"; "$VENV/bin/mypy"

PYTEST=("$VENV/bin/python" -m pytest "$@")
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
    echo "== pytest (real Secret Service: gnome-keyring in a private D-Bus session)"
    OPTOUT_DESK_REQUIRE_KEYRING=1 bash scripts/with-keyring.sh "${PYTEST[@]}"
else
    echo "== pytest (no gnome-keyring/dbus-run-session here: keyring tests will be skipped)"
    "${PYTEST[@]}"
fi
# pytest exits 5 when it collected no tests; set -e turns that (like any failure) into ours.
