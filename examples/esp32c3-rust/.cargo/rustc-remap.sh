#!/bin/sh
# rustc wrapper (see config.toml): cargo runs `rustc-remap.sh <rustc> <args...>`.
# Maps the absolute paths that would otherwise end up in the firmware (panic locations, debug
# info) to fixed names:
#   <repository root> (this example, device/rust, an in-repo target dir) -> /thinger-patch
#   $CARGO_TARGET_DIR (when set to an absolute path outside the repo)     -> /target
#   $CARGO_HOME (crates.io sources)                                        -> /cargo
# The Rust standard library is prebuilt with /rustc/<commit> paths already.
set -eu
rustc=$1
shift
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../../.." && pwd -P)
cargo_home=${CARGO_HOME:-${HOME:-/nonexistent}/.cargo}
# rustc applies the last matching flag, so the most specific mapping ($CARGO_HOME, which CI may
# keep inside the checkout) goes last.
set -- "$@" "--remap-path-prefix=$repo=/thinger-patch"
case ${CARGO_TARGET_DIR:-} in
  "$repo"/*) ;;
  /*) set -- "$@" "--remap-path-prefix=$CARGO_TARGET_DIR=/target" ;;
esac
case $cargo_home in
  /*) set -- "$@" "--remap-path-prefix=$cargo_home=/cargo" ;;
esac
exec "$rustc" "$@"
