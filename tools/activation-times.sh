#!/usr/bin/env bash
# Measures how long a tenant's first request takes after a restart (its activation: the
# collection loads from its segment file), for a small tenant and for the whole debian-minilm
# set, with the release build. Prints one row per tenant and round: first query, second query.
# Usage: tools/activation-times.sh [rounds]   (default 2 restarts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rounds="${1:-2}"
data=../shared/data/debian-minilm
cargo build --release --locked -p bulkhead --bin bulkhead
bin="$CARGO_TARGET_DIR/release/bulkhead"
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export BULKHEAD_ADMIN_TOKEN=activation-times-token-0123456789
export BULKHEAD_ENDPOINT=http://127.0.0.1:7611

start() {
    "$bin" serve --listen 127.0.0.1:7611 --data-dir "$work/data" 2>>"$work/server.log" &
    pid=$!
    for _ in $(seq 300); do
        "$bin" tenant list >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "the server did not start" >&2
    exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
# Milliseconds the query command takes, end to end (process start included, ~10 ms).
timed_query() {
    local started ended
    started=$(date +%s%N)
    "$bin" query --tenant "$1" --collection c --like 0 --top-k 10 >/dev/null
    ended=$(date +%s%N)
    echo $(((ended - started) / 1000000))
}

start
"$bin" tenant create small >/dev/null
"$bin" tenant create large >/dev/null
"$bin" import --tenant small --collection c --create --fvecs "$data/base.fvecs" --limit 100 >/dev/null
"$bin" import --tenant large --collection c --create --fvecs "$data/base.fvecs" >/dev/null
# The graph is built and its segment written in the background after the import; a restart
# before that would time a load from the records and an exact scan, not a segment.
for _ in $(seq 1200); do
    "$bin" collection get --tenant large c --json | grep -q '"segment_time":"' && break
    sleep 0.5
done
"$bin" collection get --tenant large c
for round in $(seq "$rounds"); do
    stop
    sync
    start
    for t in small large; do
        first=$(timed_query $t)
        second=$(timed_query $t)
        echo "round $round  $t  first ${first} ms  second ${second} ms"
    done
done
# An export of the large tenant, cold again: the CLI lists the collections (which loads the
# tenant, from its segment) and streams each one; it notes when the first data arrived.
stop
sync
start
"$bin" export --tenant large --out "$work/backup" 2>&1 | grep "first data"
grep "tenant activated" "$work/server.log" || true
