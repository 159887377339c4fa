#!/usr/bin/env bash
# Installs everything the test suite needs. Idempotent: a second run only checks and is quick.
#
#   1. Debian packages: cross compilers used by the firmware build hooks (scripts/ci.d/).
#   2. A Python venv at <repo>/.venv with the pinned tools from scripts/requirements-test.txt
#      (esptool, scons). Reinstalled only when that file (or the Python version) changed.
#   3. Rust: the rustfmt/clippy components and the riscv32imc-unknown-none-elf and
#      wasm32-unknown-unknown targets.
#
# Environment:
#   PYTHON   interpreter used to create the venv (default: python3)
#
# Called by scripts/test.sh; can be run on its own.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="$REPO/scripts/requirements-test.txt"
VENV="$REPO/.venv"
STAMP="$VENV/.thinger-patch-requirements.stamp"
PYTHON="${PYTHON:-python3}"

APT_PACKAGES=(
    gcc-xtensa-lx106
    binutils-xtensa-lx106
    gcc-riscv64-unknown-elf
    picolibc-riscv64-unknown-elf
)
RUST_TARGETS=(
    riscv32imc-unknown-none-elf
    wasm32-unknown-unknown
)
RUST_COMPONENTS=(
    rustfmt
    clippy
)

log() { printf '[setup] %s\n' "$*"; }
die() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}

# Serialise concurrent runs (several engineers/tests may call this in the same checkout).
if command -v flock >/dev/null 2>&1; then
    lock_id="$(printf '%s' "$REPO" | sha256sum | cut -c1-16)"
    exec 9>"${TMPDIR:-/tmp}/thinger-patch-setup-$lock_id.lock"
    flock 9
fi

# Rust may be installed by rustup without the current shell having sourced its env.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Python's venv module needs ensurepip, which Debian ships separately (python3-venv).
need_venv_pkg=0
if [[ ! -x "$VENV/bin/python" ]] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need_venv_pkg=1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((need_venv_pkg)); then
    py_minor="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    missing+=("python3-venv" "python${py_minor}-venv")
fi

if ((${#missing[@]} == 0)); then
    log "apt: ok, already installed: ${APT_PACKAGES[*]}"
else
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: ${missing[*]}"
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing; install manually: ${missing[*]}"
        if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
    fi
    APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    log "apt: missing ${missing[*]}"
    log "apt: running apt-get update"
    "${APT[@]}" update -q
    log "apt: installing ${missing[*]}"
    "${APT[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. Python venv with pinned tools
# ---------------------------------------------------------------------------------------------
[[ -f "$REQUIREMENTS" ]] || die "missing $REQUIREMENTS"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "$PYTHON is older than 3.10 (esptool 5 needs >= 3.10)"

py_version="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
want_stamp="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) python-$py_version"

venv_healthy() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}

if [[ -d "$VENV" ]] && ! venv_healthy; then
    log "venv: $VENV is broken (moved checkout or removed interpreter); recreating"
    rm -rf "$VENV"
fi
if [[ ! -d "$VENV" ]]; then
    log "venv: creating $VENV with $PYTHON ($py_version)"
    "$PYTHON" -m venv "$VENV"
fi

have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
esptool_pin="$(sed -n 's/^esptool==\([^ ;#]*\).*/\1/p' "$REQUIREMENTS")"
esptool_ok() {
    local v
    v="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("esptool"))' 2>/dev/null)" &&
        [[ "$v" == "$esptool_pin" ]] && [[ -x "$VENV/bin/esptool" ]]
}
if [[ "$have_stamp" == "$want_stamp" ]] && esptool_ok; then
    log "venv: ok, pinned packages already installed (esptool $esptool_pin)"
else
    log "venv: installing pinned packages from scripts/requirements-test.txt"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    "$VENV/bin/python" -m pip install --quiet --progress-bar off -r "$REQUIREMENTS"
    esptool_ok || die "esptool $esptool_pin is not importable from $VENV after installation"
    printf '%s\n' "$want_stamp" >"$STAMP"
    log "venv: installed esptool $esptool_pin"
fi

# ---------------------------------------------------------------------------------------------
# 3. Rust components and targets
# ---------------------------------------------------------------------------------------------
command -v rustup >/dev/null 2>&1 || die "rustup not found (install Rust with rustup first)"

installed_components="$(rustup component list --installed 2>/dev/null || true)"
for comp in "${RUST_COMPONENTS[@]}"; do
    if grep -q "^$comp" <<<"$installed_components"; then
        log "rust: ok, component $comp present"
    else
        log "rust: adding component $comp"
        rustup component add "$comp"
    fi
done

installed_targets="$(rustup target list --installed)"
for target in "${RUST_TARGETS[@]}"; do
    if grep -qx "$target" <<<"$installed_targets"; then
        log "rust: ok, target $target present"
    else
        log "rust: adding target $target"
        rustup target add "$target"
    fi
done

log "done"
