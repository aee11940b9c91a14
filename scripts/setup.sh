#!/usr/bin/env bash
# Installs what the build needs on a fresh Debian machine and points cargo at a target directory
# kept outside the clone, so a second clone (or CI) reuses the multi-minute RocksDB build.
# Sourced by run.sh and test.sh.
set -euo pipefail

if ! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang\.so'; then
    echo "setup: installing libclang-dev (needed by RocksDB's bindings)" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkhead-target}"
mkdir -p "$CARGO_TARGET_DIR"

# Installs the cargo subcommand $1 at version $2 from crates.io unless that version is there.
ensure_cargo_tool() {
    if ! "$1" --version 2>/dev/null | grep -qF "$2"; then
        echo "setup: installing $1 $2" >&2
        cargo install --locked --quiet "$1@$2"
    fi
}
