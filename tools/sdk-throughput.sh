#!/usr/bin/env bash
# Query throughput through the SDKs against release servers holding the same data, in turns so
# that drift of a shared machine falls on every configuration alike:
#   plaintext — the Rust SDK over plaintext (the baseline),
#   tls       — the Rust SDK over TLS (a certificate made for the run with openssl),
#   python    — the Python SDK over plaintext (tools/python_sdk_bench.py), when its venv exists.
# Every figure is 8 concurrent callers, top-10, ef 64, on the debian-minilm queries. Prints one
# JSON line per configuration and round; the ratios to the plaintext round before it are in the
# lines' `label`s order. Usage: tools/sdk-throughput.sh [rounds] [seconds] [shared|pinned]
# (default 3, 10, shared). `pinned` runs the servers on CPU 0 and every client on CPU 1, as
# when the application and the database have machines of their own; `shared` lets both use
# both CPUs, so a client's own CPU cost comes out of the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rounds="${1:-3}"
secs="${2:-10}"
placement="${3:-shared}"
server_cpus=() client_cpus=()
case "$placement" in
    shared) ;;
    pinned) server_cpus=(taskset -c 0) client_cpus=(taskset -c 1) ;;
    *) echo "placement must be shared or pinned" >&2; exit 2 ;;
esac
data=../shared/data/debian-minilm
cargo build --release --locked -p bulkhead -p bulkhead-bench --bins
bin="$CARGO_TARGET_DIR/release/bulkhead"
bench="$CARGO_TARGET_DIR/release/bulkhead-bench"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export BULKHEAD_ADMIN_TOKEN=sdk-throughput-token-0123456789

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=bulkhead bench CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 1 -extfile "$work/ext.cnf" -out "$work/server.crt" 2>/dev/null

# start NAME PORT [serve flags]: a server on its own data directory, ready when it answers.
start() {
    local name=$1 port=$2
    shift 2
    "${server_cpus[@]}" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/$name" "$@" 2>>"$work/$name.log" &
    pids+=($!)
    for _ in $(seq 300); do
        grep -q "bulkhead listening" "$work/$name.log" 2>/dev/null && return
        sleep 0.1
    done
    echo "the $name server did not start" >&2
    exit 1
}
start plain 7621
start tls 7622 --tls-cert "$work/server.crt" --tls-key "$work/server.key"
plain=(--endpoint http://127.0.0.1:7621 --dataset "$data" --key-file "$work/plain.key")
tls=(--endpoint https://127.0.0.1:7622 --tls-ca "$work/ca.crt" --dataset "$data" --key-file "$work/tls.key")
load=(--clients 8 --duration-secs "$secs" --k 10 --ef 64)
echo "loading both servers" >&2
"$bench" sdk "${plain[@]}" --setup --duration-secs 1 --label warmup-plaintext >/dev/null
"$bench" sdk "${tls[@]}" --setup --duration-secs 1 --label warmup-tls >/dev/null

python="${BULKHEAD_VENV}/bin/python"
have_python=false
if "$python" -c 'import bulkhead' 2>/dev/null; then have_python=true; fi
for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    "${client_cpus[@]}" "$bench" sdk "${plain[@]}" "${load[@]}" --label plaintext
    "${client_cpus[@]}" "$bench" sdk "${tls[@]}" "${load[@]}" --label tls
    if $have_python; then
        "${client_cpus[@]}" "$python" tools/python_sdk_bench.py --endpoint 127.0.0.1:7621 \
            --api-key "$(cat "$work/plain.key")" --tenant sdk-bench --collection docs \
            --dataset "$data" --clients 8 --duration "$secs" --k 10 --ef 64 --json --mode both
    fi
done
