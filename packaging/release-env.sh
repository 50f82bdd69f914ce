# shellcheck shell=bash
# The environment of every release build (sourced, not run):
#
#   source packaging/release-env.sh && jit_release_build --workspace
#
# Every script that builds release binaries that are tested or shipped (tests/run.sh's
# "release build" step, tests/build-module.sh, packaging/build.sh, tests/lib/sys.sh, bench/)
# uses it, so the tests test what ships and no two steps compile the same crates with
# different flags (a change of RUSTFLAGS recompiles every crate).
#
# It sets:
#   SOURCE_DATE_EPOCH   kept if already set (a release pins it), else the commit time of HEAD
#                       of this checkout (git); neither: an error. The packages' timestamps
#                       (.deb ar/tar members, .rpm build time and file mtimes) come from it.
#   RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS
#                       --remap-path-prefix=<real CARGO_HOME>=/cargo: the panic locations of
#                       registry crates name /cargo/registry/src/... instead of the builder's
#                       home directory. Replaces any RUSTFLAGS of the caller's environment (a
#                       release must not depend on it). Identical in every checkout on one
#                       machine, so trees at other paths (the upgrade test's N+1 tree) reuse
#                       the compiled dependencies. The checkout's own path needs no remapping:
#                       cargo passes workspace sources by relative path and the release profile
#                       has no debug info (packaging/repro.sh checks that no build path is in
#                       the binaries). /rustc/<hash>/ (the standard library) is rustc's own
#                       remapping.
# and defines jit_release_build ARGS...: `cargo auditable build --release --locked ARGS...`
# (cargo-auditable 0.7.7 embeds the dependency list, section .dep-v0, in every binary and
# cdylib; tests/install-deps.sh installs it).
#
# Only the release commands get this environment: cargo clippy/test/bench and the debug
# builds keep theirs (their artifacts live apart, under target/debug or their own profile).
#
# The inputs of a release are therefore: the commit (Cargo.lock pins every crate), the Rust
# toolchain (`rustc -vV`; the crates declare rust-version, the builds use the toolchain on
# PATH), cargo-auditable's version, SOURCE_DATE_EPOCH, and for the packages the versions of
# cargo-deb, cargo-generate-rpm, dpkg-deb and xz (see docs/packaging.md).

JIT_CARGO_AUDITABLE_VERSION=0.7.7

jit_release_env_error() {
  echo "release-env.sh: ERROR: $*" >&2
  return 1
}

jit_release_env() {
  local root home real
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P) || return 1
  case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

  # --- SOURCE_DATE_EPOCH ---
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] ||
      { jit_release_env_error "SOURCE_DATE_EPOCH='$SOURCE_DATE_EPOCH' is not a number of seconds since 1970"; return 1; }
  else
    local top
    top=$(git -C "$root" rev-parse --show-toplevel 2>/dev/null) || top=
    if [ -z "$top" ] || [ "$(cd "$top" && pwd -P)" != "$root" ]; then
      jit_release_env_error "$root is not a git checkout and SOURCE_DATE_EPOCH is not set: set it to the source's commit time (git log -1 --format=%ct) so the packages' timestamps are reproducible"
      return 1
    fi
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct HEAD 2>/dev/null) || SOURCE_DATE_EPOCH=
    if [ -z "$SOURCE_DATE_EPOCH" ]; then
      jit_release_env_error "cannot read the commit time of HEAD in $root (git log -1 --format=%ct): set SOURCE_DATE_EPOCH"
      return 1
    fi
  fi
  export SOURCE_DATE_EPOCH

  # --- RUSTFLAGS ---
  home=${CARGO_HOME:-$HOME/.cargo}
  real=$(cd "$home" 2>/dev/null && pwd -P) ||
    { jit_release_env_error "CARGO_HOME $home does not exist (install Rust with rustup, or set CARGO_HOME)"; return 1; }
  local -a flags=("--remap-path-prefix=$real=/cargo")
  # Cargo names sources by CARGO_HOME as given: a symlinked CARGO_HOME is remapped too.
  local given
  given=$(cd "$home" && pwd -L)
  [ "$given" != "$real" ] && flags+=("--remap-path-prefix=$given=/cargo")
  local new
  new=$(IFS=$'\x1f'; echo "${flags[*]}")
  if { [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ] && [ "$CARGO_ENCODED_RUSTFLAGS" != "$new" ]; } ||
     { [ -n "${RUSTFLAGS:-}" ] && [ "$RUSTFLAGS" != "${flags[*]}" ]; }; then
    echo "release-env.sh: note: replacing RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS of the environment for the release build" >&2
  fi
  export CARGO_ENCODED_RUSTFLAGS="$new"
  export RUSTFLAGS="${flags[*]}"
  unset CARGO_BUILD_RUSTFLAGS
  JIT_RELEASE_ROOT=$root
}

# The one release build command: cargo auditable build --release --locked ARGS...
jit_release_build() {
  # `cargo auditable --version` prints cargo's version; cargo's install list names the tool's.
  if ! command -v cargo-auditable >/dev/null; then
    jit_release_env_error "cargo-auditable is missing: run tests/install-deps.sh (or cargo install --locked cargo-auditable@$JIT_CARGO_AUDITABLE_VERSION)"
    return 1
  fi
  if ! cargo install --list 2>/dev/null | grep -qxF "cargo-auditable v$JIT_CARGO_AUDITABLE_VERSION:"; then
    jit_release_env_error "cargo-auditable is not version $JIT_CARGO_AUDITABLE_VERSION (cargo install --list): cargo install --locked --force cargo-auditable@$JIT_CARGO_AUDITABLE_VERSION"
    return 1
  fi
  (cd "$JIT_RELEASE_ROOT" && cargo auditable build --release --locked "$@")
}

# shellcheck disable=SC2317  # exit: when run instead of sourced
jit_release_env || { return 1 2>/dev/null || exit 1; }
