#!/bin/sh
# Build the thinger-patch C demo firmware (ESP32-C3 and ESP8266) into OUTDIR.
#
#   examples/c-firmware/build.sh OUTDIR
#
# Needs: riscv64-unknown-elf-gcc + picolibc, xtensa-lx106-elf-gcc (Debian
# packages gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf,
# gcc-xtensa-lx106), python3, and esptool 5 (taken from $ESPTOOL, default
# `esptool` on PATH).
#
# Every output is byte-reproducible: same sources + same toolchain + same
# esptool version = same bytes, whatever the checkout path, the output path,
# the clock or SOURCE_DATE_EPOCH.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
ESPTOOL=${ESPTOOL:-esptool}

CC_RV=riscv64-unknown-elf-gcc
CC_XT=xtensa-lx106-elf-gcc
PYTHON=${PYTHON:-python3}

for tool in "$CC_RV" "$CC_XT" "$PYTHON" "$ESPTOOL"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build.sh: '$tool' not found (ESPTOOL=path/to/esptool selects esptool)" >&2
        exit 1
    fi
done

# Everything below runs from the example folder with relative paths; together
# with -ffile-prefix-map this keeps absolute paths out of the ELF files.
cd "$HERE"
HEADER_DIR=../../device/arduino/ThingerSlot/src
if [ ! -f "$HEADER_DIR/ThingerSlot.h" ]; then
    echo "build.sh: $HEADER_DIR/ThingerSlot.h is missing" >&2
    exit 1
fi

unset SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC

TMP=$(mktemp -d "${TMPDIR:-/tmp}/c-firmware.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# run a command quietly; show its output only if it fails
quiet() {
    if ! "$@" >"$TMP/log" 2>&1; then
        cat "$TMP/log" >&2
        echo "build.sh: failed: $*" >&2
        exit 1
    fi
    if grep -qi "warning" "$TMP/log"; then
        cat "$TMP/log" >&2
    fi
}

# No -g: DWARF line tables would tie the committed prebuilt/ ELFs (and, through the ELF SHA-256
# in the app descriptor, the ESP32-C3 images) to the line numbers of ThingerSlot.h.
COMMON_CFLAGS="-std=gnu11 -Os -ffreestanding -ffunction-sections -fdata-sections -fno-common
  -fno-asynchronous-unwind-tables -fno-ident -Wall -Wextra -Werror=date-time
  -I $HEADER_DIR"
PREFIX_MAP="-ffile-prefix-map=$HERE=."
# gcc hands -fdebug-prefix-map (not -ffile-prefix-map) on to the assembler for .S files
DEBUG_PREFIX_MAP="-fdebug-prefix-map=$HERE=."
COMMON_LDFLAGS="-Wl,--gc-sections -Wl,--build-id=none -Wl,--no-warn-rwx-segments"

# ---- ESP32-C3 (RISC-V rv32imc, picolibc) ----
RV_FLAGS="-march=rv32imc -mabi=ilp32 --specs=picolibc.specs"

# compile SRC... into ELF with LINKERSCRIPT
rv_link() {
    elf=$1 ld=$2
    shift 2
    # shellcheck disable=SC2086
    quiet "$CC_RV" $RV_FLAGS $COMMON_CFLAGS "$PREFIX_MAP" "$DEBUG_PREFIX_MAP" -nostartfiles $COMMON_LDFLAGS -T "$ld" -o "$elf" "$@"
}

rm -rf "$OUT/esp8266-demo-v1"
rm -f "$OUT"/esp32c3-demo.elf "$OUT"/esp32c3-demo.bin "$OUT"/esp32c3-demo-merged.bin \
      "$OUT"/esp32c3-bootloader.elf "$OUT"/esp32c3-bootloader.bin "$OUT"/esp32c3-partition-table.bin \
      "$OUT"/esp8266-demo.elf "$OUT"/esp8266-demo.bin "$OUT"/SHA256SUMS \
      "$OUT"/esp32c3-legacy-2025.elf "$OUT"/esp32c3-legacy-2025.bin \
      "$OUT"/esp8266-legacy-2024.elf "$OUT"/esp8266-legacy-2024.bin

echo "== ESP32-C3 application"
rv_link "$OUT/esp32c3-demo.elf" esp32c3/esp32c3.ld \
    esp32c3/startup.S esp32c3/app_desc.c esp32c3/console.c common/demo_app.c
quiet "$ESPTOOL" --chip esp32c3 elf2image --flash-mode dio --flash-size 4MB \
    -o "$OUT/esp32c3-demo.bin" "$OUT/esp32c3-demo.elf"

echo "== ESP32-C3 application with the predecessor's placeholders (current generation)"
rv_link "$OUT/esp32c3-legacy-2025.elf" esp32c3/esp32c3.ld -DLEGACY_GEN=2025 \
    esp32c3/startup.S esp32c3/app_desc.c esp32c3/console.c common/legacy_app.c
quiet "$ESPTOOL" --chip esp32c3 elf2image --flash-mode dio --flash-size 4MB \
    -o "$OUT/esp32c3-legacy-2025.bin" "$OUT/esp32c3-legacy-2025.elf"

echo "== ESP32-C3 stand-in bootloader"
rv_link "$OUT/esp32c3-bootloader.elf" esp32c3/bootloader/bootloader.ld \
    esp32c3/bootloader/start.S esp32c3/bootloader/bootloader.c
quiet "$ESPTOOL" --chip esp32c3 elf2image --flash-mode dio --flash-size 4MB \
    -o "$OUT/esp32c3-bootloader.bin" "$OUT/esp32c3-bootloader.elf"

echo "== ESP32-C3 partition table"
quiet "$PYTHON" partitions/gen_partition_table.py partitions/partitions.csv "$OUT/esp32c3-partition-table.bin"

echo "== ESP32-C3 merged flash image (bootloader 0x0, partition table 0x8000, factory app 0x10000)"
quiet "$ESPTOOL" --chip esp32c3 merge-bin -o "$OUT/esp32c3-demo-merged.bin" \
    0x0 "$OUT/esp32c3-bootloader.bin" \
    0x8000 "$OUT/esp32c3-partition-table.bin" \
    0x10000 "$OUT/esp32c3-demo.bin"

# ---- ESP8266 (Xtensa lx106, no libc) ----
echo "== ESP8266 application"
# shellcheck disable=SC2086
quiet "$CC_XT" -mlongcalls -mtext-section-literals -nostdlib -fno-tree-loop-distribute-patterns \
    -I esp8266/include $COMMON_CFLAGS "$PREFIX_MAP" "$DEBUG_PREFIX_MAP" $COMMON_LDFLAGS -T esp8266/esp8266.ld -o "$OUT/esp8266-demo.elf" \
    esp8266/startup.c esp8266/mini_libc.c esp8266/console.c common/demo_app.c -lgcc
quiet "$ESPTOOL" --chip esp8266 elf2image --version 2 \
    -o "$OUT/esp8266-demo.bin" "$OUT/esp8266-demo.elf"
echo "== ESP8266 application with the predecessor's placeholders (2024 generation)"
# shellcheck disable=SC2086
quiet "$CC_XT" -mlongcalls -mtext-section-literals -nostdlib -fno-tree-loop-distribute-patterns \
    -I esp8266/include $COMMON_CFLAGS "$PREFIX_MAP" "$DEBUG_PREFIX_MAP" $COMMON_LDFLAGS -T esp8266/esp8266.ld -DLEGACY_GEN=2024 -Wl,--defsym=NO_SLOT_RECORDS=1 \
    -o "$OUT/esp8266-legacy-2024.elf" esp8266/startup.c esp8266/mini_libc.c esp8266/console.c common/legacy_app.c -lgcc
quiet "$ESPTOOL" --chip esp8266 elf2image --version 2 \
    -o "$OUT/esp8266-legacy-2024.bin" "$OUT/esp8266-legacy-2024.elf"
mkdir -p "$OUT/esp8266-demo-v1"
quiet "$ESPTOOL" --chip esp8266 elf2image \
    -o "$OUT/esp8266-demo-v1/" "$OUT/esp8266-demo.elf"

# ---- sanity checks: esptool must call every image valid ----
check_valid() {
    quiet "$ESPTOOL" image-info "$1"
    if grep -q "invalid" "$TMP/log" || ! grep -q "Checksum: .*(valid)" "$TMP/log"; then
        cat "$TMP/log" >&2
        echo "build.sh: esptool image-info does not call $1 valid" >&2
        exit 1
    fi
}
for img in esp32c3-demo.bin esp32c3-bootloader.bin esp8266-demo.bin esp8266-demo-v1/0x00000.bin \
    esp32c3-legacy-2025.bin esp8266-legacy-2024.bin; do
    check_valid "$OUT/$img"
done

# ---- every output must hold every slot record: 8 slots (6 standard + fw.version + greeting) ----
# (the ESP8266 v1 output splits them: 7 in the RAM image, greeting in the irom0 file)
quiet "$PYTHON" - "$OUT" <<'PY'
import sys
out = sys.argv[1]
magic = b"TPSLOT\xa5\x5a"
expect = {
    "esp32c3-demo.elf": 8, "esp32c3-demo.bin": 8, "esp32c3-demo-merged.bin": 8,
    "esp8266-demo.elf": 8, "esp8266-demo.bin": 8,
    "esp8266-demo-v1/0x00000.bin": 7, "esp8266-demo-v1/0x01010.bin": 1,
    "esp32c3-bootloader.elf": 0, "esp32c3-bootloader.bin": 0, "esp32c3-partition-table.bin": 0,
    "esp32c3-legacy-2025.elf": 0, "esp32c3-legacy-2025.bin": 0,
    "esp8266-legacy-2024.elf": 0, "esp8266-legacy-2024.bin": 0,
}
bad = []
for name, n in expect.items():
    data = open(f"{out}/{name}", "rb").read()
    found = data.count(magic)
    if found != n:
        bad.append(f"{name}: {found} slot records, expected {n}")
    if n >= 7 and data.count(b"iot.thinger.io") != 1:  # files holding the thinger_host record
        bad.append(f"{name}: the thinger_host default occurs {data.count(b'iot.thinger.io')} times, expected once")
if bad:
    sys.exit("slot check failed:\n  " + "\n  ".join(bad))
PY

# ---- checksums ----
(
    cd "$OUT"
    find esp32c3-* esp8266-* -type f | LC_ALL=C sort | xargs sha256sum >SHA256SUMS
)
echo "== outputs ($OUT)"
(cd "$OUT" && find esp32c3-* esp8266-* -type f | LC_ALL=C sort | xargs ls -l | awk '{printf "%10s  %s\n", $5, $9}')
echo "== sha256"
cat "$OUT/SHA256SUMS"
