#!/bin/sh
# rustc wrapper (build.rustc-wrapper in config.toml): cargo runs `rustc-remap.sh <rustc> <args>`.
# It makes the firmware independent of where it is built:
#
# 1. Absolute paths (panic locations, debug info) are mapped to fixed names:
#      <repository root> (this example, device/rust, an in-repo target dir) -> /thinger-patch
#      $CARGO_TARGET_DIR (when absolute and outside the repository)         -> /target
#      $CARGO_HOME (crates.io sources)                                       -> /cargo
#    (The Rust standard library is prebuilt with /rustc/<commit> paths already.)
#
# 2. For the packages of this repository (this example and ../../device/rust), cargo's
#    `-C metadata=<hash>` is replaced by one derived from name, version and the package's path
#    relative to the repository. Cargo hashes the *absolute* path of a path dependency that lies
#    outside the workspace root (rust-lang/cargo#13586, #7645), and that hash feeds the symbol
#    names of thinger-slot and of this firmware, which changes code layout; --remap-path-prefix
#    cannot reach it. File names (`-C extra-filename`) and cargo's own fingerprints are left alone.
set -eu
rustc=$1
shift
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../../.." && pwd -P)
cargo_home=${CARGO_HOME:-${HOME:-/nonexistent}/.cargo}

case ${CARGO_MANIFEST_DIR:-} in
  "$repo"/*)
    metadata="thinger-patch:${CARGO_MANIFEST_DIR#"$repo"/}:${CARGO_PKG_NAME:-}@${CARGO_PKG_VERSION:-}"
    prev=
    for arg do
      shift
      case $prev:$arg in
        -C:metadata=*) arg="metadata=$metadata" ;;
        *:-Cmetadata=*) arg="-Cmetadata=$metadata" ;;
      esac
      set -- "$@" "$arg"
      prev=$arg
    done
    ;;
esac

# rustc applies the last matching prefix, so the most specific mapping ($CARGO_HOME, which CI
# may keep inside the checkout) goes last.
set -- "$@" "--remap-path-prefix=$repo=/thinger-patch"
case ${CARGO_TARGET_DIR:-} in
  "$repo"/*) ;;
  /*) set -- "$@" "--remap-path-prefix=$CARGO_TARGET_DIR=/target" ;;
esac
case $cargo_home in
  /*) set -- "$@" "--remap-path-prefix=$cargo_home=/cargo" ;;
esac
exec "$rustc" "$@"
