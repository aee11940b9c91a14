#!/usr/bin/env bash
# Shows that the leak probe catches a leaking server: builds a debug `bulkhead` with the
# test-only `fault-skip-tenant-check` feature (keys are no longer checked against the path's
# tenant), runs `bulkhead-leakprobe` against it, and succeeds only if the probe FAILS and
# names the cross-tenant probes. Then it runs the probe against a normal build, which must pass.
# With --no-build it runs the binaries an earlier run left in the target directory.
#
# Exit status: 0 when the probe caught the faulty server and passed the normal one; 1 when the
# probe missed the leak or failed the normal server; 2 when the demo could not run at all (a
# binary missing, a server that did not start, a probe that could not probe). The last is never
# reported as a leak going unnoticed: a tool that did not run has shown nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

token=leakprobe-demo-token-0123456789
bin="$CARGO_TARGET_DIR/debug"
probe="$bin/bulkhead-leakprobe"
faulty="$bin/bulkhead-faulty"
EXIT_LEAK_MISSED=1
EXIT_COULD_NOT_RUN=2

could_not_run() {
    echo "error: the fault demo could not run: $*" >&2
    exit "$EXIT_COULD_NOT_RUN"
}

require_binary() {
    [[ -x "$1" ]] || could_not_run "missing binary $1 ($2); nothing was probed"
}

# Starts the binary $1 on a fresh data directory; sets server_pid and port, or gives up.
start_server() {
    local data="$work/data-$2" log="$work/server-$2.log"
    mkdir -p "$data"
    BULKHEAD_ADMIN_TOKEN=$token "$1" serve --listen 127.0.0.1:0 --data-dir "$data" 2>"$log" &
    server_pid=$!
    port=
    for _ in $(seq 300); do
        port=$(grep -o 'addr=127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2) && [[ -n "$port" ]] && return
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    could_not_run "the $2 server ($1) did not start listening"
}

# Runs the probe against the binary $1; sets probe_status.
probe_against() {
    start_server "$1" "$2"
    set +e
    "$probe" --endpoint "http://127.0.0.1:$port" --admin-token "$token" \
        --tenants 4 --duration 2s >"$work/probe-$2.txt" 2>"$work/probe-$2.err"
    probe_status=$?
    set -e
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    case "$probe_status" in
        0 | 1) ;;
        *)
            cat "$work/probe-$2.txt" "$work/probe-$2.err" >&2
            could_not_run "the probe could not probe the $2 server (exit $probe_status)"
            ;;
    esac
}

if [[ "${1:-}" != --no-build ]]; then
    echo "== building the faulty server (fault-skip-tenant-check)" >&2
    cargo build --locked -p bulkhead --bin bulkhead --features fault-skip-tenant-check
    require_binary "$bin/bulkhead" "the faulty server"
    cp "$bin/bulkhead" "$faulty"
    echo "== building the normal server and the probe" >&2
    cargo build --locked -p bulkhead -p bulkhead-leakprobe --bins
else
    echo "== --no-build: using the binaries already in $bin" >&2
fi
require_binary "$faulty" "the faulty server"
require_binary "$bin/bulkhead" "the normal server"
require_binary "$probe" "the leak probe"

probe_against "$faulty" faulty
if [[ "$probe_status" != 1 ]]; then
    cat "$work/probe-faulty.txt"
    echo "error: the probe ran and passed the faulty server; a leak went unnoticed" >&2
    exit "$EXIT_LEAK_MISSED"
fi
caught=$(grep ' FAIL ' "$work/probe-faulty.txt" | sed 's/^[^a-z]*//' | awk '{ printf "%s ", $1 }')
if [[ "$caught" != *cross-tenant-rpcs* ]]; then
    cat "$work/probe-faulty.txt"
    echo "error: the probe failed, but not on cross-tenant-rpcs, the probe this fault must trip" >&2
    exit "$EXIT_LEAK_MISSED"
fi
echo "== as expected, the probe caught the faulty server (exit 1); probes that saw the leak: $caught" >&2

probe_against "$bin/bulkhead" normal
tail -n 3 "$work/probe-normal.txt"
if [[ "$probe_status" != 0 ]]; then
    cat "$work/probe-normal.txt"
    echo "error: the probe exited $probe_status against the normal server" >&2
    exit "$EXIT_LEAK_MISSED"
fi
echo "== and it passes against the normal build (exit 0)" >&2
