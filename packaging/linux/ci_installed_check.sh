#!/usr/bin/env bash
# CI (.ci/run, as root on Debian): build the .deb, install it, check the INSTALLED app, remove it.
#   1. make package; print the .deb's size (target: <= 100 MB)
#   2. apt-get install ./dist/optout-desk_*.deb
#   3. /usr/bin/optout-desk --version, timed (the frozen app's bare start)
#   4. /usr/bin/optout-desk --self-test offscreen, with a real Secret Service (gnome-keyring in a
#      private D-Bus session) that it must round-trip a secret through; timed (target: <= 10 s)
#   5. the main window on a virtual X server (xcb platform), time until it is mapped, twice:
#      the first start after installing, then a warm one (target: <= 1.5 s)
#   6. any stderr line of steps 3-5 outside packaging/linux/stderr-allowlist.txt fails the run
#   7. apt-get remove optout-desk (also when a step failed)
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

work=$(mktemp -d)
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then
        echo "== remove the package"
        apt-get remove -y -qq optout-desk >/dev/null || echo "could not remove optout-desk" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
seconds_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

echo "== build the .deb (make package)"
make package
debs=(dist/optout-desk_*.deb)
[ "${#debs[@]}" = 1 ] || { echo "expected one .deb in dist/, found: ${debs[*]}" >&2; exit 1; }
deb=${debs[0]}
deb_mb=$(awk -v b="$(stat -c %s "$deb")" 'BEGIN { printf "%.1f", b / 1048576 }')

echo "== install $deb"
apt-get install -y -qq "./$deb" >/dev/null
installed=1
app=/usr/bin/optout-desk
[ -x "$app" ] || { echo "$app is missing after installing $deb" >&2; exit 1; }

export OPTOUT_DESK_HOME=$work/home   # a throwaway data folder, never the real one
errfile=$work/stderr.txt
: >"$errfile"

echo "== $app --version"
t=$(date +%s%N)
version_line=$("$app" --version 2>>"$errfile")
version_s=$(seconds_since "$t")
echo "$version_line"
expected=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
[ "$version_line" = "Opt-out Desk $expected" ] \
    || { echo "the installed app says '$version_line', pyproject.toml says $expected" >&2; exit 1; }

echo "== $app --self-test (offscreen, real Secret Service)"
t=$(date +%s%N)
QT_QPA_PLATFORM=offscreen OPTOUT_DESK_REQUIRE_KEYRING=1 \
    bash scripts/with-keyring.sh sh -c 'exec "$1" --self-test 2>>"$2"' sh "$app" "$errfile"
selftest_s=$(seconds_since "$t")

window_first=skipped window_warm=skipped cpu_first=- cpu_warm=-
if command -v xvfb-run >/dev/null && command -v xwininfo >/dev/null; then
    echo "== main window on a virtual X server (xcb)"
    read -r window_first cpu_first window_warm cpu_warm < <(
        bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" sh -c '
            first=$(packaging/linux/window_start_probe.sh "$1" "$2") || exit 1
            warm=$(packaging/linux/window_start_probe.sh "$1" "$2") || exit 1
            echo "$first $warm"
        ' sh "$app" "$errfile"
    )
else
    echo "== main window: skipped (xvfb-run and xwininfo are not installed)"
fi

echo "== stderr of the installed app"
unexpected=$(grep -v -E -f <(grep -v -E '^(#|$)' packaging/linux/stderr-allowlist.txt) "$errfile" || true)
if [ -n "$unexpected" ]; then
    echo "unexpected stderr lines (add to packaging/linux/stderr-allowlist.txt only if harmless):" >&2
    printf '  %s\n' "$unexpected" >&2
    exit 1
fi
echo "clean ($(wc -l <"$errfile") allow-listed lines)"

echo "== installer figures"
printf '  %-40s %8s   %s\n' \
    ".deb size" "$deb_mb MB" "target <= 100 MB" \
    "installed --version" "$version_s s" "" \
    "installed --self-test" "$selftest_s s" "target <= 10 s (includes D-Bus + keyring start)" \
    "main window mapped, first start" "$window_first s" "target <= 1.5 s; CPU $cpu_first s" \
    "main window mapped, warm start" "$window_warm s" "CPU $cpu_warm s"
echo "  (load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
