#!/usr/bin/env bash
# Build the uniffi cdylib and generate foreign bindings from it (library mode).
#
#   scripts/gen-bindings.sh [kotlin|python|swift|all]...     (default: all)
#
# Output (all gitignored, regenerated every run):
#   bindings/kotlin/generated/   Kotlin sources (package uniffi.<crate_name>)
#   bindings/python/generated/   <module>.py + the cdylib copied next to it
#   bindings/swift/generated/    .swift + FFI header + modulemap (generation only: no
#                                Swift toolchain on these machines)
# The Kotlin tests find the cdylib through -Djna.library.path=target/<profile>.
#
# Env: FFI_PKG (default gochat-e2ee-ffi), FFI_PROFILE=debug|release (default debug).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
FFI_PKG=${FFI_PKG:-gochat-e2ee-ffi}
FFI_PROFILE=${FFI_PROFILE:-debug}
log() { echo "[gen-bindings] $*" >&2; }

LANGS=("$@"); [[ ${#LANGS[@]} -eq 0 || ${LANGS[0]} == all ]] && LANGS=(kotlin python swift)

if [[ ! -f crates/$FFI_PKG/Cargo.toml ]]; then
  log "crates/$FFI_PKG not present: nothing to generate"; exit 0
fi
PROFILE_ARGS=(); [[ $FFI_PROFILE == release ]] && PROFILE_ARGS=(--release)

# If the ffi crate puts uniffi's `cli` feature behind a crate feature named `cli`
# (bin with required-features = ["cli"]; keeps uniffi_bindgen + clap out of plain
# `cargo test/clippy --workspace`), enable it here.
FEATURE_ARGS=()
if [[ -n ${FFI_FEATURES:-} ]]; then
  FEATURE_ARGS=(--features "$FFI_FEATURES")
elif cargo metadata --no-deps --format-version 1 \
    | jq -e --arg p "$FFI_PKG" '.packages[] | select(.name == $p) | .features | has("cli")' >/dev/null; then
  FEATURE_ARGS=(--features cli)
fi
# Build the cdylib and the uniffi-bindgen bin shipped by the ffi crate.
cargo build "${PROFILE_ARGS[@]}" -p "$FFI_PKG" "${FEATURE_ARGS[@]}" --lib --bins

LIBNAME=$(cargo metadata --no-deps --format-version 1 \
  | jq -r --arg p "$FFI_PKG" '.packages[] | select(.name == $p) | .targets[] | select(.kind | index("cdylib")) | .name' | head -n1)
LIBNAME=${LIBNAME//-/_}
TARGET_DIR=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
case $(uname -s) in Darwin) EXT=dylib ;; *) EXT=so ;; esac
SO=$TARGET_DIR/$FFI_PROFILE/lib$LIBNAME.$EXT
[[ -f $SO ]] || { log "missing $SO (crate-type must include cdylib)"; exit 1; }
BINDGEN=$TARGET_DIR/$FFI_PROFILE/uniffi-bindgen
[[ -x $BINDGEN ]] || { log "missing $BINDGEN (the ffi crate must ship a uniffi-bindgen bin)"; exit 1; }

for lang in "${LANGS[@]}"; do
  out=bindings/$lang/generated
  [[ -d bindings/$lang ]] || { log "bindings/$lang absent, skipping $lang"; continue; }
  rm -rf "$out"; mkdir -p "$out"
  # --no-format: ktlint / yapf / swift-format are not installed here
  "$BINDGEN" generate "$SO" --language "$lang" --out-dir "$out" --no-format
  [[ $lang == python ]] && cp "$SO" "$out/"
  log "$lang -> $out"
done
