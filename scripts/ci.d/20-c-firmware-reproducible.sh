#!/usr/bin/env bash
# Rebuilds examples/c-firmware (C demo firmware, ESP32-C3 + ESP8266) and cmp's it with its prebuilt/.
set -euo pipefail
mkdir -p target/ci/20-c-firmware-reproducible
TMPDIR="$PWD/target/ci/20-c-firmware-reproducible" ESPTOOL="${THINGER_PATCH_ESPTOOL:-esptool}" \
    examples/c-firmware/check-reproducible.sh
