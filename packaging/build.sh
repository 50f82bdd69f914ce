#!/usr/bin/env bash
# Builds every jit package, .deb and .rpm, into target/packages/ (or $JIT_PACKAGES_DIR):
#
#   jit-ca    the signing service (from ssh-ca/server)
#   jit       the engineers' client (from ssh-ca/client)
#   jit-host  pam_jit.so + jit-host (from pam_jit/host, with pam_jit/module's cdylib)
#
# Works from a clean checkout: installs cargo-deb / cargo-generate-rpm if missing, builds the
# workspace in release mode (a no-op when tests/run.sh already did), stages stripped binaries,
# man pages and shell completions (from each binary's hidden `generate-docs`, required), the
# hand-written pages of packaging/man/ (pam_jit(8), host.toml(5), policy.toml(5)) and examples
# under <target>/release/packaging/, then packages from those artifacts (no second build).
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: <repo>/target)
#   JIT_PACKAGES_DIR   output directory (default: <target>/packages)
#   JIT_DEB_VERSION    override the .deb version (default: Cargo version + "-1")
#   JIT_RPM_RELEASE    override the .rpm release (default: 1)
#   JIT_SKIP_BUILD=1   do not run cargo build (the release binaries must exist)
#   JIT_PACKAGES       the packages to build, space-separated (default: "jit-ca jit jit-host");
#                      e.g. JIT_PACKAGES=jit-host compiles only jit-host's binary and
#                      pam_jit.so and packages only jit-host (packaging/repro.sh)
#   SOURCE_DATE_EPOCH  the packages' timestamps (default: the commit time of HEAD; see
#                      packaging/release-env.sh, which every release build goes through)
set -euo pipefail

# --- arguments: --repo (packaging/repo.sh) -------------------------------------------------
#   packaging/build.sh [--repo DIR (--key-file FILE | --key FPR) [--gnupghome DIR]
#                      [--suite stable] [--base-url URL]]
# With --repo the packages then go into signed APT and dnf repositories in DIR (one call of
# packaging/repo.sh at the end; see there). A throwaway test key: packaging/lib/testkey.sh DIR.
REPO_OUT="" REPO_ARGS=() REPO_KEYED=0
build_usage() {
  echo "usage: packaging/build.sh [--repo DIR (--key-file FILE | --key FINGERPRINT) [--gnupghome DIR] [--suite stable] [--base-url URL]]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
  case $1 in
    --repo|--key|--key-file|--gnupghome|--suite|--base-url)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "build.sh: $1 needs a value" >&2; build_usage; }
      case $1 in
        --repo) REPO_OUT=$(realpath -m -- "$2") ;;
        --key) REPO_ARGS+=(--key "$2"); REPO_KEYED=1 ;;
        --key-file) [ -r "$2" ] || { echo "build.sh: --key-file $2 is not readable" >&2; exit 2; }
                    REPO_ARGS+=(--key-file "$(realpath -- "$2")"); REPO_KEYED=1 ;;
        --gnupghome) REPO_ARGS+=(--gnupghome "$(realpath -m -- "$2")") ;;
        *) REPO_ARGS+=("$1" "$2") ;;
      esac
      shift 2 ;;
    -h|--help) build_usage ;;
    *) echo "build.sh: unknown argument $1" >&2; build_usage ;;
  esac
done
if [ -n "$REPO_OUT" ] && [ "$REPO_KEYED" = 0 ]; then
  echo "build.sh: --repo needs a signing key: --key FINGERPRINT (the release key, from your GnuPG" \
       "keyring or --gnupghome) or --key-file FILE (an exported secret key). For a test:" \
       "packaging/lib/testkey.sh /tmp/k && packaging/build.sh --repo DIR --key-file /tmp/k/key.asc" >&2
  exit 2
fi
if [ -z "$REPO_OUT" ] && ((${#REPO_ARGS[@]})); then
  echo "build.sh: ${REPO_ARGS[0]} only goes with --repo DIR" >&2; build_usage
fi
if [ -n "$REPO_OUT" ]; then # fail now, not after the build
  for tool in apt-ftparchive:apt-utils createrepo_c:createrepo-c rpmsign:rpm gpg:gnupg gpgv:gpgv; do
    command -v "${tool%%:*}" >/dev/null || { echo "build.sh: --repo needs ${tool%%:*} (apt-get install ${tool#*:})" >&2; exit 1; }
  done
fi

cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
# The files staged below get fixed modes whatever the caller's umask.
umask 022

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

log() { echo "build.sh: $*"; }
warn() { echo "build.sh: WARNING: $*" >&2; }
die() { echo "build.sh: ERROR: $*" >&2; exit 1; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
RELEASE=$TARGET_DIR/release
STAGE=$RELEASE/packaging
OUT=${JIT_PACKAGES_DIR:-$TARGET_DIR/packages}

# --- tools --------------------------------------------------------------------------------
for tool in strip gzip dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install binutils gzip dpkg-dev)"
done
cargo_tool() { # crate version subcommand
  if ! cargo "$3" --version >/dev/null 2>&1; then
    log "installing $1 $2 (cargo install --locked)"
    cargo install --locked --quiet "$1@$2"
  fi
}
cargo_tool cargo-deb "$CARGO_DEB_VERSION" deb
cargo_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION" generate-rpm

# --- release build ------------------------------------------------------------------------
# packaging/release-env.sh: SOURCE_DATE_EPOCH, the path remapping and `cargo auditable` (the
# dependency list in every binary), the same environment as tests/run.sh's release build, so
# this reuses that build instead of compiling again.
# shellcheck source=packaging/release-env.sh
source "$ROOT/packaging/release-env.sh"
JIT_PACKAGES=${JIT_PACKAGES:-jit-ca jit jit-host}
read -r -a packages <<< "$JIT_PACKAGES"
((${#packages[@]})) || die "JIT_PACKAGES is empty (give some of: jit-ca jit jit-host)"
for p in "${packages[@]}"; do
  case $p in jit-ca|jit|jit-host) ;; *) die "JIT_PACKAGES: unknown package '$p' (jit-ca, jit or jit-host)" ;; esac
done
want() { case " ${packages[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
log "packages: ${packages[*]} (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
# The programs are built with the workspace's feature resolution in both modes: all
# packages = `--workspace` (tests/run.sh's command), some = `--workspace --bin NAME...` (the
# same resolution, only those targets), so jit-host built alone is byte for byte the
# jit-host of the full build (packaging/repro.sh checks the alone build; cargo finds the
# full build's artifacts fresh). `-p jit-host` would resolve features for jit-host only and
# compile a different binary (cargo unifies features across the selected packages).
if [ "${JIT_SKIP_BUILD:-0}" != 1 ]; then
  if want jit-ca && want jit && want jit-host; then
    log "cargo auditable build --release --locked --workspace"
    jit_release_build --workspace
  else
    bins=()
    for p in "${packages[@]}"; do bins+=(--bin "$p"); done
    log "cargo auditable build --release --locked --workspace ${bins[*]}"
    jit_release_build --workspace "${bins[@]}"
  fi
fi
# The module is then built on its own: pam_jit.so must be built with jit-common's features
# only (no `write`, no `syslog`). Always (even with JIT_SKIP_BUILD=1, where another
# invocation may have left a feature-unified variant in place), relinked.
if want jit-host; then
  log "tests/build-module.sh (pam_jit.so on its own)"
  bash "$ROOT/tests/build-module.sh"
fi
bins=()
for p in "${packages[@]}"; do bins+=("$p"); done
want jit-host && bins+=(libpam_jit.so)
for f in "${bins[@]}"; do
  [ -f "$RELEASE/$f" ] || die "$RELEASE/$f is missing: run cargo build --workspace --release (then -p pam_jit)"
done

# --- stage: stripped binaries -------------------------------------------------------------
rm -rf "$STAGE"
mkdir -p "$STAGE/bin"
for f in "${packages[@]}"; do
  install -m 0755 "$RELEASE/$f" "$STAGE/bin/$f"
done
# Installed as pam_jit.so: pam_syslog takes its log prefix from the file name.
want jit-host && install -m 0644 "$RELEASE/libpam_jit.so" "$STAGE/bin/pam_jit.so"
# Like dh_strip: keep the dynamic symbol table (the pam_sm_* exports), drop the rest. Keeps
# the dependency list cargo auditable embeds (.dep-v0, an allocated section): scanners read
# it from the installed binaries (packaging/auditable-check.sh checks it is there).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE"/bin/*

# --- stage: man pages, completions, docs, examples ------------------------------------------
# Layout: deb/<pkg>/usr/... ; rpm/<pkg>/doc/usr/... (man pages, README, examples: %doc) and
# rpm/<pkg>/data/usr/... (completions). zsh directories differ: Debian vendor-completions,
# Fedora/RHEL site-functions. Every binary must offer the hidden `generate-docs --out DIR`.
stage_docs() { # package binary
  local pkg=$1 bin=$2 gen
  gen=$(mktemp -d)
  if ! "$STAGE/bin/$bin" generate-docs --out "$gen" >"$gen.log" 2>&1 || [ ! -d "$gen/man" ] \
     || [ ! -d "$gen/completions" ]; then
    sed 's/^/  | /' "$gen.log" >&2
    die "'$bin generate-docs --out DIR' failed or wrote no DIR/man and DIR/completions; the packages need them"
  fi
  local fmt zshdir docroot dataroot
  for fmt in deb rpm; do
    if [ "$fmt" = deb ]; then
      zshdir=usr/share/zsh/vendor-completions
      docroot=$STAGE/deb/$pkg dataroot=$STAGE/deb/$pkg
    else
      zshdir=usr/share/zsh/site-functions
      docroot=$STAGE/rpm/$pkg/doc dataroot=$STAGE/rpm/$pkg/data
    fi
    local doc=$docroot/usr/share/doc/$pkg
    mkdir -p "$doc/examples"
    # Each page goes to the section its extension names (jit-host's are in section 8).
    local page n=0 sec
    for page in "$gen"/man/*.[1-9]; do
      [ -e "$page" ] || continue
      sec=${page##*.}
      mkdir -p "$docroot/usr/share/man/man$sec"
      gzip -9nc "$page" > "$docroot/usr/share/man/man$sec/$(basename "$page").gz"
      n=$((n + 1))
    done
    ((n)) || die "$bin generate-docs wrote no man pages (DIR/man/*.[1-9])"
    local c name shells=""
    while IFS= read -r -d '' c; do
      name=$(basename "$c")
      case "$c" in
        *.bash|*/bash/*|*/bash)
          install -D -m 0644 "$c" "$dataroot/usr/share/bash-completion/completions/$bin"; shells+=" bash" ;;
        */_*|*.zsh|*/zsh/*|*/zsh)
          install -D -m 0644 "$c" "$dataroot/$zshdir/_$bin"; shells+=" zsh" ;;
        *.fish|*/fish/*|*/fish)
          install -D -m 0644 "$c" "$dataroot/usr/share/fish/vendor_completions.d/$bin.fish"; shells+=" fish" ;;
        *) warn "unrecognised completion file $name (expected bash, zsh or fish)" ;;
      esac
    done < <(find "$gen/completions" -type f -print0)
    for sh in bash zsh fish; do
      case "$shells " in *" $sh "*) ;; *) die "$bin generate-docs wrote no $sh completion" ;; esac
    done
    if [ "$fmt" = deb ]; then
      install -m 0644 "packaging/doc/$pkg.README" "$doc/README.Debian"
    else
      install -m 0644 "packaging/doc/$pkg.README" "$doc/README"
    fi
  done
  log "$bin: $n man pages, completions:$shells"
  rm -rf "$gen" "$gen.log"
}
for p in "${packages[@]}"; do stage_docs "$p" "$p"; done

# The hand-written pages (packaging/man/): the module and the files the programs read, each
# in the package of the program that reads it.
stage_man() { # package page...
  local pkg=$1 page sec root
  shift
  for page in "$@"; do
    [ -f "packaging/man/$page" ] || die "packaging/man/$page is missing"
    sec=${page##*.}
    for root in "$STAGE/deb/$pkg" "$STAGE/rpm/$pkg/doc"; do
      mkdir -p "$root/usr/share/man/man$sec"
      gzip -9nc "packaging/man/$page" > "$root/usr/share/man/man$sec/$page.gz"
    done
  done
  log "$pkg: man pages $*"
}
want jit-host && stage_man jit-host pam_jit.8 host.toml.5
want jit-ca && stage_man jit-ca policy.toml.5

if want jit-host; then
  for r in "$STAGE/deb/jit-host" "$STAGE/rpm/jit-host/doc"; do
    install -m 0644 packaging/examples/host.toml "$r/usr/share/doc/jit-host/examples/host.toml"
    install -m 0644 packaging/examples/sshd_config.d-jit.conf "$r/usr/share/doc/jit-host/examples/sshd_config.d-jit.conf"
  done
fi
if want jit; then
  for r in "$STAGE/deb/jit" "$STAGE/rpm/jit/doc"; do
    install -m 0644 packaging/examples/jit-client.toml "$r/usr/share/doc/jit/examples/config.toml"
  done
fi
# jit-ca's config.toml and policy.toml examples: exactly what `jit-ca init` writes.
if want jit-ca; then
  ca_tmp=$(mktemp -d)
  if "$STAGE/bin/jit-ca" init --dir "$ca_tmp/ca" >/dev/null 2>&1 && [ -f "$ca_tmp/ca/config.toml" ]; then
    for r in "$STAGE/deb/jit-ca" "$STAGE/rpm/jit-ca/doc"; do
      for f in config.toml policy.toml; do
        [ -f "$ca_tmp/ca/$f" ] && install -m 0644 "$ca_tmp/ca/$f" "$r/usr/share/doc/jit-ca/examples/$f"
      done
    done
  else
    die "'jit-ca init --dir DIR' failed: cannot stage the config.toml/policy.toml examples"
  fi
  rm -rf "$ca_tmp"
fi
# Reproducible packages: every staged file dated SOURCE_DATE_EPOCH (cargo-generate-rpm only
# clamps newer mtimes to it; the .deb is re-dated below).
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- stage: SBOMs (packaging/sbom.sh; checked by packaging/meta-test.sh) --------------------
# One CycloneDX SBOM per package, shipped as /usr/share/doc/<pkg>/sbom.cdx.json (the deb and
# rpm doc trees above) and written beside the packages as <pkg>_<version>.cdx.json.
bash "$ROOT/packaging/sbom.sh" --out "$STAGE/sbom" || die "packaging/sbom.sh failed: no SBOMs, no packages"
mkdir -p "$OUT"
rm -f "$OUT"/*.cdx.json
for pkg in "${packages[@]}"; do   # only the packages this run builds (JIT_PACKAGES)
  install -m 0644 "$STAGE/sbom/$pkg.cdx.json" "$STAGE/deb/$pkg/usr/share/doc/$pkg/sbom.cdx.json"
  install -m 0644 "$STAGE/sbom/$pkg.cdx.json" "$STAGE/rpm/$pkg/doc/usr/share/doc/$pkg/sbom.cdx.json"
  # Dated like the rest of the staging area (the packages are reproducible).
  touch -h -d "@$SOURCE_DATE_EPOCH" "$STAGE/deb/$pkg/usr/share/doc/$pkg/sbom.cdx.json" \
    "$STAGE/rpm/$pkg/doc/usr/share/doc/$pkg/sbom.cdx.json"
  v=$(jq -r .metadata.component.version "$STAGE/sbom/$pkg.cdx.json")
  install -m 0644 "$STAGE/sbom/$pkg.cdx.json" "$OUT/${pkg}_$v.cdx.json"
done

# --- packages -----------------------------------------------------------------------------
mkdir -p "$OUT"
rm -f "$OUT"/*.deb "$OUT"/*.rpm
deb_args=(--no-build --no-strip -o "$OUT")
[ -n "${JIT_DEB_VERSION:-}" ] && deb_args+=(--deb-version "$JIT_DEB_VERSION")
rpm_args=(-o "$OUT")
[ -n "${JIT_RPM_RELEASE:-}" ] && rpm_args+=(-s "release = \"$JIT_RPM_RELEASE\"")

log "cargo deb: ${packages[*]}"
want jit && cargo deb -p jit "${deb_args[@]}"
want jit-ca && cargo deb -p jit-ca "${deb_args[@]}"
want jit-host && cargo deb -p jit-host --multiarch=foreign "${deb_args[@]}"

# cargo-deb writes no DEBIAN/md5sums; add it so `dpkg --verify` and debsums can check the
# installed files. Unpacked and rebuilt with dpkg-deb itself (root-owned, xz, same contents),
# reproducibly: every file (the control files too) dated SOURCE_DATE_EPOCH, which dpkg-deb
# also uses for the ar members; dpkg-deb sorts the tar members by name; xz single-threaded
# (the multi-threaded encoder writes other bytes, and its use would depend on the CPU count).
add_md5sums() { # deb
  local deb=$1 dir
  dir=$(mktemp -d)
  dpkg-deb -R "$deb" "$dir/pkg"
  (cd "$dir/pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 -r md5sum > DEBIAN/md5sums)
  chmod 0644 "$dir/pkg/DEBIAN/md5sums"
  chmod 0755 "$dir/pkg"
  find "$dir/pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group --threads-max=1 -Zxz -b "$dir/pkg" "$deb" >/dev/null
  rm -rf "$dir"
}
for deb in "$OUT"/*.deb; do add_md5sums "$deb"; done

# cargo-generate-rpm takes the build time and the clamp of file mtimes from SOURCE_DATE_EPOCH.
log "cargo generate-rpm: ${packages[*]}"
# cargo-generate-rpm 0.21.1 resolves an asset's relative source ("../../packaging/...", meant
# relative to the crate) against the current directory first: from a tree two levels below
# another checkout it would package that checkout's files without a word. Refuse that layout.
if [ -e "$ROOT/../../packaging/examples" ]; then
  die "$ROOT/../../packaging/examples exists: cargo-generate-rpm would take the RPMs' files from there (it resolves ../../packaging/... against the current directory); build from a directory that is not two levels below another jit checkout"
fi
want jit && cargo generate-rpm -p ssh-ca/client "${rpm_args[@]}"
want jit-ca && cargo generate-rpm -p ssh-ca/server "${rpm_args[@]}"
want jit-host && cargo generate-rpm -p pam_jit/host "${rpm_args[@]}"

echo
log "packages in $OUT:"
ls -l "$OUT"

# --- repository (--repo) --------------------------------------------------------------------
if [ -n "$REPO_OUT" ]; then
  log "packaging/repo.sh --out $REPO_OUT"
  bash "$ROOT/packaging/repo.sh" --out "$REPO_OUT" "${REPO_ARGS[@]}" "$OUT"
fi
