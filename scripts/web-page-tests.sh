#!/usr/bin/env bash
# The browser page (issue 13): builds web/dist (web/build.sh: npm ci from the lockfile, the
# .wasm, wasm-bindgen-cli pinned and installed into web/.tools once, wasm-opt) and runs its
# tests in Debian's Chromium through playwright-core (web/test.sh: the golden vectors through
# the .wasm under Node, real firmware through the page, downloads checked by esptool and
# `thinger-patch verify`, the request log). Installs Chromium with apt-get when missing.
# scripts/test.sh runs it after `cargo test`, whose build of the CLI it reuses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
web/build.sh
exec web/test.sh
