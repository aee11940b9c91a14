#!/usr/bin/env bash
# The Python packages' tests: installs the SDK (python/bulkhead) and the LangChain and
# LlamaIndex integrations from this checkout into the venv $BULKHEAD_VENV, runs each package's
# pytest suite against a real `bulkhead serve` (their fixtures start $BULKHEAD_BIN), then the
# RAG example. Builds nothing with cargo: BULKHEAD_BIN defaults to the debug build that the
# Rust tests leave in $CARGO_TARGET_DIR.
#
# Installs with `ensure_python_packages` (scripts/setup.sh), which is quick when the pinned
# requirements haven't changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

export BULKHEAD_BIN="${BULKHEAD_BIN:-$CARGO_TARGET_DIR/debug/bulkhead}"
if [ ! -x "$BULKHEAD_BIN" ]; then
    echo "error: no server binary at $BULKHEAD_BIN (cargo build -p bulkhead --bin bulkhead)" >&2
    exit 1
fi

ensure_python_packages
python="$BULKHEAD_VENV/bin/python"

for dir in "${BULKHEAD_PYTHON_PACKAGES[@]}"; do
    echo "== pytest $dir" >&2
    (cd "$dir" && "$python" -m pytest -q -p no:cacheprovider)
done

if [ -f python/examples/rag.py ]; then
    echo "== python/examples/rag.py" >&2
    "$python" python/examples/rag.py
fi
