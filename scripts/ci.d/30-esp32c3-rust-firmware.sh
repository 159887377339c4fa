#!/usr/bin/env bash
# Builds the esp-hal ESP32-C3 example firmware (examples/esp32c3-rust, a Rust firmware using the
# thinger-slot crate) once, in release, with its committed Cargo.lock, into target/esp32c3-rust/,
# so the repository's tests find the ELF at
#   target/esp32c3-rust/riscv32imc-unknown-none-elf/release/thinger-esp32c3
# then checks that the ELF holds the firmware's 10 slot records in flashed data, with no folded
# copy of a default and no absolute build path. Prints the ELF's path as the last line of stdout.
# A no-op when nothing changed (cargo's fingerprints), about a minute from scratch.
set -euo pipefail

repo=${THINGER_PATCH_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
example="$repo/examples/esp32c3-rust"
target="riscv32imc-unknown-none-elf"
bin="thinger-esp32c3"
slots=10
export CARGO_TARGET_DIR="$repo/target/esp32c3-rust"

if command -v rustup >/dev/null 2>&1 \
    && ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "error: Rust target $target is not installed (rustup target add $target)" >&2
  exit 1
fi

# Build from inside the example so its .cargo/config.toml (target, linker script, path
# remapping) applies; it is not a member of the thinger-patch workspace.
echo "building $example (release, --locked) into $CARGO_TARGET_DIR"
(cd "$example" && cargo build --release --locked)

elf="$CARGO_TARGET_DIR/$target/release/$bin"
test -f "$elf" || { echo "error: $elf was not produced" >&2; exit 1; }

echo "checking the slot records in $elf"
python3 "$example/tools/check-elf.py" "$elf" "$slots"

echo "$elf"
