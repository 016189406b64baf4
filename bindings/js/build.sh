#!/usr/bin/env bash
# Builds the npm package @gochat/e2ee: the wasm module (crates/gochat-e2ee-wasm) into pkg/.
#
#   bash bindings/js/build.sh          (or: npm run build)
#
# Route 1 (ordinary): rustup with the wasm32-unknown-unknown target, wasm-bindgen-cli at the
# crate's exact version, wasm-opt from a recent binaryen. Route 2 (fallback, for machines
# where the rustup target cannot be installed): Debian's rustc-web + rust-web-src with
# -Zbuild-std. scripts/build-wasm.sh picks the route; docs/web.md explains both.
# Profile `wasm-release` (root Cargo.toml): release + opt-level "s" + panic = "abort".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/build-wasm.sh" gochat-e2ee-wasm "$HERE/pkg" --target web --profile "${WASM_PROFILE:-wasm-release}"
# The glue's own package.json (written by build-wasm.sh) must not shadow ours in npm pack.
rm -f "$HERE/pkg/package.json" "$HERE/pkg/.gitignore"
wasm="$HERE/pkg/gochat_e2ee_wasm_bg.wasm"
echo "[build] $(wc -c <"$wasm") bytes raw, $(gzip -9c "$wasm" | wc -c) bytes gzip"
