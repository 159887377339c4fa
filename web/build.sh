#!/usr/bin/env bash
# Builds the browser page into web/dist/: index.html, its CSS and JS, the .wasm beside them
# (with its wasm-bindgen glue), esptool-js, a service worker that keeps it all for offline
# use, an example manifest.json and the demo firmware it points to.
#
#   web/build.sh            build (reuses what is installed)
#
# Steps: npm ci (pinned esptool-js, binaryen, playwright-core from package-lock.json)
# -> cargo build -p thinger-patch-web --target wasm32-unknown-unknown --profile wasm-release
# -> wasm-bindgen (wasm-bindgen-cli of the crate's pinned version, installed into .tools/
# with cargo install --locked when missing) -> wasm-opt -Oz (npm binaryen; skipped with a
# message when it cannot run) -> copy the page -> print the .wasm size, raw and gzip.
#
# Environment: CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$WEB/.." && pwd)"
DIST="$WEB/dist"
TOOLS="$WEB/.tools"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"

log() { printf '[web/build] %s\n' "$*"; }
die() {
    printf '[web/build] ERROR: %s\n' "$*" >&2
    exit 1
}

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v node >/dev/null 2>&1 || die "node not found (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found (Debian: apt-get install npm)"

# The wasm-bindgen version the crate pins (=X.Y.Z); the CLI must be the same.
WB_VERSION="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$REPO/crates/web/Cargo.toml")"
[[ -n "$WB_VERSION" ]] || die "no exact wasm-bindgen pin (wasm-bindgen = \"=X.Y.Z\") in crates/web/Cargo.toml"

# ---------------------------------------------------------------------------------------
# 1. npm packages, exactly as locked
# ---------------------------------------------------------------------------------------
lock_sum="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$WEB/node_modules/.thinger-patch-lock" 2>/dev/null || true)" != "$lock_sum" ]]; then
    log "npm ci (package-lock.json)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$lock_sum" >"$WEB/node_modules/.thinger-patch-lock"
else
    log "npm: ok, node_modules matches package-lock.json"
fi

# ---------------------------------------------------------------------------------------
# 2. The .wasm
# ---------------------------------------------------------------------------------------
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "rust: adding target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi
log "cargo build -p thinger-patch-web --target wasm32-unknown-unknown --profile wasm-release"
(cd "$REPO" && cargo build -p thinger-patch-web --target wasm32-unknown-unknown \
    --profile wasm-release --locked)
WASM_IN="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/thinger_patch_web.wasm"
[[ -f "$WASM_IN" ]] || die "cargo did not produce $WASM_IN"

WB="$TOOLS/bin/wasm-bindgen"
if [[ ! -x "$WB" ]] || [[ "$("$WB" --version 2>/dev/null)" != "wasm-bindgen $WB_VERSION" ]]; then
    log "installing wasm-bindgen-cli $WB_VERSION into $TOOLS (cargo install --locked; takes a few minutes once)"
    cargo install wasm-bindgen-cli --locked --version "$WB_VERSION" --root "$TOOLS"
fi
log "$("$WB" --version)"

rm -rf "$DIST"
mkdir -p "$DIST/vendor" "$DIST/firmware"
# --target web: an ES module the page imports; Node's tests load the same files (initSync).
"$WB" --target web --no-typescript --out-dir "$DIST" "$WASM_IN"
WASM="$DIST/thinger_patch_web_bg.wasm"

WASM_OPT=(node "$WEB/node_modules/binaryen/bin/wasm-opt")
if "${WASM_OPT[@]}" --version >/dev/null 2>&1; then
    before=$(stat -c %s "$WASM")
    # The features Rust's wasm32 target enables by default; -Oz: smallest.
    "${WASM_OPT[@]}" -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
        --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
        "$WASM" -o "$WASM.opt"
    mv "$WASM.opt" "$WASM"
    log "wasm-opt -Oz ($("${WASM_OPT[@]}" --version)): $before -> $(stat -c %s "$WASM") bytes"
else
    log "wasm-opt: skipped (npm binaryen cannot run here); the .wasm is only cargo's -Oz build"
fi

# ---------------------------------------------------------------------------------------
# 3. The page, esptool-js, the demo firmware
# ---------------------------------------------------------------------------------------
cp "$WEB/index.html" "$WEB/style.css" "$WEB/app.js" "$WEB/manifest.json" "$DIST/"
cp "$WEB/node_modules/esptool-js/bundle.js" "$DIST/vendor/esptool-js.js"
cp "$WEB/node_modules/esptool-js/LICENSE" "$DIST/vendor/esptool-js.LICENSE" 2>/dev/null || true
cp "$REPO/examples/c-firmware/prebuilt/esp32c3-demo-merged.bin" "$DIST/firmware/"

# The service worker caches exactly the files built here, under a name that changes with them.
shell_files=(index.html style.css app.js thinger_patch_web.js thinger_patch_web_bg.wasm vendor/esptool-js.js)
build_id="$(cd "$DIST" && cat "${shell_files[@]}" | sha256sum | cut -c1-16)"
BUILD_ID="$build_id" node -e '
const fs = require("fs");
const [src, dst, ...files] = process.argv.slice(1);
const list = JSON.stringify(["./", ...files.map((f) => "./" + f)]);
fs.writeFileSync(dst, fs.readFileSync(src, "utf8")
    .replace("__BUILD_ID__", process.env.BUILD_ID)
    .replace("[/* __SHELL_FILES__ */]", list));
' "$WEB/sw.js" "$DIST/sw.js" "${shell_files[@]}"

raw=$(stat -c %s "$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
printf '{"wasmBytes": %d, "wasmGzipBytes": %d, "build": "%s", "wasmBindgen": "%s"}\n' \
    "$raw" "$gz" "$build_id" "$WB_VERSION" >"$DIST/build-info.json"
log "dist: $DIST"
log "wasm: $raw bytes raw, $gz bytes gzip -9 ($(basename "$WASM"))"
