#!/usr/bin/env bash
# Reproducibility check of the host package: builds jit-host (.deb and .rpm: jit-host and
# pam_jit.so) twice from the commit at HEAD and checks that the results are byte-identical.
#
#   packaging/repro.sh            (tests/run.sh runs it; about 6 min on 2 cores)
#   JIT_REPRO_KEEP=1 packaging/repro.sh    keep the work directory for inspection
#
# The two builds differ in what must not matter:
#   A  a clone at WORK/a, target dir WORK/a/target, CARGO_HOME as configured; A starts from a
#      copy of this checkout's compiled dependencies (only the workspace crates are compiled
#      at A's path), or from an empty target dir with JIT_REPRO_COLD=1;
#   B  a clone at WORK/b/deeper/tree (another path and depth), its own empty target dir,
#      CARGO_HOME=WORK/cargo-home (another path, the same downloaded crates).
# Each runs `JIT_PACKAGES=jit-host packaging/build.sh` (the shipped jit-host built with the
# workspace's feature resolution, exactly as in the full build, see packaging/build.sh), with
# the SOURCE_DATE_EPOCH of HEAD (packaging/release-env.sh). Checks (PASS/FAIL):
#   - the two .deb files are byte-identical (sha256), and the two .rpm files;
#   - every payload file of both packages is identical (names the files that differ, with
#     diffoscope's report when it is installed), and the unstripped programs of the target dirs;
#   - no program contains a build path: the clones' directories, either CARGO_HOME or this
#     checkout's path (fails without packaging/release-env.sh's --remap-path-prefix);
#   - the dependency lists the programs embed (packaging/auditable-check.sh).
# Uncommitted changes of this checkout are not part of the check (it builds HEAD).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { echo "FAIL: repro: $*"; exit 1; }

for tool in git sha256sum dpkg-deb rpm2cpio cpio grep cmp strings; do
  command -v "$tool" >/dev/null || die "$tool is missing (run tests/install-deps.sh)"
done
# SOURCE_DATE_EPOCH (HEAD's commit time unless set) and the real CARGO_HOME path.
# shellcheck source=packaging/release-env.sh
source packaging/release-env.sh || die "packaging/release-env.sh failed"
rev=$(git rev-parse HEAD) || die "not a git checkout"
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P) || die "no CARGO_HOME"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  echo "repro: note: this checkout has uncommitted changes; the check builds the commit $rev"

WORK=$(mktemp -d /var/tmp/jit-repro.XXXXXX)
cleanup() {
  if [ "${JIT_REPRO_KEEP:-0}" = 1 ]; then echo "repro: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
A=$WORK/a
B=$WORK/b/deeper/tree
HOME_B=$WORK/cargo-home

for d in "$A" "$B"; do
  mkdir -p "$(dirname "$d")"
  if ! { git clone -q --no-checkout "$ROOT" "$d" && git -C "$d" checkout -q --detach "$rev"; }; then
    die "cannot clone $ROOT at $rev into $d"
  fi
done
# B's CARGO_HOME: another directory, the same registry (sources, index cache) and tools.
mkdir -p "$HOME_B"
for e in registry bin .crates.toml .crates2.json config.toml; do
  [ -e "$cargo_home/$e" ] && ln -s "$cargo_home/$e" "$HOME_B/$e"
done

build() { # label dir [env...]
  local label=$1 dir=$2 t0=$SECONDS
  shift 2
  echo "repro: building $label in $dir"
  if (cd "$dir" && env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR "$@" \
        JIT_PACKAGES=jit-host JIT_PACKAGES_DIR="$dir/out" bash packaging/build.sh) \
        >"$WORK/build-$label.log" 2>&1; then
    echo "repro: $label built in $((SECONDS - t0)) s"
  else
    tail -40 "$WORK/build-$label.log" | sed 's/^/  | /'
    die "the build $label failed (log above)"
  fi
}
# A starts from this checkout's compiled dependencies (copied, not linked: nothing A writes
# can reach this checkout), so only the workspace crates are compiled at A's path: the check
# stays a few minutes on 2 cores in CI. B always starts from an empty target dir.
# JIT_REPRO_COLD=1 (a release check) builds A from an empty target dir too.
if [ "${JIT_REPRO_COLD:-0}" != 1 ] && [ -d "$ROOT/target/release/deps" ]; then
  mkdir -p "$A/target/release"
  cp -a "$ROOT/target/release/deps" "$ROOT/target/release/build" "$ROOT/target/release/.fingerprint" \
    "$A/target/release/" || die "cannot copy $ROOT/target/release into $A/target/release"
  # The workspace's own crates are compiled again at A's path.
  (cd "$A/target/release" && rm -rf deps/*jit* deps/*pam_jit* .fingerprint/jit* .fingerprint/pam_jit* \
    .fingerprint/jit-* build/jit* build/pam_jit*)
  echo "repro: A reuses the compiled dependencies of $ROOT/target/release (JIT_REPRO_COLD=1: from scratch)"
fi
# One after the other: each cargo build already uses both cores, and B runs offline
# (A fetched anything missing).
build A "$A"
build B "$B" CARGO_HOME="$HOME_B" CARGO_NET_OFFLINE=true

# --- the packages ---------------------------------------------------------------------------
shopt -s nullglob
for ext in deb rpm; do
  pa=("$A"/out/*."$ext") pb=("$B"/out/*."$ext")
  if [ ${#pa[@]} != 1 ] || [ ${#pb[@]} != 1 ]; then
    fail "expected one .$ext per build (A: ${pa[*]:-none}; B: ${pb[*]:-none})"; continue
  fi
  if [ "$(basename "${pa[0]}")" != "$(basename "${pb[0]}")" ]; then
    fail ".$ext names differ: $(basename "${pa[0]}") vs $(basename "${pb[0]}")"
  fi
  ha=$(sha256sum < "${pa[0]}" | cut -d' ' -f1) hb=$(sha256sum < "${pb[0]}" | cut -d' ' -f1)
  if [ "$ha" = "$hb" ]; then
    pass "$(basename "${pa[0]}") is byte-identical in both builds (sha256 $ha)"
  else
    fail "$(basename "${pa[0]}") differs between the builds (sha256 $ha vs $hb)"
  fi
  for s in a b; do
    x=$WORK/x-$ext-$s; mkdir -p "$x"
    if [ $s = a ]; then p=${pa[0]}; else p=${pb[0]}; fi
    if [ "$ext" = deb ]; then
      { dpkg-deb -x "$p" "$x" && dpkg-deb -e "$p" "$x/DEBIAN"; } || fail "cannot unpack $p"
    else
      (cd "$x" && { rpm2cpio "$p" || true; } | cpio -id --quiet) || fail "cannot unpack $p"
    fi
  done
  diffs=$(diff -rq "$WORK/x-$ext-a" "$WORK/x-$ext-b" 2>&1)
  n=$(find "$WORK/x-$ext-a" -type f | wc -l)
  if [ -z "$diffs" ]; then
    pass ".$ext payload: all $n files identical (jit-host, pam_jit.so, man pages, ...)"
  else
    fail ".$ext payload files differ:"
    printf '%s\n' "$diffs" | sed 's/^/  /'
  fi
  for bin in usr/sbin/jit-host usr/lib/x86_64-linux-gnu/security/pam_jit.so usr/lib64/security/pam_jit.so; do
    [ -f "$WORK/x-$ext-a/$bin" ] || continue
    if cmp -s "$WORK/x-$ext-a/$bin" "$WORK/x-$ext-b/$bin"; then
      pass ".$ext: /$bin byte-identical ($(sha256sum < "$WORK/x-$ext-a/$bin" | cut -c1-16)...)"
    else
      fail ".$ext: /$bin differs"
    fi
  done
done

# The unstripped programs as cargo left them (what the system tests run).
for bin in jit-host libpam_jit.so; do
  if cmp -s "$A/target/release/$bin" "$B/target/release/$bin"; then
    pass "target/release/$bin (unstripped) byte-identical"
  else
    fail "target/release/$bin (unstripped) differs"
  fi
done

# diffoscope's report on what differs, when it is installed (not required).
if ((fails)) && command -v diffoscope >/dev/null; then
  for ext in deb rpm; do
    pa=("$A"/out/*."$ext") pb=("$B"/out/*."$ext")
    if [ ${#pa[@]} != 1 ] || [ ${#pb[@]} != 1 ] || cmp -s "${pa[0]}" "${pb[0]}"; then continue; fi
    echo "repro: diffoscope ${pa[0]##*/} (first 200 lines)"
    timeout 600 diffoscope --text - "${pa[0]}" "${pb[0]}" 2>&1 | head -200 | sed 's/^/  | /'
  done
fi

# --- no build path in the programs ----------------------------------------------------------
# Absolute paths of the builders: the clones, both CARGO_HOMEs (registry sources: panic
# locations of dependencies), this checkout. /cargo/registry/... (remapped) is expected.
paths=("$WORK" "$cargo_home" "$HOME_B" "$ROOT")
[ "$cargo_home" != "$HOME/.cargo" ] && paths+=("$HOME/.cargo")
for f in "$A/target/release/jit-host" "$A/target/release/libpam_jit.so" \
         "$B/target/release/jit-host" "$B/target/release/libpam_jit.so" \
         "$WORK"/x-deb-a/usr/sbin/jit-host "$WORK"/x-deb-a/usr/lib/x86_64-linux-gnu/security/pam_jit.so; do
  [ -f "$f" ] || { fail "${f#"$WORK"/} is missing"; continue; }
  leaked=()
  for p in "${paths[@]}"; do
    c=$(grep -a -o -F -- "$p" "$f" | wc -l)
    ((c)) && leaked+=("$p ($c times)")
  done
  if ((${#leaked[@]})); then
    fail "${f#"$WORK"/} contains build paths: ${leaked[*]}"
    for p in "${paths[@]}"; do strings -a "$f" | grep -F -- "$p" | head -3; done | sed 's/^/  e.g. /'
  else
    pass "${f#"$WORK"/}: no build path (${#paths[@]} checked; $(grep -a -o -F /cargo/registry/src/ "$f" | wc -l) remapped /cargo/registry/src/ locations)"
  fi
done

# --- the embedded dependency lists ----------------------------------------------------------
bash "$ROOT/packaging/auditable-check.sh" --lock "$A/Cargo.lock" "$A"/out/*.deb "$A"/out/*.rpm || fails=$((fails + 1))

echo
if ((fails)); then
  echo "repro: $fails check(s) failed"
  exit 1
fi
echo "repro: the host package is reproducible (commit $rev, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
