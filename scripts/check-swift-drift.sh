#!/usr/bin/env bash
# Checks that the committed Swift bindings (bindings/swift/Sources/...) are what uniffi
# generates from the current Rust code, and that the Swift API has the same functions
# and error cases as the Kotlin one. There is no Swift toolchain on these machines: this
# is the check CI can make.
#
#   bash scripts/check-swift-drift.sh           # check (exit 1 on drift or API mismatch)
#   bash scripts/check-swift-drift.sh --update  # regenerate the committed files
#
# Prints `swift-drift: N passed, N failed` (the format scripts/test-all.sh counts).
# Env: FFI_PKG (default gochat-e2ee-ffi), FFI_PROFILE=debug|release (default debug).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
FFI_PKG=${FFI_PKG:-gochat-e2ee-ffi}
FFI_PROFILE=${FFI_PROFILE:-debug}
SWIFT=bindings/swift
PROFILE_ARGS=(); [[ $FFI_PROFILE == release ]] && PROFILE_ARGS=(--release)

cargo build -q "${PROFILE_ARGS[@]}" -p "$FFI_PKG" --features cli --lib --bins || {
  echo "swift-drift: 0 passed, 1 failed (build)"; exit 1; }
TARGET_DIR=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
case $(uname -s) in Darwin) EXT=dylib ;; *) EXT=so ;; esac
SO=$TARGET_DIR/$FFI_PROFILE/libgochat_e2ee_ffi.$EXT
BINDGEN=$TARGET_DIR/$FFI_PROFILE/uniffi-bindgen

TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for lang in swift kotlin; do
  "$BINDGEN" generate "$SO" --language "$lang" --out-dir "$TMP/$lang" --no-format >/dev/null || {
    echo "swift-drift: 0 passed, 1 failed (generation)"; exit 1; }
done

# generated file -> committed file
PAIRS=(
  "$TMP/swift/GoChatE2EE.swift:$SWIFT/Sources/GoChatE2EE/GoChatE2EE.swift"
  "$TMP/swift/GoChatE2EEFFI.h:$SWIFT/Sources/GoChatE2EEFFI/include/GoChatE2EEFFI.h"
  "$TMP/swift/GoChatE2EEFFI.modulemap:$SWIFT/Sources/GoChatE2EEFFI/include/module.modulemap"
)

if [[ ${1:-} == --update ]]; then
  for p in "${PAIRS[@]}"; do mkdir -p "$(dirname "${p#*:}")"; cp "${p%%:*}" "${p#*:}"; done
  echo "updated the committed Swift bindings"
  exit 0
fi

passed=0; failed=0
drift=0
for p in "${PAIRS[@]}"; do
  if ! diff -u "${p#*:}" "${p%%:*}" >"$TMP/diff" 2>&1; then
    echo "DRIFT: ${p#*:} differs from freshly generated code:"; head -n 40 "$TMP/diff"
    drift=1
  fi
done
if [[ $drift -eq 0 ]]; then
  echo "ok   committed Swift sources match the generator"; passed=$((passed + 1))
else
  echo "FAIL committed Swift sources drifted; run: bash scripts/check-swift-drift.sh --update"
  failed=$((failed + 1))
fi

# The Swift and Kotlin APIs: same functions/methods (both camelCase) and error cases.
if python3 - "$TMP/kotlin/gov/gochat/e2ee/gochat_e2ee_ffi.kt" "$TMP/swift/GoChatE2EE.swift" <<'PY'
import re, sys
# Doc comments (/** ... */) sit between declarations and their fields: drop them first.
kt, sw = (re.sub(r"/\*.*?\*/", "", open(p).read(), flags=re.S) for p in sys.argv[1:3])
k_funcs = set(re.findall(r"fun `([a-zA-Z]+)`\(", kt))
s_funcs = set(re.findall(r"(?:open|public) (?:static )?func `?([a-zA-Z]+)`?\(", sw))  # `open` etc. are backticked
s_funcs = {f for f in s_funcs if not re.match(r"(lift|lower|read|write|from|empty|hash|uniffi|FfiConverter)$|uniffi|FfiConverter", f)}
k_errs = set(re.findall(r"class ([A-Z][a-zA-Z]+)\(\s*val `detail`", kt))
s_errs = set(re.findall(r"^\s*case ([A-Z][a-zA-Z]+)\(\s*detail:", sw, re.M))
ok = True
for what, k, s in (("functions", k_funcs, s_funcs), ("error cases", k_errs, s_errs)):
    if k != s or not k:
        ok = False
        print(f"API mismatch in {what}: Kotlin only {sorted(k - s)}, Swift only {sorted(s - k)}")
    else:
        print(f"     {len(k)} {what} match: {' '.join(sorted(k))}")
sys.exit(0 if ok else 1)
PY
then
  echo "ok   Swift API matches Kotlin API"; passed=$((passed + 1))
else
  echo "FAIL Swift API differs from Kotlin API"; failed=$((failed + 1))
fi
echo "swift-drift: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
