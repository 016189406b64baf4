#!/usr/bin/env bash
# The single test entry point: `bash scripts/test-all.sh` (CI: .ci/run).
#
# Installs deps (scripts/install-deps.sh), then runs every suite in sequence. A suite
# whose directory does not exist yet is reported as "skipped (not present)". A suite
# that fails to build counts as failed. Prints a summary table and, as the very last
# line, `N passed, N failed` (totals). Exits non-zero if anything failed.
#
# Env:  SUITES="rust-fmt rust-test ..."  run only these suites
#       SKIP_INSTALL=1                   don't run install-deps.sh
#       SUITE_TIMEOUT=2400               seconds per suite
#       FFI_PKG / WASM_PKG / CLI_PKG     package names (defaults below)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
LOG_DIR=$ROOT/target/test-logs
mkdir -p "$LOG_DIR"

FFI_PKG=${FFI_PKG:-gochat-e2ee-ffi}
WASM_PKG=${WASM_PKG:-gochat-e2ee-wasm}
CLI_PKG=${CLI_PKG:-gochat-e2ee-cli}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-2400}

pkg_exists() { [[ -f crates/$1/Cargo.toml ]]; }

# ------------------------------------------------------------------ bookkeeping
NAMES=(); STATUS=(); PASS=(); FAIL=(); SECS=()
P=0; F=0   # set by each suite function

# run_suite <name> <function>: runs the function with output to the console and to
# target/test-logs/<name>.log; the function sets P and F from its runner's output.
run_suite() {
  local name=$1 fn=$2 rc start end log=$LOG_DIR/$1.log
  if [[ -n ${SUITES:-} && " $SUITES " != *" $name "* ]]; then return 0; fi
  echo
  echo "=================== suite: $name ==================="
  P=0; F=0
  start=$(date +%s)
  "$fn" "$log"
  rc=$?
  end=$(date +%s)
  if [[ $rc -eq 99 ]]; then
    NAMES+=("$name"); STATUS+=("skipped (not present)"); PASS+=(0); FAIL+=(0); SECS+=($((end - start)))
    echo "--- $name: skipped (not present)"
    return 0
  fi
  # A non-zero exit with no failure counted (build error, crash, timeout) is one failure.
  if [[ $rc -ne 0 && $F -eq 0 ]]; then F=1; fi
  # A zero exit that ran nothing is suspicious: count it as a failure.
  if [[ $rc -eq 0 && $P -eq 0 && $F -eq 0 ]]; then F=1; echo "--- $name: ran no test"; fi
  local st=ok; [[ $F -gt 0 ]] && st=FAILED
  NAMES+=("$name"); STATUS+=("$st"); PASS+=("$P"); FAIL+=("$F"); SECS+=($((end - start)))
  echo "--- $name: $st ($P passed, $F failed, $((end - start))s; log: ${log#"$ROOT"/})"
}

# run <log> <cmd...>: run with a timeout, append output to log and console.
run() {
  local log=$1; shift
  echo "+ $*" | tee -a "$log"
  timeout --kill-after=30 "$SUITE_TIMEOUT" "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

# count_plain <log>: the last `N passed, N failed` line of a log into P/F.
count_plain() {
  local line
  line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1 || true)
  if [[ -n $line ]]; then
    P=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    F=$(sed -E 's/^([A-Za-z-]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line")
    return 0
  fi
  return 1
}

# ------------------------------------------------------------------ suites
suite_rust_fmt() {
  local log=$1; : >"$log"
  [[ -f Cargo.toml ]] || return 99
  if run "$log" cargo fmt --all -- --check; then P=1; else F=1; fi
  return 0
}

suite_rust_clippy() {
  local log=$1; : >"$log"
  [[ -f Cargo.toml ]] || return 99
  if run "$log" cargo clippy --workspace --all-targets -- -D warnings; then P=1; else F=1; fi
  return 0
}

# The public API docs build without warnings (broken or private intra-doc links).
suite_rust_doc() {
  local log=$1; : >"$log"
  [[ -f Cargo.toml ]] || return 99
  if RUSTDOCFLAGS="-D warnings" run "$log" cargo doc -p gochat-e2ee --no-deps; then P=$((P + 1)); else F=$((F + 1)); fi
  # What apps link (the ffi and wasm crates, built with -p as the binding scripts do)
  # must not get the core's test-only features (`testing`: state forks; `trace`: session
  # secrets), which the fuzzing crate, benches and CLI enable in workspace builds.
  local pkg leaked
  for pkg in "$FFI_PKG" "$WASM_PKG"; do
    pkg_exists "$pkg" || continue
    leaked=$(cargo tree -p "$pkg" -e features -i gochat-e2ee 2>>"$log" | grep -E 'gochat-e2ee feature "(testing|trace)"' || true)
    if [[ -z $leaked ]]; then
      echo "feature isolation: $pkg links the core without testing/trace" | tee -a "$log"; P=$((P + 1))
    else
      echo "feature isolation: $pkg links the core WITH $leaked" | tee -a "$log"; F=$((F + 1))
    fi
  done
  return 0
}

suite_rust_test() {
  local log=$1 rc; : >"$log"
  [[ -f Cargo.toml ]] || return 99
  run "$log" cargo test --workspace; rc=$?
  # test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out
  P=$(grep -E '^test result: ' "$log" | sed -E 's/.* ([0-9]+) passed;.*/\1/' | awk '{s+=$1} END {print s+0}')
  F=$(grep -E '^test result: ' "$log" | sed -E 's/.* ([0-9]+) failed;.*/\1/' | awk '{s+=$1} END {print s+0}')
  return "$rc"
}

# Builds the uniffi cdylib and generates Kotlin/Python/Swift bindings (once).
FFI_READY=
prepare_ffi() {
  local log=$1
  [[ -n $FFI_READY ]] && return "$FFI_READY"
  if [[ -x scripts/gen-bindings.sh ]]; then
    run "$log" bash scripts/gen-bindings.sh all; FFI_READY=$?
  else
    FFI_READY=0
  fi
  return "$FFI_READY"
}

suite_kotlin() {
  local log=$1 rc; : >"$log"
  [[ -f bindings/kotlin/pom.xml ]] || return 99
  prepare_ffi "$log" || return 1
  # The device-link test (ProvisioningTest) runs the npm package in a Node child: build it
  # here (once; js-node and js-browser reuse it). If the build fails the test fails.
  prepare_js "$log" || echo "kotlin: the npm package did not build; the Kotlin-JS link test will fail" | tee -a "$log"
  rm -rf bindings/kotlin/target/surefire-reports
  # The cdylib is where cargo put it (gen-bindings.sh builds with the same CARGO_TARGET_DIR).
  local native_dir=${CARGO_TARGET_DIR:-$ROOT/target}/${FFI_PROFILE:-debug}
  (cd bindings/kotlin && run "$log" mvn -B -q test -Dnative.dir="$native_dir"); rc=$?
  # Quiet Maven hides Surefire's summary: sum the XML reports instead.
  local t=0 fl=0 er=0 sk=0 f
  for f in bindings/kotlin/target/surefire-reports/TEST-*.xml; do
    [[ -f $f ]] || continue
    read -r a b c d < <(grep -m1 -o '<testsuite [^>]*>' "$f" | tr ' ' '\n' | awk -F'"' '
      /^tests=/{t=$2} /^failures=/{f=$2} /^errors=/{e=$2} /^skipped=/{s=$2}
      END {print t+0, f+0, e+0, s+0}')
    t=$((t + a)); fl=$((fl + b)); er=$((er + c)); sk=$((sk + d))
  done
  echo "Tests run: $t, Failures: $fl, Errors: $er, Skipped: $sk" | tee -a "$log"
  P=$((t - fl - er - sk)); F=$((fl + er))
  return "$rc"
}

suite_python() {
  local log=$1 rc line; : >"$log"
  [[ -d bindings/python ]] || return 99
  prepare_ffi "$log" || return 1
  local py=python3; [[ -x .venv/bin/python ]] && py=.venv/bin/python
  run "$log" "$py" -m pytest -q bindings/python; rc=$?
  # "3 passed, 1 failed in 0.12s" / "3 passed in 0.1s" / "1 failed, 2 passed ..."
  line=$(grep -E '[0-9]+ (passed|failed|error)' "$log" | grep -E ' in [0-9.]+s' | tail -n1 || true)
  P=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  F=$(( $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0) + $(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' || echo 0) ))
  [[ $rc -eq 5 ]] && { echo "pytest collected no tests" | tee -a "$log"; F=1; }
  return "$rc"
}

# Committed Swift bindings vs. the generator, and Swift API vs. Kotlin API (no Swift
# toolchain here: generation-level checks only).
suite_swift_drift() {
  local log=$1 rc; : >"$log"
  [[ -f scripts/check-swift-drift.sh && -d bindings/swift/Sources ]] || return 99
  run "$log" bash scripts/check-swift-drift.sh; rc=$?
  count_plain "$log" || true
  return "$rc"
}

# Builds the wasm package for bindings/js (once).
JS_READY=
prepare_js() {
  local log=$1
  [[ -n $JS_READY ]] && return "$JS_READY"
  if [[ -x bindings/js/build.sh ]]; then
    run "$log" bash bindings/js/build.sh; JS_READY=$?
  elif pkg_exists "$WASM_PKG"; then
    run "$log" bash scripts/build-wasm.sh "$WASM_PKG" bindings/js/pkg --target web; JS_READY=$?
  else
    JS_READY=0
  fi
  return "$JS_READY"
}

suite_js_node() {
  local log=$1 rc; : >"$log"
  [[ -f bindings/js/package.json ]] || return 99
  prepare_js "$log" || return 1
  local files=()
  mapfile -t files < <(cd bindings/js && find test -path test/browser -prune -o -type f \
    \( -name '*.test.mjs' -o -name '*.test.js' -o -name '*.test.cjs' \) -print 2>/dev/null | sort)
  [[ ${#files[@]} -gt 0 ]] || { echo "no bindings/js/test/*.test.mjs files" | tee -a "$log"; return 1; }
  (cd bindings/js && run "$log" node --test --test-reporter=tap "${files[@]}"); rc=$?
  P=$(grep -E '^# pass [0-9]+' "$log" | tail -n1 | awk '{print $3}'); P=${P:-0}
  F=$(grep -E '^# fail [0-9]+' "$log" | tail -n1 | awk '{print $3}'); F=${F:-0}
  return "$rc"
}

suite_js_browser() {
  local log=$1 rc; : >"$log"
  [[ -f bindings/js/test/browser/run.mjs ]] || return 99
  prepare_js "$log" || return 1
  (cd bindings/js && run "$log" node test/browser/run.mjs); rc=$?
  count_plain "$log" || true
  return "$rc"
}

suite_fuzz_smoke() {
  local log=$1 rc; : >"$log"
  [[ -f scripts/fuzz-smoke.sh ]] || return 99
  run "$log" bash scripts/fuzz-smoke.sh; rc=$?
  # Either a plain `N passed, N failed` line, or one row per target ending in
  # `ok` / `FAIL (...)`, or just the exit code.
  if ! count_plain "$log"; then
    P=$(grep -cE '^[A-Za-z0-9_]+ +[0-9]+ .* ok$' "$log" || true)
    F=$(grep -cE '^[A-Za-z0-9_]+ +[0-9]+ .* FAIL' "$log" || true)
    [[ $P -eq 0 && $F -eq 0 && $rc -eq 0 ]] && P=1
  fi
  return "$rc"
}

suite_vectors() {
  local log=$1 rc; : >"$log"
  pkg_exists "$CLI_PKG" || return 99
  run "$log" cargo run -q -p "$CLI_PKG" -- vectors verify; rc=$?
  count_plain "$log" || { [[ $rc -eq 0 ]] && P=1; }
  return "$rc"
}

# ------------------------------------------------------------------ main
T0=$(date +%s)
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  echo "=================== install-deps ==================="
  s=$(date +%s)
  if bash scripts/install-deps.sh 2>&1 | tee "$LOG_DIR/install-deps.log"; then
    echo "--- install-deps ok ($(( $(date +%s) - s ))s)"
  else
    echo "--- install-deps FAILED ($(( $(date +%s) - s ))s); running suites anyway"
  fi
fi
[[ -x .venv/bin/python ]] && export PATH="$ROOT/.venv/bin:$PATH"

run_suite rust-fmt     suite_rust_fmt
run_suite rust-clippy  suite_rust_clippy
run_suite rust-doc     suite_rust_doc
run_suite rust-test    suite_rust_test
run_suite kotlin       suite_kotlin
run_suite python       suite_python
run_suite swift-drift  suite_swift_drift
run_suite js-node      suite_js_node
run_suite js-browser   suite_js_browser
run_suite fuzz-smoke   suite_fuzz_smoke
run_suite vectors      suite_vectors

TP=0; TF=0; FAILED_ANY=0
echo
echo "=================== summary ==================="
printf '%-14s %-22s %8s %8s %8s\n' suite status passed failed time
for i in "${!NAMES[@]}"; do
  printf '%-14s %-22s %8s %8s %7ss\n' "${NAMES[$i]}" "${STATUS[$i]}" "${PASS[$i]}" "${FAIL[$i]}" "${SECS[$i]}"
  TP=$((TP + PASS[i])); TF=$((TF + FAIL[i]))
  [[ ${STATUS[$i]} == FAILED ]] && FAILED_ANY=1
done
echo "total time: $(( $(date +%s) - T0 ))s; logs in target/test-logs/"
[[ $TP -eq 0 && $TF -eq 0 ]] && { TF=1; FAILED_ANY=1; echo "no suite ran any test"; }
echo "$TP passed, $TF failed"
[[ $FAILED_ANY -eq 0 && $TF -eq 0 ]]
