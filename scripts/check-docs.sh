#!/usr/bin/env bash
# Runs every command block of the README and of docs/ (clients, operations, api) against a real
# server, in order, and fails when a command's output or exit status differs from what the
# page shows (tools/doccheck). The README's `./scripts/run.sh` block starts that server; here
# run.sh runs the test build (BULKHEAD_BIN) instead of building a release binary.
#
# The pages run in a scratch directory laid out like a checkout: scripts/ linked in, ../shared
# beside it, ./data and ./bin made by run.sh, so nothing lands in the clone. Port 7600, which
# the pages use, must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
repo=$PWD
ensure_debian_package jq jq
ensure_grpcurl
# The Python quick starts of docs/clients.md import the packages of this checkout.
ensure_python_packages

echo "== building the server the pages run" >&2
cargo build --locked -p bulkhead --bin bulkhead

if (exec 3<>/dev/tcp/127.0.0.1/7600) 2>/dev/null; then
    echo "error: something already listens on 127.0.0.1:7600, the port the pages use; stop it first" >&2
    exit 2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/repo"
ln -s "$repo/scripts" "$scratch/repo/scripts"
ln -s "$repo/python" "$scratch/repo/python"
ln -s "$(cd "$repo/.." && pwd)/shared" "$scratch/shared"

python3 tools/doccheck/doccheck.py --workdir "$scratch/repo" \
    --env "BULKHEAD_BIN=$CARGO_TARGET_DIR/debug/bulkhead" \
    --env "PATH=$BULKHEAD_VENV/bin:$PATH" \
    --env "NO_COLOR=1" \
    "$@" README.md docs/clients.md docs/operations.md docs/api.md
