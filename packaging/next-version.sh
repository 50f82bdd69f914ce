#!/usr/bin/env bash
# Writes a copy of the tree SRC at DEST as the next patch release (N+1), for the upgrade test
# (packaging/upgrade-test.sh): a real version change, not a rebuilt package with a suffix.
#
#   packaging/next-version.sh SRC DEST
#
#   - copies the files git tracks in SRC (and untracked files that are not ignored), as they
#     are in the working tree, to DEST (which must not exist or be empty);
#   - bumps the workspace version (Cargo.toml [workspace.package]) to the next patch version,
#     e.g. 0.1.0 -> 0.1.1, and the workspace members' entries in Cargo.lock, so
#     `cargo build --locked` works in DEST;
#   - adds a packaging/changelog entry for it (dated from SOURCE_DATE_EPOCH, else now);
#   - changes the default of the conffile packaging/examples/jit-ca.default (installed as
#     /etc/default/jit-ca, a dpkg conffile, and /etc/sysconfig/jit-ca, %config(noreplace)):
#     a new commented example line, so dpkg and rpm see a changed default;
#   - seeds DEST/target/release from SRC/target/release (deps/ by hard links, build/ and
#     .fingerprint/ copied) so only the workspace crates recompile; the workspace crates' own
#     artifacts are not seeded (they are rebuilt under the new version anyway).
# Prints what changed. Nothing in SRC is modified.
set -euo pipefail

die() { echo "next-version.sh: ERROR: $*" >&2; exit 1; }
log() { echo "next-version.sh: $*"; }

[ $# -eq 2 ] || die "usage: packaging/next-version.sh SRC DEST"
SRC=$(cd "$1" && pwd) || die "SRC '$1' is not a directory"
DEST=$2
[ -f "$SRC/Cargo.toml" ] && [ -f "$SRC/Cargo.lock" ] || die "$SRC has no Cargo.toml/Cargo.lock: not the jit source tree"
git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1 || die "$SRC is not a git checkout (the file list comes from git ls-files)"
if [ -e "$DEST" ] && [ -n "$(ls -A "$DEST" 2>/dev/null)" ]; then
  die "$DEST exists and is not empty; give a new directory"
fi
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
for tool in cargo jq awk sed tar; do command -v "$tool" >/dev/null || die "$tool is missing"; done

# --- the tree -----------------------------------------------------------------------------
# Working-tree content of the tracked files (uncommitted edits included) plus untracked files
# that are not ignored; files deleted in the working tree are skipped.
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$DEST" -xf -
log "copied $(cd "$DEST" && find . -path ./target -prune -o -type f -print | wc -l) files from $SRC to $DEST"

# --- version ------------------------------------------------------------------------------
# The version line of [workspace.package] (the members use version.workspace = true).
old=$(awk '/^\[/{sec=$0} sec=="[workspace.package]" && /^version *= *"/{gsub(/.*= *"|".*/,""); print; exit}' "$DEST/Cargo.toml")
[[ $old =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "workspace version '$old' in Cargo.toml is not MAJOR.MINOR.PATCH"
new="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.$((BASH_REMATCH[3] + 1))"
awk -v old="$old" -v new="$new" '
  /^\[/ { sec = $0 }
  sec == "[workspace.package]" && $0 ~ "^version *= *\"" old "\"" && !done { sub(old, new); done = 1 }
  { print }' "$SRC/Cargo.toml" > "$DEST/Cargo.toml"
grep -q "^version = \"$new\"" "$DEST/Cargo.toml" || die "could not bump the version in $DEST/Cargo.toml"

# Workspace members that take the workspace version (names from cargo metadata, no network).
mapfile -t members < <(cd "$DEST" && cargo metadata --no-deps --offline --format-version 1 \
  | jq -r --arg v "$new" '.packages[] | select(.version == $v) | .name' | sort)
((${#members[@]})) || die "cargo metadata lists no workspace member at version $new"
# In Cargo.lock: only [[package]] blocks without a `source` line (path packages = ours).
awk -v old="$old" -v new="$new" -v names=" ${members[*]} " '
  function flush() {
    if (n) {
      if (!src && index(names, " " name " ") > 0) {
        for (i = 1; i <= n; i++) if (lines[i] == "version = \"" old "\"") { lines[i] = "version = \"" new "\""; bumped++ }
      }
      for (i = 1; i <= n; i++) print lines[i]
    }
    n = 0; src = 0; name = ""
  }
  /^\[\[package\]\]$/ { flush() }
  { lines[++n] = $0 }
  /^name = "/ { name = $0; gsub(/^name = "|"$/, "", name) }
  /^source = / { src = 1 }
  END { flush(); print bumped > "/dev/stderr" }' "$SRC/Cargo.lock" > "$DEST/Cargo.lock" 2> "$DEST/.lock-bumped"
bumped=$(cat "$DEST/.lock-bumped"); rm -f "$DEST/.lock-bumped"
[ "$bumped" = "${#members[@]}" ] \
  || die "bumped $bumped Cargo.lock entries, expected ${#members[@]} (${members[*]})"
# --locked must accept the lock file as it is.
(cd "$DEST" && cargo metadata --locked --format-version 1 >/dev/null 2>&1) \
  || die "Cargo.lock in $DEST does not match Cargo.toml (cargo metadata --locked failed)"
log "version $old -> $new in Cargo.toml and Cargo.lock (${members[*]})"

# --- packaging/changelog ------------------------------------------------------------------
cl=$DEST/packaging/changelog
[ -f "$cl" ] || die "$cl is missing"
src_name=$(sed -n '1s/ .*//p' "$cl")
dist=$(sed -n '1s/^[^)]*) \([^;]*\);.*/\1/p' "$cl")
maint=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$cl" | head -1)
[ -n "$src_name" ] && [ -n "$dist" ] && [ -n "$maint" ] || die "cannot parse the top entry of $cl"
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  when=$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
else
  when=$(LC_ALL=C date -u -R)
fi
{
  printf '%s (%s-1) %s; urgency=medium\n\n' "$src_name" "$new" "$dist"
  printf '  * Release %s, made by packaging/next-version.sh for the upgrade test:\n' "$new"
  printf '    the version bump and a new commented example in /etc/default/jit-ca\n'
  printf '    (/etc/sysconfig/jit-ca).\n\n'
  printf ' -- %s  %s\n\n' "$maint" "$when"
  cat "$SRC/packaging/changelog"
} > "$cl"
if command -v dpkg-parsechangelog >/dev/null; then
  got=$(dpkg-parsechangelog -l "$cl" -S Version) || die "dpkg-parsechangelog cannot read $cl"
  [ "$got" = "$new-1" ] || die "$cl: top version is '$got', expected '$new-1'"
fi
log "packaging/changelog: new entry $src_name ($new-1), $when"

# --- conffile default ---------------------------------------------------------------------
def=$DEST/packaging/examples/jit-ca.default
grep -qx 'JIT_CA_OPTS=""' "$def" || die "$def has no 'JIT_CA_OPTS=\"\"' line to put the new example before"
awk -v new="$new" '
  $0 == "JIT_CA_OPTS=\"\"" && !done {
    print "# Example (new in " new "): listen on loopback only, on another port."
    print "#JIT_CA_OPTS=\"--listen 127.0.0.1:9443\""
    done = 1
  }
  { print }' "$SRC/packaging/examples/jit-ca.default" > "$def"
cmp -s "$def" "$SRC/packaging/examples/jit-ca.default" && die "the conffile default did not change"
log "packaging/examples/jit-ca.default (conffile /etc/default/jit-ca, /etc/sysconfig/jit-ca):"
diff -u "$SRC/packaging/examples/jit-ca.default" "$def" | sed -n '3,$p' | sed 's/^/  /' || true

# --- target seed --------------------------------------------------------------------------
srel=${CARGO_TARGET_DIR:-$SRC/target}/release
case $srel in /*) ;; *) srel=$SRC/$srel ;; esac
if [ -d "$srel/deps" ]; then
  mkdir -p "$DEST/target/release"
  cp -al "$srel/deps" "$DEST/target/release/"
  for d in build .fingerprint; do
    [ -d "$srel/$d" ] && cp -a "$srel/$d" "$DEST/target/release/"
  done
  # The workspace crates' artifacts: rebuilt under the new version. Unlinked here so that no
  # compiler or linker can write through a hard link into SRC's files (the cdylib
  # deps/libpam_jit.so has no hash in its name).
  for m in "${members[@]}"; do
    u=${m//-/_}
    find "$DEST/target/release/deps" -maxdepth 1 \( -name "lib$u-*" -o -name "lib$u.*" -o -name "$u-*" -o -name "$m-*" \) -delete
  done
  log "seeded $DEST/target/release from $srel (deps hard-linked; build, .fingerprint copied)"
else
  log "no $srel/deps: DEST/target not seeded (the build there compiles everything)"
fi
log "release $new ready in $DEST: build it with (cd $DEST && bash packaging/build.sh)"
