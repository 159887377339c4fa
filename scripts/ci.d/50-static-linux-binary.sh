#!/usr/bin/env bash
# The static Linux binary users download (x86_64-unknown-linux-musl, dist profile): builds it,
# checks that it is static, runs --version and a real patch checked by esptool
# (scripts/check-release-builds.sh; the aarch64 and Windows builds are checked by hand, see
# README "Without Rust").
set -euo pipefail
scripts/check-release-builds.sh x86_64-unknown-linux-musl
# Nothing after this step reads the optimised build: under CI, give its disk space back.
if [[ "${CI:-}" == "true" ]]; then
    rm -rf "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl"
fi
