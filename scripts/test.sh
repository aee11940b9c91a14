#!/usr/bin/env bash
# The project's test command: formatting, lints, every test (unit, property, integration,
# end-to-end, doc tests). CI runs exactly this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy (all targets, benches included)" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== doc tests" >&2
cargo test --workspace --locked --doc
echo "== the leak probe catches a deliberately leaking build" >&2
scripts/leakprobe-fault-demo.sh
echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast --lib --bins --tests
fi
