#!/usr/bin/env bash
# Checks that the binaries a release ships build here, and runs the static Linux one:
#
#   x86_64-unknown-linux-musl    static; run: --version, a real patch checked by esptool,
#                                `file`/`ldd` say static
#   aarch64-unknown-linux-musl   static (Raspberry Pi 3/4/5 with a 64-bit OS); run under
#                                qemu-user: --version and the same patch
#   x86_64-pc-windows-gnu        Debian's mingw-w64; `file` says PE32+ (not run: no Windows here)
#
# and that C dependencies cross-compile for each (crates/ledger: SQLite through rusqlite's
# bundled C source), since the ledger joins the binary soon.
#
# Slow (a full optimised build per target on 2 cores): scripts/test.sh runs it for
# x86_64-unknown-linux-musl only (hook scripts/ci.d/50-static-linux-binary.sh). Installs what it needs, idempotently (Debian packages,
# including the arm64 architecture for musl-dev:arm64; Rust targets). Prints the time and size
# of each build. Outputs: target/<triple>/dist/ (the `dist` profile of Cargo.toml).
#
#   ./scripts/check-release-builds.sh                  # every target
#   ./scripts/check-release-builds.sh x86_64-unknown-linux-musl
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

ALL_TARGETS=(
    x86_64-unknown-linux-musl
    aarch64-unknown-linux-musl
    x86_64-pc-windows-gnu
)
TARGETS=("$@")
((${#TARGETS[@]} > 0)) || TARGETS=("${ALL_TARGETS[@]}")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
PROFILE=dist
ESPTOOL="${THINGER_PATCH_ESPTOOL:-$REPO/.venv/bin/esptool}"
APP=examples/c-firmware/prebuilt/esp32c3-demo.bin
# `path+file:///repo#thinger-patch@0.1.0` (or `...#0.1.0` when the folder has the package's name).
VERSION="$(cargo pkgid -p thinger-patch)"
VERSION="${VERSION##*[#@]}"

log() { printf '[release-builds] %s\n' "$*"; }
die() {
    printf '[release-builds] ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Setup: Debian packages and Rust targets (quick when present)
# ---------------------------------------------------------------------------------------------
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_packages=(file)
need_arm64=0
for t in "${TARGETS[@]}"; do
    case "$t" in
        # musl's headers for C code (musl-gcc); Rust brings its own musl libc and crt objects.
        x86_64-unknown-linux-musl) apt_packages+=(musl-tools) ;;
        # The cross gcc links; musl-dev:arm64 gives aarch64-linux-musl-gcc (gcc + musl's
        # arm64 headers) for C code; qemu-user runs the result.
        aarch64-unknown-linux-musl)
            apt_packages+=(gcc-aarch64-linux-gnu musl-dev:arm64 qemu-user-static)
            need_arm64=1
            ;;
        x86_64-pc-windows-gnu) apt_packages+=(gcc-mingw-w64-x86-64) ;;
        *) die "unknown target $t (known: ${ALL_TARGETS[*]})" ;;
    esac
done

missing=()
for p in "${apt_packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    log "apt: ok, already installed: ${apt_packages[*]}"
else
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing; install: ${missing[*]}"
        if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
    fi
    if ((need_arm64)) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "apt: adding the arm64 architecture (for musl-dev:arm64)"
        "${SUDO[@]}" dpkg --add-architecture arm64
    fi
    APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    log "apt: installing ${missing[*]}"
    "${APT[@]}" update -q
    "${APT[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

installed_targets="$(rustup target list --installed)"
for t in "${TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
        log "rust: ok, target $t present"
    else
        log "rust: adding target $t"
        rustup target add "$t"
    fi
done

# Cross linkers and C compilers (cc-rs reads CC_<triple>). Rust's musl targets link their own
# self-contained musl; the C code is compiled against Debian's musl headers.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-musl-gcc
export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
export CC_x86_64_unknown_linux_musl=x86_64-linux-musl-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc

# ---------------------------------------------------------------------------------------------
# Builds
# ---------------------------------------------------------------------------------------------
summary=()

timed_build() {
    local what="$1"
    shift
    local start=$SECONDS
    log "build: $what: cargo $*"
    cargo "$@"
    local s=$((SECONDS - start))
    summary+=("$(printf '%-28s %-26s %4d s' "$what" "${TARGETS_NOW:-}" "$s")")
    log "build: $what: ${s} s"
}

# A real patch by the built binary (run through `runner`, e.g. qemu), checked by esptool.
check_patch() {
    local t="$1" bin="$2"
    shift 2
    local out
    out="$(mktemp -d "${TMPDIR:-/tmp}/thinger-patch-release.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$out'" RETURN
    RELEASE_CREDS=release-check-credential "$@" "$bin" patch "$APP" \
        --set wifi_ssid=ReleaseNet --set thinger_user=alice --set thinger_device=release_device \
        --set-env thinger_credentials=RELEASE_CREDS -o "$out/demo.bin" >"$out/report.txt"
    if grep -q release-check-credential "$out/report.txt"; then
        die "$t: the secret value appeared in the report"
    fi
    [[ -x "$ESPTOOL" ]] || die "no esptool at $ESPTOOL (run scripts/setup-test-env.sh)"
    local info
    info="$(NO_COLOR=1 "$ESPTOOL" --chip esp32c3 image-info "$out/demo.bin" 2>&1)" ||
        die "$t: esptool image-info failed on the patched image: $info"
    grep -Eq 'Checksum: .*\(valid\)' <<<"$info" || die "$t: checksum not valid: $info"
    grep -Eq 'Validation hash: .*\(valid\)' <<<"$info" || die "$t: SHA-256 not valid: $info"
    cmp -s "$APP" "$out/demo.bin" && die "$t: the patched image equals the input"
    log "run: $t: patched $APP, esptool: checksum and SHA-256 valid"
}

for t in "${TARGETS[@]}"; do
    TARGETS_NOW="$t"
    timed_build "thinger-patch" build --locked --profile "$PROFILE" --target "$t" \
        -p thinger-patch --bin thinger-patch
    # The ledger's SQLite (C) must cross-compile too: a library build is enough to prove it.
    # SQLite's C source (rusqlite, bundled) must cross-compile too: checked with the binary when
    # the binary links the ledger, on its own otherwise.
    if ! cargo tree --locked -e normal -p thinger-patch --target "$t" --prefix none 2>/dev/null |
        grep -q '^thinger-patch-ledger '; then
        timed_build "thinger-patch-ledger (lib)" build --locked --profile "$PROFILE" --target "$t" \
            -p thinger-patch-ledger --lib
    fi

    exe=thinger-patch
    [[ "$t" == *windows* ]] && exe=thinger-patch.exe
    bin="$CARGO_TARGET_DIR/$t/$PROFILE/$exe"
    [[ -f "$bin" ]] || die "$t: $bin was not built"
    size=$(stat -c %s "$bin")
    kind="$(file -b "$bin")"
    log "file: $t: $kind"
    summary+=("$(printf '%-28s %-26s %10d bytes' "  binary size" "$t" "$size")")

    case "$t" in
        x86_64-unknown-linux-musl)
            grep -q 'static' <<<"$kind" || die "$t: not statically linked: $kind"
            ldd_out="$(ldd "$bin" 2>&1 || true)"
            grep -Eq 'statically linked|not a dynamic executable' <<<"$ldd_out" ||
                die "$t: ldd shows dynamic dependencies: $ldd_out"
            log "ldd: $t: $ldd_out"
            version="$("$bin" --version)"
            [[ "$version" == "thinger-patch $VERSION" ]] || die "$t: --version says: $version"
            log "run: $t: $version"
            check_patch "$t" "$bin"
            ;;
        aarch64-unknown-linux-musl)
            grep -q 'ARM aarch64' <<<"$kind" && grep -q 'static' <<<"$kind" ||
                die "$t: not a static aarch64 executable: $kind"
            version="$(qemu-aarch64-static "$bin" --version)"
            [[ "$version" == "thinger-patch $VERSION" ]] || die "$t: --version says: $version"
            log "run (qemu-aarch64-static): $t: $version"
            check_patch "$t" "$bin" qemu-aarch64-static
            ;;
        x86_64-pc-windows-gnu)
            grep -q 'PE32+ executable' <<<"$kind" && grep -q 'x86-64' <<<"$kind" ||
                die "$t: not a 64-bit Windows executable: $kind"
            log "$t: built, not run (no Windows here)"
            ;;
    esac
done

printf '\n[release-builds] summary (%s profile)\n' "$PROFILE"
printf '  %s\n' "${summary[@]}"
log "ok"
