#!/usr/bin/env bash
# Shows that the leak probe catches a leaking server: builds a debug `bulkhead` with the
# test-only `fault-skip-tenant-check` feature (keys are no longer checked against the path's
# tenant), runs `bulkhead-leakprobe` against it, and succeeds only if the probe FAILS and
# names the cross-tenant probes. Then it runs the probe against a normal build, which must pass.
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

# Runs the probe against the binary $1; prints its exit status.
probe_against() {
    local data="$work/data-$2" log="$work/server-$2.log" port
    mkdir -p "$data"
    BULKHEAD_ADMIN_TOKEN=$token "$1" serve --listen 127.0.0.1:0 --data-dir "$data" 2>"$log" &
    server_pid=$!
    for _ in $(seq 100); do
        port=$(grep -o 'addr=127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2) && [[ -n "$port" ]] && break
        sleep 0.1
    done
    set +e
    "$bin/bulkhead-leakprobe" --endpoint "http://127.0.0.1:$port" --admin-token "$token" \
        --tenants 4 --duration 2s >"$work/probe-$2.txt"
    local status=$?
    set -e
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    echo "$status"
}

echo "== building the faulty server (fault-skip-tenant-check) and the probe" >&2
cargo build --locked -p bulkhead-server --bin bulkhead --features fault-skip-tenant-check
cp "$bin/bulkhead" "$work/bulkhead-faulty"
cargo build --locked -p bulkhead-server --bin bulkhead -p bulkhead-leakprobe

status=$(probe_against "$work/bulkhead-faulty" faulty)
if [[ "$status" != 1 ]]; then
    cat "$work/probe-faulty.txt"
    echo "error: the probe exited $status against the faulty server; a leak went unnoticed" >&2
    exit 1
fi
caught=$(grep ' FAIL ' "$work/probe-faulty.txt" | sed 's/^[^a-z]*//' | awk '{ printf "%s ", $1 }')
if [[ "$caught" != *cross-tenant-rpcs* ]]; then
    cat "$work/probe-faulty.txt"
    echo "error: the probe failed, but not on cross-tenant-rpcs, the probe this fault must trip" >&2
    exit 1
fi
echo "== as expected, the probe caught the faulty server (exit 1); probes that saw the leak: $caught" >&2

status=$(probe_against "$bin/bulkhead" normal)
tail -n 3 "$work/probe-normal.txt"
if [[ "$status" != 0 ]]; then
    cat "$work/probe-normal.txt"
    echo "error: the probe exited $status against the normal server" >&2
    exit 1
fi
echo "== and it passes against the normal build (exit 0)" >&2
