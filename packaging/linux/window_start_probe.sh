#!/usr/bin/env bash
# Seconds from starting EXE to its main window being mapped on the X server in $DISPLAY
# (found by title with xwininfo, polled every 10 ms), then the app is closed. Run it under
# xvfb-run. Prints "WALL CPU": wall-clock seconds, and the CPU seconds the app had used by then
# (user + system, from /proc; a figure that shared, busy CI cores inflate much less).
# Exits 1 if no window showed within 20 s.
#   window_start_probe.sh EXE STDERR_FILE
set -euo pipefail
exe=$1; errfile=$2
start=$(date +%s%N)
QT_QPA_PLATFORM=xcb "$exe" --no-crash-dialog 2>>"$errfile" &
pid=$!
deadline=$((start + 20000000000))
until xwininfo -root -tree 2>/dev/null | grep -q '"[^"]*Opt-out Desk[^"]*"'; do
    if [ "$(date +%s%N)" -gt "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        echo "window_start_probe.sh: no Opt-out Desk window within 20 s" >&2
        exit 1
    fi
    sleep 0.01
done
end=$(date +%s%N)
# Fields 14 and 15 of /proc/PID/stat (after the parenthesised command name): utime, stime.
ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
awk -v ns=$((end - start)) -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f %.2f\n", ns / 1e9, ticks / hz }'
