#!/usr/bin/env bash
# Mutation testing of the code that keeps tenants apart: the resource-name parser and id types,
# the gate (authentication, authorization, token verification), the key store's tenant binding
# and the handle's key operations, record readers, the tenant store and the registry's
# incarnations, filter and allow-list application, filters from the wire, the semantic cache's
# scope and reserved fields, sessions (their liveness, key ranges and the handle that reaches
# one), and the per-tenant bounds on what a write's first bytes admit. Every mutant
# cargo-mutants makes there must be caught by a test; the ones that can't be (equivalent
# mutants) are excluded in .cargo/mutants.toml, each with its reason in docs/security.md.
#
#   scripts/mutants.sh                  every mutant of those files (the full run, ~1 hour here)
#   scripts/mutants.sh --in-diff REV    only mutants on lines changed since the commit REV
#                                       (the test command: the change being tested)
#   scripts/mutants.sh --iterate        only mutants the previous run in the same report
#                                       directory did not catch (after adding tests for them)
#
# Fails if a mutant is missed. A mutant that makes the tests hang (timeout) counts as caught.
# Reports land in $CARGO_TARGET_DIR/mutants/<group>/mutants.out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

base=""
iterate=false
case "${1:-}" in
    --iterate) iterate=true ;;
    --in-diff)
        base="${2:?--in-diff needs a commit}"
        if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
            # A shallow clone has no parent to compare with; every mutant instead would be the
            # hour-long full run.
            echo "mutants: WARNING: $base is not a commit of this clone (shallow?): no lines to" \
                "compare, no mutants run; run scripts/mutants.sh for the full run" >&2
            exit 0
        fi
        ;;
    "") ;;
    *)
        echo "usage: scripts/mutants.sh [--in-diff COMMIT | --iterate]" >&2
        exit 2
        ;;
esac

out_root="$CARGO_TARGET_DIR/mutants"
mkdir -p "$out_root"
failed=()
started=$SECONDS

# Runs cargo-mutants on the files after the first three arguments, testing each mutant with
# nextest, the filter $2 (empty: every test) and the tests of the packages $3 (space-separated;
# empty: the mutated file's own package).
run_group() {
    local name="$1" filter="$2" test_packages="$3"
    shift 3
    # The timeout is set from the baseline, which runs only the mutated file's own package: for
    # the server group that is its unit tests (1 s), while each mutant also runs the end-to-end
    # suite (a minute and more). At the auto-set 20 s a mutant no test caught timed out and
    # counted as caught; a hang must take minutes before it is one.
    local files=("$@") args=(--no-shuffle --test-tool nextest --minimum-test-timeout 600
        --output "$out_root/$name")
    local file package
    for file in "${files[@]}"; do
        args+=(--file "$file")
    done
    for package in $test_packages; do
        args+=(--test-package "$package")
    done
    [ -z "$filter" ] || args+=(--cargo-test-arg=-E --cargo-test-arg="$filter")
    if [ -n "$base" ]; then
        local diff="$out_root/$name.diff"
        git diff --unified=0 "$base" -- "${files[@]}" >"$diff"
        if [ ! -s "$diff" ]; then
            echo "mutants [$name]: no change since $base" >&2
            return
        fi
        args+=(--in-diff "$diff")
    fi
    ! $iterate || args+=(--iterate)
    # Installed only when there is something to mutate: most changes touch none of these files.
    ensure_cargo_tool cargo-mutants 27.1.0
    ensure_cargo_tool cargo-nextest 0.9.143
    echo "mutants [$name]: ${files[*]}" >&2
    local group_started=$SECONDS status=0
    cargo mutants "${args[@]}" || status=$?
    # 0: all caught; 3: some timed out (the tests hung: caught); 2: missed; 4: the unmutated
    # tree failed its tests.
    case $status in
        0 | 3) ;;
        *) failed+=("$name (cargo-mutants exit $status)") ;;
    esac
    echo "mutants [$name]: $((SECONDS - group_started)) s" >&2
}

run_group core "" "" \
    crates/bulkhead-core/src/resource.rs \
    crates/bulkhead-core/src/ids.rs
run_group index "" "" \
    crates/bulkhead-index/src/types.rs
run_group engine "" "" \
    crates/bulkhead-engine/src/api_keys.rs \
    crates/bulkhead-engine/src/key_table.rs \
    crates/bulkhead-engine/src/registry.rs \
    crates/bulkhead-engine/src/storage/store.rs \
    crates/bulkhead-engine/src/storage/tenant_storage.rs \
    crates/bulkhead-engine/src/storage/registry.rs \
    crates/bulkhead-engine/src/filter.rs \
    crates/bulkhead-engine/src/cache_fields.rs \
    crates/bulkhead-engine/src/tenant/semantic_cache.rs \
    crates/bulkhead-engine/src/tenant/api_keys.rs \
    crates/bulkhead-engine/src/verification_keys.rs \
    crates/bulkhead-engine/src/tenant/verification_keys.rs \
    crates/bulkhead-engine/src/readers.rs \
    crates/bulkhead-engine/src/session.rs \
    crates/bulkhead-engine/src/tenant/sessions.rs
# Filters from the wire: their shape limits bound the work one request can make the engine do.
run_group wire "" "" \
    crates/bulkhead-wire/src/engine/filter.rs \
    crates/bulkhead-wire/src/engine/sessions.rs
# The server's own tests and the end-to-end tests (in the `bulkhead` package, whose binary links
# the mutated library), without the five that restart a server or run the leak probe for 15 s
# and more: they test persistence and the probe itself, and the isolation and auth suites cover
# the gate's lines they reach.
run_group server "not test(/^leakprobe::|restart|^lifecycle::(sigterm|get_tenant)|^tls::the_leakprobe/)" \
    "bulkhead-server bulkhead" \
    crates/bulkhead-server/src/gate.rs \
    crates/bulkhead-server/src/auth.rs \
    crates/bulkhead-server/src/principal.rs \
    crates/bulkhead-server/src/tokens.rs \
    crates/bulkhead-server/src/end_user_tokens.rs \
    crates/bulkhead-server/src/end_user.rs \
    crates/bulkhead-server/src/services/cache.rs \
    crates/bulkhead-server/src/services/memory.rs \
    crates/bulkhead-server/src/write_admission.rs \
    crates/bulkhead-server/src/undecoded.rs \
    crates/bulkhead-server/src/admission/tenant_slots.rs \
    crates/bulkhead-server/src/transport_refusals.rs

echo "mutants: $((SECONDS - started)) s in all; reports in $out_root" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "mutants: missed mutants (or a failing baseline) in: ${failed[*]}" >&2
    echo "  see $out_root/<group>/mutants.out/missed.txt" >&2
    exit 1
fi
