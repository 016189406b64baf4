#!/usr/bin/env bash
# FFI crossing cost: the same two flows timed in Rust (the FFI crate's Rust API), on the
# JVM (Kotlin via JNA) and in Python (ctypes), all against the release build, in one run.
#
#   bash scripts/bench-bindings.sh [ITERS] [SETUPS]     (defaults 20000 200)
#
# Flows: steady-state encrypt + decrypt of a 100-byte message on an established session,
# and session setup (next_bundle -> initiate -> first encrypt -> responder decrypt; device
# creation not timed). Prints a table in ns/op and the ratios to Rust; results go to
# docs/benchmarks.md ("FFI crossing (uniffi)") by hand.
#
# Then attachments: streaming encryption and decryption throughput (MB/s) of 1 MiB and
# 100 MiB files in 1 MiB chunks, in Rust (examples/attachment_baseline.rs) and on the
# JVM (AttachmentBench.kt), best of ATTACH_REPEATS (default 5) runs.
#
# Env: BENCH=all|messages|attachments (default all), ATTACH_REPEATS, ATTACH_JVM_OPTS (extra
# JVM flags for the attachment bench, e.g. "-Xms4g -Xmx4g -XX:G1HeapRegionSize=16m": on
# 2026-12-03 the JVM's 100 MiB figures doubled with these, most likely because with the
# default heap G1 allocates every 1 MiB chunk as a humongous object).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
ITERS=${1:-20000}
SETUPS=${2:-200}
BENCH=${BENCH:-all}
ATTACH_REPEATS=${ATTACH_REPEATS:-5}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT

# Generated sources do not depend on the profile; the library does.
[[ -f bindings/python/generated/gochat_e2ee_ffi.py && -d bindings/kotlin/generated ]] \
  || bash scripts/gen-bindings.sh kotlin python
cargo build -q --release -p gochat-e2ee-ffi --lib --example ffi_baseline --example attachment_baseline
REL=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)/release

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $BENCH == all || $BENCH == messages ]]; then
"$REL/examples/ffi_baseline" "$ITERS" "$SETUPS" | tee -a "$OUT/results"

mkdir -p "$OUT/py"
cp bindings/python/generated/gochat_e2ee_ffi.py bindings/python/src/gochat_e2ee_fast.py "$OUT/py/"
cp "$REL"/libgochat_e2ee_ffi.* "$OUT/py/" 2>/dev/null || true
PY=python3; [[ -x .venv/bin/python ]] && PY=.venv/bin/python
PYTHONPATH="$OUT/py" "$PY" bindings/python/bench.py "$ITERS" "$SETUPS" | tee -a "$OUT/results"

(cd bindings/kotlin && mvn -B -q test -Dtest=FfiBench -Dsurefire.failIfNoSpecifiedTests=false \
  -Dnative.dir="$REL" -DargLine="-Dgochat.bench.iters=$ITERS -Dgochat.bench.setups=$SETUPS") \
  | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^kotlin(-fast)? ' | tee -a "$OUT/results"

echo
# kotlin = the generated JNA path; kotlin-fast = FastDevice, the JNI fast path (docs/kotlin.md).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if(a&&b) printf "%.2fx", a/b; else print "-"}'; }
printf '%-28s %10s %12s %12s %10s %10s %10s %10s %10s %10s\n' flow "rust ns" "kotlin ns" "k-fast ns" "python ns" \
  "py-fast ns" "kotlin/rs" "k-fast/rs" "python/rs" "py-fast/rs"
for flow in encrypt_decrypt_100B encrypt_100B decrypt_batch_100B group_encrypt_decrypt_100B session_setup bare_call; do
  r=$(awk -v f=$flow '$1=="rust" && $2==f {print $3}' "$OUT/results")
  k=$(awk -v f=$flow '$1=="kotlin" && $2==f {print $3}' "$OUT/results")
  kf=$(awk -v f=$flow '$1=="kotlin-fast" && $2==f {print $3}' "$OUT/results")
  p=$(awk -v f=$flow '$1=="python" && $2==f {print $3}' "$OUT/results")
  pf=$(awk -v f=$flow '$1=="python-fast" && $2==f {print $3}' "$OUT/results")
  printf '%-28s %10s %12s %12s %10s %10s %10s %10s %10s %10s\n' "$flow" "${r:--}" "${k:--}" "${kf:--}" "${p:--}" "${pf:--}" \
    "$(ratio "$k" "$r")" "$(ratio "$kf" "$r")" "$(ratio "$p" "$r")" "$(ratio "$pf" "$r")"
done
fi

if [[ $BENCH == all || $BENCH == attachments ]]; then
"$REL/examples/attachment_baseline" "$ATTACH_REPEATS" | tee -a "$OUT/results"
(cd bindings/kotlin && mvn -B -q test -Dtest=AttachmentBench -Dsurefire.failIfNoSpecifiedTests=false \
  -Dnative.dir="$REL" -DargLine="-Dgochat.bench.repeats=$ATTACH_REPEATS ${ATTACH_JVM_OPTS:-}") \
  | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^kotlin(-fast)? ' | tee -a "$OUT/results"

echo
printf '%-28s %12s %12s %12s %10s %10s\n' flow "rust MB/s" "kotlin MB/s" "k-fast MB/s" "kotlin/rs" "k-fast/rs"
for flow in attachment_encrypt_1MiB attachment_decrypt_1MiB attachment_encrypt_100MiB attachment_decrypt_100MiB; do
  r=$(awk -v f=$flow '$1=="rust" && $2==f {print $3}' "$OUT/results")
  k=$(awk -v f=$flow '$1=="kotlin" && $2==f {print $3}' "$OUT/results")
  kf=$(awk -v f=$flow '$1=="kotlin-fast" && $2==f {print $3}' "$OUT/results")
  printf '%-28s %12s %12s %12s %10s %10s\n' "$flow" "$r" "${k:--}" "${kf:--}" \
    "$(awk -v a="$k" -v b="$r" 'BEGIN{if(a&&b) printf "%.2fx", a/b; else print "-"}')" \
    "$(awk -v a="$kf" -v b="$r" 'BEGIN{if(a&&b) printf "%.2fx", a/b; else print "-"}')"
done
fi
