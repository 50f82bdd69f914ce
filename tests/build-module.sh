#!/usr/bin/env bash
# Builds the shipped pam_jit.so on its own: `cargo build --workspace` (or several -p at once)
# unifies features, which would compile jit-common's `write` and `syslog` features into the
# module (see ARCHITECTURE.md). The output is removed first: for a cdylib cargo writes every
# feature variant to the same file name and judges freshness by its mtime, so a variant
# built by another invocation could otherwise pass for this one. Built like every release
# binary (packaging/release-env.sh: cargo auditable, path remapping, SOURCE_DATE_EPOCH).
#
#   tests/build-module.sh          release build into ${CARGO_TARGET_DIR:-target}/release
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packaging/release-env.sh
source packaging/release-env.sh
out=${CARGO_TARGET_DIR:-$PWD/target}/release
rm -f "$out/libpam_jit.so" "$out/deps/libpam_jit.so"
jit_release_build -p pam_jit "$@"
[ -f "$out/libpam_jit.so" ] || { echo "build-module: $out/libpam_jit.so was not built" >&2; exit 1; }
