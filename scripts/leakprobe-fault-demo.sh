#!/usr/bin/env bash
# Shows that the leak probe catches a leaking server. For each test-only fault feature it builds a
# debug `bulkhead` with it, runs `bulkhead-leakprobe` against it, and succeeds only if the probe
# FAILS and names the probe that fault must trip:
#   fault-skip-tenant-check  keys are no longer checked against the path's tenant -> cross-tenant-rpcs
#   fault-skip-reader-check  end users read records whatever their readers        -> user-acl
# Then it runs the probe against a normal build, which must pass.
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
# Each fault feature and the probe it must trip.
faults=(fault-skip-tenant-check:cross-tenant-rpcs fault-skip-reader-check:user-acl)
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
    for fault in "${faults[@]}"; do
        feature=${fault%%:*}
        echo "== building the faulty server ($feature)" >&2
        cargo build --locked -p bulkhead --bin bulkhead --features "$feature"
        require_binary "$bin/bulkhead" "the faulty server"
        cp "$bin/bulkhead" "$bin/bulkhead-$feature"
    done
    echo "== building the normal server and the probe" >&2
    cargo build --locked -p bulkhead -p bulkhead-leakprobe --bins
else
    echo "== --no-build: using the binaries already in $bin" >&2
fi
for fault in "${faults[@]}"; do
    require_binary "$bin/bulkhead-${fault%%:*}" "the faulty server"
done
require_binary "$bin/bulkhead" "the normal server"
require_binary "$probe" "the leak probe"

for fault in "${faults[@]}"; do
    feature=${fault%%:*} must_trip=${fault#*:}
    probe_against "$bin/bulkhead-$feature" "$feature"
    if [[ "$probe_status" != 1 ]]; then
        cat "$work/probe-$feature.txt"
        echo "error: the probe ran and passed the $feature server; a leak went unnoticed" >&2
        exit "$EXIT_LEAK_MISSED"
    fi
    caught=$(grep ' FAIL ' "$work/probe-$feature.txt" | sed 's/^[^a-z]*//' | awk '{ printf "%s ", $1 }')
    if [[ " $caught" != *" $must_trip "* ]]; then
        cat "$work/probe-$feature.txt"
        echo "error: the probe failed the $feature server, but not on $must_trip, the probe this fault must trip" >&2
        exit "$EXIT_LEAK_MISSED"
    fi
    echo "== as expected, the probe caught the $feature server (exit 1); probes that saw the leak: $caught" >&2
done

probe_against "$bin/bulkhead" normal
tail -n 3 "$work/probe-normal.txt"
if [[ "$probe_status" != 0 ]]; then
    cat "$work/probe-normal.txt"
    echo "error: the probe exited $probe_status against the normal server" >&2
    exit "$EXIT_LEAK_MISSED"
fi
echo "== and it passes against the normal build (exit 0)" >&2
