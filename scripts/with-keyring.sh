#!/usr/bin/env bash
# Run a command with a real Secret Service: a private D-Bus session with an unlocked
# gnome-keyring whose files live in a throwaway folder. Used by scripts/test.sh (pytest) and
# .ci/run (the installed app's --self-test).
#   scripts/with-keyring.sh COMMAND [ARG...]
# Exits 97 if the keyring daemon cannot be started and unlocked; otherwise the command's status.
set -euo pipefail
for tool in dbus-run-session gnome-keyring-daemon; do
    command -v "$tool" >/dev/null || { echo "with-keyring.sh: $tool is not installed" >&2; exit 97; }
done
KEYRING_HOME=$(mktemp -d)   # must exist, or the daemon writes into the real home folder
trap 'rm -rf "$KEYRING_HOME"' EXIT
# --unlock with a password on stdin: without it keyring fails with "Prompt dismissed".
dbus-run-session -- sh -c '
    home=$1; shift
    printf %s test-pw | HOME="$home" gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 97
    exec "$@"
' sh "$KEYRING_HOME" "$@"
