#!/usr/bin/env bash
# Builds and runs the Bulkhead server on a local data directory (./data by default), in the
# foreground; stop it with Ctrl-C. Extra arguments are passed to `bulkhead serve`, e.g.
# --listen 127.0.0.1:7700. The binary is also the client: it is linked as ./bin/bulkhead, so
# `export PATH="$PWD/bin:$PATH"` in another terminal puts it on PATH.
#
# BULKHEAD_BIN=/path/to/bulkhead runs that binary instead of building a release one (the docs
# check runs the README this way with the test build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
binary="${BULKHEAD_BIN:-}"
if [[ -z "$binary" ]]; then
    cargo build --release --locked -p bulkhead --bin bulkhead
    binary="$CARGO_TARGET_DIR/release/bulkhead"
fi
mkdir -p bin
ln -sfn "$binary" bin/bulkhead
exec "$binary" serve --data-dir "${BULKHEAD_DATA_DIR:-./data}" "$@"
