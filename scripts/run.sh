#!/usr/bin/env bash
# Builds and runs the Bulkhead server on a local data directory (./data by default).
# Extra arguments are passed to `bulkhead serve`, e.g. --listen 127.0.0.1:7700.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p bulkhead-server
exec "$CARGO_TARGET_DIR/release/bulkhead" serve --data-dir "${BULKHEAD_DATA_DIR:-./data}" "$@"
