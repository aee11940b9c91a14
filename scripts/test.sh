#!/usr/bin/env bash
# The project's test command: formatting, lints, every test (unit, property, integration,
# end-to-end, doc tests). CI runs exactly this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
# Every cargo invocation below must resolve the same features for each dependency, or RocksDB's
# C++ is compiled once per feature set (it was six times). The workspace-hack crate pins the
# union; this fails when a dependency change left it stale (fix: `cargo hakari generate`).
echo "== one feature set per dependency (cargo hakari)" >&2
ensure_cargo_tool cargo-hakari 0.9.39
cargo hakari generate --diff --quiet || {
    echo "error: crates/bulkhead-workspace-hack is stale: run cargo hakari generate" >&2
    exit 1
}
cargo hakari manage-deps --dry-run --quiet || {
    echo "error: a workspace crate lacks the workspace-hack dependency: run cargo hakari manage-deps" >&2
    exit 1
}
cargo hakari verify >/dev/null
echo "== cargo clippy (all targets, benches included)" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== doc tests" >&2
cargo test --workspace --locked --doc
echo "== the leak probe catches a deliberately leaking build" >&2
scripts/leakprobe-fault-demo.sh
echo "== every command of the README and docs/ against a real server" >&2
python3 -m unittest discover -s tools/doccheck -q
scripts/check-docs.sh
echo "== no import cycles between modules (tools/modcycles)" >&2
python3 -m unittest discover -s tools/modcycles -q
python3 tools/modcycles/modcycles.py crates/bulkhead-core crates/bulkhead-index crates/bulkhead-engine \
    crates/bulkhead-proto crates/bulkhead-wire crates/bulkhead-formats crates/bulkhead-client crates/bulkhead-server crates/bulkhead \
    tools/bulkhead-leakprobe
echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast --lib --bins --tests
fi
# The fail points exist only in a build with the engine's `failpoints` feature (one more build
# of the engine and its integration tests, nothing else).
echo "== crash consistency at the engine's fail points" >&2
cargo clippy -p bulkhead-engine --all-targets --features failpoints --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p bulkhead-engine --features failpoints --locked -E 'test(/^failpoints::/)'
else
    cargo test -p bulkhead-engine --features failpoints --locked --test integration failpoints::
fi
echo "== the Python SDK, LangChain and LlamaIndex packages against a real server" >&2
scripts/test-python.sh
# Every mutant cargo-mutants makes on the isolation-critical lines the last commit changed must be
# caught by a test (BULKHEAD_MUTANTS_BASE: another base; the full run is scripts/mutants.sh).
echo "== mutation testing of the isolation-critical lines changed" >&2
scripts/mutants.sh --in-diff "${BULKHEAD_MUTANTS_BASE:-HEAD~1}"
