#!/usr/bin/env bash
# Build a workspace package as a wasm32-unknown-unknown cdylib and run wasm-bindgen on it.
#
#   scripts/build-wasm.sh <package> <out-dir> [--target web|nodejs|bundler] [--debug | --profile NAME]
#
# --profile NAME builds with a custom cargo profile (e.g. wasm-release in the root Cargo.toml:
# release + opt-level "s" + panic = "abort").
#
# Route 1 (ordinary): rustup with the wasm32-unknown-unknown target installed
#   -> cargo build --release --target wasm32-unknown-unknown (normal target/ dir).
# Route 2 (fallback): Debian's rustc-web + rust-web-src + lld-16, building std with
#   -Zbuild-std (RUSTC_BOOTSTRAP=1 for this build only) into target/wasm-debian so the
#   native rustup build cache in target/ is never clobbered.
#
# The wasm-bindgen CLI must equal the wasm-bindgen crate version in Cargo.lock
# (scripts/install-deps.sh installs it).
# `--target web` output works in browsers (default init()) and in Node >= 18 via
# initSync({ module: fs.readFileSync(<_bg.wasm>) }), so one package serves both.
#
# Env: WASM_OPT=0 disables wasm-opt, WASM_OPT=1 forces it even on binaryen < 116
#      (binaryen 108, Debian bookworm, mis-rewrites wasm-bindgen's externref table
#      export and the module then fails to instantiate; it is skipped by default).
#      WASM_ROUTE=rustup|debian forces a route.
set -euo pipefail

usage() { echo "usage: $0 <package> <out-dir> [--target web|nodejs|bundler] [--debug | --profile NAME]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
PKG=$1; OUT=$2; shift 2
TARGET=web
PROFILE=release
while [[ $# -gt 0 ]]; do
  case $1 in
    --target) TARGET=${2:?}; shift 2 ;;
    --target=*) TARGET=${1#--target=}; shift ;;
    --debug) PROFILE=debug; shift ;;
    --profile) PROFILE=${2:?}; shift 2 ;;
    --profile=*) PROFILE=${1#--profile=}; shift ;;
    *) usage ;;
  esac
done
case $TARGET in web|nodejs|bundler|deno|no-modules|experimental-nodejs-module) ;; *) usage ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "[build-wasm] $*" >&2; }

# --- which route -----------------------------------------------------------------
ROUTE=${WASM_ROUTE:-}
if [[ -z $ROUTE ]]; then
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    ROUTE=rustup
  elif [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -d "$(/usr/bin/rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library" ]]; then
    ROUTE=debian
  else
    log "no wasm32 toolchain: install the rustup target (rustup target add wasm32-unknown-unknown)"
    log "or run scripts/install-deps.sh (Debian rustc-web + rust-web-src + lld-16)."
    exit 1
  fi
fi

# --- getrandom 0.3 needs a cfg; 0.4 only needs its wasm_js feature ------------------
WASM_RUSTFLAGS=()
if [[ -f Cargo.lock ]] && grep -A1 '^name = "getrandom"$' Cargo.lock | grep -q '^version = "0\.3\.'; then
  WASM_RUSTFLAGS+=(--cfg 'getrandom_backend="wasm_js"')
fi
# Only touch the rustflags env when needed: changing it forces a full rebuild (std too).
FLAG_ENV=()
if [[ ${#WASM_RUSTFLAGS[@]} -gt 0 ]]; then
  FLAG_ENV=("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} ${WASM_RUSTFLAGS[*]}")
fi

CARGO_PROFILE_ARGS=()
case $PROFILE in
  debug) ;;
  release) CARGO_PROFILE_ARGS=(--release) ;;
  *) CARGO_PROFILE_ARGS=(--profile "$PROFILE") ;;
esac

# --- build -----------------------------------------------------------------------
case $ROUTE in
  rustup)
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    log "route: rustup ($(rustc --version))"
    env "${FLAG_ENV[@]}" \
      cargo build "${CARGO_PROFILE_ARGS[@]}" -p "$PKG" --lib --target wasm32-unknown-unknown --target-dir "$TARGET_DIR"
    ;;
  debian)
    TARGET_DIR=$ROOT/target/wasm-debian
    LINKER=$(command -v wasm-ld-16 || command -v wasm-ld || true)
    [[ -n $LINKER ]] || { log "wasm-ld-16 not found (apt-get install lld-16)"; exit 1; }
    log "route: debian ($(/usr/bin/rustc --version)), -Zbuild-std, target dir $TARGET_DIR"
    # RUSTC_BOOTSTRAP only for this build (unlocks -Zbuild-std on a stable compiler).
    # RUSTUP_TOOLCHAIN unset so nothing re-enters rustup's proxies.
    env -u RUSTUP_TOOLCHAIN \
      RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LINKER" \
      "${FLAG_ENV[@]}" \
      /usr/bin/cargo build "${CARGO_PROFILE_ARGS[@]}" -p "$PKG" --lib --target wasm32-unknown-unknown \
        --target-dir "$TARGET_DIR" -Zbuild-std=std,panic_abort
    ;;
  *) log "unknown WASM_ROUTE=$ROUTE"; exit 2 ;;
esac

# --- locate the .wasm (lib name may differ from the package name) ------------------
LIBNAME=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null \
  | jq -r --arg p "$PKG" '.packages[] | select(.name == $p) | .targets[] | select(.kind | index("cdylib")) | .name' | head -n1 || true)
[[ -n $LIBNAME ]] || LIBNAME=$PKG
LIBNAME=${LIBNAME//-/_}
WASM=$TARGET_DIR/wasm32-unknown-unknown/$PROFILE/$LIBNAME.wasm
[[ -f $WASM ]] || { log "expected $WASM (is crate-type = [\"cdylib\"] set?)"; exit 1; }

# --- wasm-bindgen (version must match Cargo.lock) -------------------------------------
LOCK_WB=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -n1)
CLI_WB=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [[ -z $CLI_WB ]]; then
  log "wasm-bindgen CLI not found; run scripts/install-deps.sh"; exit 1
fi
if [[ -n $LOCK_WB && $LOCK_WB != "$CLI_WB" ]]; then
  log "wasm-bindgen CLI $CLI_WB != crate $LOCK_WB in Cargo.lock; run scripts/install-deps.sh"; exit 1
fi
mkdir -p "$OUT"
BG_FLAGS=(--target "$TARGET" --out-dir "$OUT")
[[ $PROFILE != debug ]] && BG_FLAGS+=(--remove-name-section --remove-producers-section)
wasm-bindgen "${BG_FLAGS[@]}" "$WASM"
BG=$OUT/${LIBNAME}_bg.wasm

# --- wasm-opt (optional) ------------------------------------------------------------
if [[ $PROFILE != debug && ${WASM_OPT:-auto} != 0 ]] && command -v wasm-opt >/dev/null 2>&1; then
  BV=$(wasm-opt --version | grep -oE '[0-9]+' | head -n1)
  if [[ ${WASM_OPT:-auto} == 1 || ${BV:-0} -ge 116 ]]; then
    before=$(stat -c%s "$BG")
    wasm-opt -Oz --enable-reference-types --enable-bulk-memory --enable-sign-ext \
      --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue \
      "$BG" -o "$BG.opt" && mv "$BG.opt" "$BG"
    log "wasm-opt -Oz: $before -> $(stat -c%s "$BG") bytes"
  else
    log "wasm-opt $BV < 116 skipped (breaks wasm-bindgen externref tables); set WASM_OPT=1 to force"
  fi
fi

# A package.json so Node picks the right module system for the generated .js.
if [[ ! -f $OUT/package.json ]]; then
  case $TARGET in
    nodejs) echo '{ "type": "commonjs" }' > "$OUT/package.json" ;;
    web|bundler|experimental-nodejs-module) echo '{ "type": "module" }' > "$OUT/package.json" ;;
  esac
fi
log "ok: $OUT ($(stat -c%s "$BG") bytes wasm, $(gzip -9c "$BG" | wc -c) gzipped)"
