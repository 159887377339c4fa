#!/usr/bin/env bash
# The browser page's tests: builds web/dist when it is missing or older than its sources
# (web/build.sh), builds the CLI the tests verify with, then runs the Node tests:
#
#   tests/golden.test.mjs  the spec's golden vectors through the .wasm (no browser)
#   tests/page.test.mjs    the page in Debian's Chromium (playwright-core): real firmware in,
#                          downloads checked by esptool image-info and thinger-patch verify
#
# Needs /usr/bin/chromium (installed here with apt-get when missing and run as root) and
# esptool (THINGER_PATCH_ESPTOOL, else <repo>/.venv/bin/esptool). Screenshots and the request
# log go to web/test-artifacts/. Extra arguments go to `node --test`.
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$WEB/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"

log() { printf '[web/test] %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# 1. The page, when its sources changed since the last build.
stamp="$WEB/dist/build-info.json"
if [[ ! -f "$stamp" ]] || [[ -n "$(find "$WEB/index.html" "$WEB/style.css" "$WEB/app.js" "$WEB/sw.js" \
    "$WEB/manifest.json" "$WEB/package-lock.json" "$WEB/build.sh" "$REPO/crates/web" "$REPO/src" \
    "$REPO/Cargo.lock" -newer "$stamp" -type f -print -quit)" ]]; then
    log "building web/dist"
    "$WEB/build.sh"
else
    log "web/dist is up to date"
    lock_sum="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
    if [[ "$(cat "$WEB/node_modules/.thinger-patch-lock" 2>/dev/null || true)" != "$lock_sum" ]]; then
        (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s\n' "$lock_sum" >"$WEB/node_modules/.thinger-patch-lock"
    fi
fi

# 2. The verifier the downloads must pass, and the simulated chip.
log "cargo build --bin thinger-patch, --example rom_loader_ws"
(cd "$REPO" && cargo build --locked -q -p thinger-patch --bin thinger-patch &&
    cargo build --locked -q -p thinger-patch-test-kit --example rom_loader_ws)
export THINGER_PATCH_BIN="$CARGO_TARGET_DIR/debug/thinger-patch"
# The simulated chip the flashing tests write to (esptool-js through a fake navigator.serial).
export THINGER_PATCH_ROM_WS="$CARGO_TARGET_DIR/debug/examples/rom_loader_ws"
if [[ -z "${THINGER_PATCH_ESPTOOL:-}" && -x "$REPO/.venv/bin/esptool" ]]; then
    export THINGER_PATCH_ESPTOOL="$REPO/.venv/bin/esptool"
fi

# 3. The browser.
if [[ ! -x /usr/bin/chromium ]] && ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's chromium (apt-get)"
    APT=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    "${APT[@]}" update -q
    "${APT[@]}" install -y -q --no-install-recommends chromium
fi
[[ -x /usr/bin/chromium ]] && log "$(/usr/bin/chromium --version 2>/dev/null | head -n 1)"

# 4. The tests (one file at a time: they share the machine's two cores with the browser).
rm -rf "$WEB/test-artifacts"
cd "$WEB"
node --test --test-concurrency=1 "$@" tests/
