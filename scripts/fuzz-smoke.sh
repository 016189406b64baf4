#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target for a bounded time and fails on any
# crash, leak, timeout or OOM. Prints one line per target.
#
#   scripts/fuzz-smoke.sh                 # 15 s per target (26 targets: about 8 min with the build)
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh
#   FUZZ_TARGETS="conversation snapshot" scripts/fuzz-smoke.sh
#
# The committed seeds in fuzz/corpus/<target>/ are read but never written: new inputs
# go to a scratch corpus (FUZZ_WORK, default a temporary directory). Crash inputs are
# saved under fuzz/artifacts/<target>/. Needs `cargo install cargo-fuzz`. Uses a nightly
# toolchain if one is installed, else stable with RUSTC_BOOTSTRAP=1 (for this build only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here/fuzz"

seconds="${FUZZ_SECONDS:-15}"
targets="${FUZZ_TARGETS:-bundle prekey_message ratchet_message snapshot retry_request conversation group_message distribution announcement commit_welcome group attachment_header attachment_pointer attachment_stream safety_number device_list device_endorsement provisioning_offer provisioning_message certificate_chain revocation_list state_record store_record store_keyslot store_export store_inbox}"
work="${FUZZ_WORK:-$(mktemp -d -t gochat-fuzz.XXXXXX)}"
mkdir -p "$work"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
if cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
    toolchain="nightly ($(rustc +nightly --version))"
else
    cargo=(cargo)
    export RUSTC_BOOTSTRAP=1
    toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi
echo "fuzz smoke: ${seconds}s per target, toolchain: $toolchain, scratch corpus: $work"

"${cargo[@]}" fuzz build -O -a >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }

failed=0
printf '%-16s %8s %12s %10s %6s %7s  %s\n' target seconds executions exec/s cov corpus result
for t in $targets; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    set +e
    # The stateful targets read at most MAX_OPS operations (conversation 128, group 96,
    # at most 5 bytes each); longer inputs would only be truncated.
    extra=()
    if [ "$t" = conversation ]; then extra=(-max_len=640); fi
    if [ "$t" = group ]; then extra=(-max_len=480); fi
    "${cargo[@]}" fuzz run -O -a "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 "${extra[@]}" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //' || true)
    corpus=$(find "$work/$t" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAIL (exit $rc, log $log)"
        failed=1
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    printf '%-16s %8s %12s %10s %6s %7s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus" "$result"
done
exit "$failed"
