#!/usr/bin/env bash
# The project's full test run (what CI runs through .ci/run):
#
#   setup (scripts/setup-test-env.sh) -> cargo fmt --check -> clippy -D warnings
#   -> crate dependency rules -> wasm32 library build -> hooks scripts/ci.d/*.sh -> cargo test --workspace
#   -> the browser page (scripts/web-page-tests.sh: web/build.sh, then its tests in Chromium)
#
# Stops at the first failing step. Extra arguments are passed to `cargo test`, e.g.
#   ./scripts/test.sh -- --nocapture
#   ./scripts/test.sh --test suite common_selftest::
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

if [[ -t 1 ]]; then
    BOLD=$'\033[1m' RED=$'\033[1;31m' GREEN=$'\033[1;32m' RESET=$'\033[0m'
else
    BOLD="" RED="" GREEN="" RESET=""
fi

RUN_START=$SECONDS
STEP_START=$SECONDS
CURRENT_STEP=""

section() {
    CURRENT_STEP="$*"
    STEP_START=$SECONDS
    printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"
}
# Free disk space after each step: a full run needs several gigabytes (see the README), and a
# machine running out of it fails in whichever step writes next.
disk_free() {
    df -Pk "$REPO" 2>/dev/null | awk 'NR == 2 { printf "%.1f GiB free", $4 / 1048576 }'
}
step_done() {
    printf -- '--- ok: %s (%ds; %s)\n' "$CURRENT_STEP" "$((SECONDS - STEP_START))" "$(disk_free)"
}
on_exit() {
    local rc=$?
    if ((rc != 0)); then
        printf '\n%s==> FAILED: %s (exit %d, after %ds; %s)%s\n' "$RED" \
            "${CURRENT_STEP:-startup}" "$rc" "$((SECONDS - RUN_START))" "$(disk_free)" "$RESET" >&2
    fi
}
trap on_exit EXIT

# Under CI every build is cold: incremental state would only take disk space.
if [[ "${CI:-}" == "true" ]]; then
    export CARGO_INCREMENTAL=0
fi

section "setup: scripts/setup-test-env.sh"
bash "$REPO/scripts/setup-test-env.sh"
export THINGER_PATCH_ESPTOOL="$REPO/.venv/bin/esptool"
export PATH="$REPO/.venv/bin:$PATH"
export THINGER_PATCH_REPO="$REPO"
printf 'repo:      %s (%s)\n' "$REPO" "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
printf 'CI:        %s\n' "${CI:-<unset>}"
printf 'fixtures:  %s\n' "$(if [[ -d "$REPO/../shared/fixtures/third-party" ]]; then cd "$REPO/../shared/fixtures/third-party" && pwd; else echo 'absent (fixture tests skip; they fail under CI=true)'; fi)"
printf 'toolchain: %s; %s\n' "$(rustc --version)" "$(cargo --version)"
printf 'esptool:   %s (%s)\n' "$THINGER_PATCH_ESPTOOL" "$("$THINGER_PATCH_ESPTOOL" version 2>/dev/null | tail -n 1)"
step_done

section "cargo fmt --all -- --check"
cargo fmt --all -- --check
step_done

section "cargo clippy --workspace --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step_done

section "scripts/check-deps.sh (the crate dependency rules of docs/architecture.md)"
bash "$REPO/scripts/check-deps.sh"
step_done

section "cargo build -p thinger-patch-core --target wasm32-unknown-unknown --locked"
cargo build -p thinger-patch-core --target wasm32-unknown-unknown --locked
step_done

section "cargo check --features keyring --locked (the optional keyring value source)"
cargo check -p thinger-patch --features keyring --locked
step_done

# Hooks: executable scripts/ci.d/*.sh in byte order of their names (see scripts/ci.d/README.md).
hooks=()
if [[ -d "$REPO/scripts/ci.d" ]]; then
    while IFS= read -r -d '' hook; do
        hooks+=("$hook")
    done < <(find "$REPO/scripts/ci.d" -maxdepth 1 -name '*.sh' -print0 | LC_ALL=C sort -z)
fi
for hook in "${hooks[@]}"; do
    name="scripts/ci.d/$(basename "$hook")"
    if [[ ! -x "$hook" ]]; then
        printf '\n==> hook %s: skipped, not executable (chmod +x to enable)\n' "$name"
        continue
    fi
    section "hook: $name"
    (cd "$REPO" && "$hook")
    step_done
done
((${#hooks[@]} > 0)) || printf '\n==> hooks: none in scripts/ci.d\n'

section "cargo test --workspace --locked${*:+ $*}"
test_log="$(mktemp "${TMPDIR:-/tmp}/thinger-patch-test.XXXXXX")"
# Tests that cannot run here append why to this file (thinger_patch_test_kit::skip).
skip_log="$(mktemp "${TMPDIR:-/tmp}/thinger-patch-skips.XXXXXX")"
export THINGER_PATCH_SKIP_LOG="$skip_log"
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$test_log"
test_rc=${PIPESTATUS[0]}
set -e

# Summary: one line per test binary, then totals.
printf '\n%s==> cargo test summary%s\n' "$BOLD" "$RESET"
awk '
    /^ *Running / {
        if ($2 == "unittests") {
            # "Running unittests src/lib.rs (target/debug/deps/thinger_patch-0123abcd)"
            crate = $NF; sub(/^\(/, "", crate); sub(/\)$/, "", crate)
            sub(/.*\//, "", crate); sub(/-[0-9a-f]+$/, "", crate)
            name = "unittests " crate " " $3
        } else {
            name = $2
        }
        next
    }
    /^ *Doc-tests / { name = "doc-tests " $2; next }
    /^test .* \.\.\. FAILED$/ { failures[++nfail] = name ": " $2 }
    /^test result: / {
        line = $0; sub(/^test result: /, "", line); sub(/; finished in.*/, "", line)
        printf "  %-48s %s\n", name, line
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) passed += $i
            if ($(i + 1) ~ /^failed/) failed += $i
            if ($(i + 1) ~ /^ignored/) ignored += $i
        }
        bins++
    }
    END {
        printf "  total: %d passed, %d failed, %d ignored in %d test binaries\n", passed, failed, ignored, bins
        for (i = 1; i <= nfail; i++) printf "  FAILED %s\n", failures[i]
    }
' "$test_log"
rm -f "$test_log"
if [[ -s "$skip_log" ]]; then
    printf '  skipped (%d; each passed without doing that part):\n' "$(wc -l <"$skip_log")"
    LC_ALL=C sort "$skip_log" | sed 's/^/    /'
else
    printf '  skipped: none\n'
fi
rm -f "$skip_log"

if ((test_rc != 0)); then
    exit "$test_rc"
fi
step_done

# After cargo test: it reuses the CLI and the test kit that cargo test built.
section "browser page: scripts/web-page-tests.sh (web/build.sh, Chromium tests)"
bash "$REPO/scripts/web-page-tests.sh"
step_done
printf '\n%s==> all checks passed (%ds)%s\n' "$GREEN" "$((SECONDS - RUN_START))" "$RESET"
