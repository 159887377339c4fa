#!/usr/bin/env bash
# The workspace's dependency rules (docs/architecture.md), checked with `cargo tree`:
#   - thinger-patch-core does no I/O: none of the crates below is among its normal dependencies;
#   - thinger-patch-web depends on no workspace crate but thinger-patch-core;
#   - no shipped crate depends on thinger-patch-test-kit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail=0
deps() { cargo tree --locked -q -p "$1" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u; }

core=$(deps thinger-patch-core)
for io in espflash serialport ureq rustls rusqlite tempfile clap rpassword indicatif which libc nix \
    tokio mio socket2 keyring duct wasm-bindgen; do
    if grep -qx "$io" <<<"$core"; then
        echo "check-deps: thinger-patch-core depends on $io (an I/O or front-end crate)" >&2
        fail=1
    fi
done

web_ws=$(deps thinger-patch-web | grep '^thinger-' || true)
for c in $web_ws; do
    case "$c" in
        thinger-patch-web | thinger-patch-core) ;;
        *) echo "check-deps: thinger-patch-web depends on $c (only thinger-patch-core is allowed)" >&2; fail=1 ;;
    esac
done

for shipped in thinger-patch thinger-patch-core thinger-patch-delivery thinger-patch-cloud \
    thinger-patch-ledger thinger-patch-web cargo-thinger-patch; do
    if cargo metadata --locked --format-version 1 --no-deps >/dev/null 2>&1 &&
        deps "$shipped" 2>/dev/null | grep -qx thinger-patch-test-kit; then
        echo "check-deps: $shipped depends on thinger-patch-test-kit (test code)" >&2
        fail=1
    fi
done

if ((fail)); then exit 1; fi
echo "check-deps: ok ($(wc -l <<<"$core") crates under thinger-patch-core, none doing I/O)"
