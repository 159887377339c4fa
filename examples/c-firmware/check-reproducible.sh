#!/bin/sh
# Rebuild the C demo firmware into a temporary directory and compare every
# file, byte for byte, with the committed copies in prebuilt/.
#
#   ESPTOOL=/path/to/esptool examples/c-firmware/check-reproducible.sh
#
# Exit status 0: identical. 1: a file differs, is missing or is extra (each
# one is named), or the build failed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREBUILT="$HERE/prebuilt"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/c-firmware-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

if ! "$HERE/build.sh" "$TMP/out" >"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log" >&2
    echo "check-reproducible: FAILED: build.sh did not complete" >&2
    exit 1
fi

(cd "$PREBUILT" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$TMP/expected"
(cd "$TMP/out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$TMP/actual"

status=0
while read -r f; do
    if [ ! -f "$TMP/out/$f" ]; then
        echo "check-reproducible: $f is in prebuilt/ but the build did not produce it" >&2
        status=1
    elif ! cmp -s "$PREBUILT/$f" "$TMP/out/$f"; then
        first=$(cmp "$PREBUILT/$f" "$TMP/out/$f" 2>&1 | head -n 1 | sed -n 's/.*differ: \(byte [0-9]*\).*/first difference at \1/p; s/.*EOF on .*/one file is a prefix of the other/p')
        echo "check-reproducible: $f differs from prebuilt/$f (${first:-contents differ}; sizes $(wc -c <"$PREBUILT/$f") vs $(wc -c <"$TMP/out/$f"))" >&2
        status=1
    fi
done <"$TMP/expected"
for f in $(comm -13 "$TMP/expected" "$TMP/actual"); do
    echo "check-reproducible: the build produced $f, which is not in prebuilt/" >&2
    status=1
done

if [ "$status" -ne 0 ]; then
    echo "check-reproducible: FAILED: the rebuilt firmware is not identical to examples/c-firmware/prebuilt/." >&2
    echo "  If the change is intended, refresh it with: examples/c-firmware/build.sh examples/c-firmware/prebuilt" >&2
    echo "  Otherwise check the toolchain versions (gcc $(riscv64-unknown-elf-gcc -dumpversion 2>/dev/null || echo '?')," \
         "esptool $("${ESPTOOL:-esptool}" version 2>/dev/null | tail -n 1 || echo '?')) against README.md." >&2
    exit 1
fi
echo "check-reproducible: OK, $(wc -l <"$TMP/expected") files identical to prebuilt/"
