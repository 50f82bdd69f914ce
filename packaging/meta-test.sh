#!/usr/bin/env bash
# What is inside the packages, and the release documents: SBOMs, licences, changelogs,
# SECURITY.md. Fast (no build when the packages exist; about 20 s), prints PASS/FAIL lines and
# exits non-zero on any failure.
#
#   packaging/meta-test.sh
#
# Uses the packages in target/packages/ (or $JIT_PACKAGES_DIR); when one is missing it builds
# them from the existing release binaries (JIT_SKIP_BUILD=1 bash packaging/build.sh).
#
# Checks, per package (jit-ca, jit, jit-host):
#   - the SBOM beside the packages (<pkg>_<version>.cdx.json) is CycloneDX JSON: bomFormat,
#     specVersion 1.5/1.6, urn:uuid serial, metadata.component = the package and its version,
#     components with name, version, purl pkg:cargo/NAME@VERSION, a licence, SHA-256 hashes
#     for registry crates, dependency refs that resolve;
#   - it lists exactly the crates of the package's binaries, as the shipped build resolves
#     them: `cargo tree -e normal --target x86_64-unknown-linux-gnu` of the binary's crate in
#     the workspace build (features unified, as `cargo build --workspace` builds it), and
#     `cargo tree ... -p pam_jit` for pam_jit.so (built alone), which must also cover
#     `cargo tree -p <crate>` of every crate (compared as sets of NAME VERSION);
#   - versions and checksums equal Cargo.lock's;
#   - the SBOM inside the .deb and the .rpm (/usr/share/doc/<pkg>/sbom.cdx.json) equals it;
#   - every licence in it is one deny.toml allows;
#   - every crate it lists as linked is in the dependency list cargo auditable embeds in the
#     package's binaries (when the release build uses cargo auditable: packaging/release-env.sh);
#   - the .deb's copyright file is DEP-5, says "Apache-2.0 or MIT", points to the Apache-2.0
#     common licence, carries the MIT text exactly as LICENSE-MIT, and names the SBOM;
#   - the .rpm's License is Cargo's licence (Apache-2.0 OR MIT) and LICENSE-APACHE and
#     LICENSE-MIT are in /usr/share/licenses/<pkg>/, equal to the repository's, flagged
#     %license (rpm -qpL) or %doc (cargo-generate-rpm 0.21.1 cannot flag %license; said);
# and once: LICENSE-APACHE/LICENSE-MIT and the workspace licence; CHANGELOG.md has a section
# for the Cargo version, dated like packaging/changelog's entry for it, which is the top one;
# SECURITY.md has a private contact and a supported-versions table with the current minor.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
TARGET=x86_64-unknown-linux-gnu
PKGS=${JIT_PACKAGES_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/packages}
case $PKGS in /*) ;; *) PKGS=$ROOT/$PKGS ;; esac

pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
ko() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { # description command... (the command prints why it failed)
  local d=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$d"; else ko "$d"; [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /' | head -40; fi
}

for tool in jq cargo dpkg-deb rpm rpm2cpio cpio objcopy python3; do
  command -v "$tool" >/dev/null || { ko "$tool is missing (tests/install-deps.sh installs it)"; }
done
((fail)) && { echo "meta-test: $pass passed, $fail failed"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

VERSION=$(cargo metadata -q --locked --offline --no-deps --format-version 1 2>/dev/null \
  || cargo metadata -q --locked --no-deps --format-version 1)
echo "$VERSION" > "$work/meta.json"
VERSION=$(jq -r '.packages[] | select(.name == "jit-host") | .version' "$work/meta.json")
[ -n "$VERSION" ] || { echo "FAIL: no version for jit-host in cargo metadata"; exit 1; }
LICENSE=$(jq -r '.packages[] | select(.name == "jit-host") | .license' "$work/meta.json")
echo "meta-test: version $VERSION, packages in $PKGS"

deb_of() { ls "$PKGS/$1"_*.deb 2>/dev/null | grep -E "/$1_[^_]+_[^_]+\.deb$" | head -1; }
rpm_of() { ls "$PKGS/$1"-*.rpm 2>/dev/null | grep -E "/$1-[0-9][^/]*\.rpm$" | head -1; }
missing=0
for p in jit-ca jit jit-host; do
  [ -n "$(deb_of "$p")" ] && [ -n "$(rpm_of "$p")" ] || missing=1
done
if ((missing)); then
  echo "meta-test: packages missing in $PKGS: JIT_SKIP_BUILD=1 bash packaging/build.sh"
  JIT_PACKAGES_DIR=$PKGS JIT_SKIP_BUILD=1 bash packaging/build.sh > "$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; echo "FAIL: packaging/build.sh"; exit 1; }
fi

# --- the crates each package's binaries are built from (cargo tree) ------------------------
tree() { cargo tree -q --locked --offline -e normal --target "$TARGET" "$@" 2>/dev/null \
  || cargo tree -q --locked -e normal --target "$TARGET" "$@"; }
tree --workspace --no-dedupe --prefix depth > "$work/ws.txt" || { echo "FAIL: cargo tree --workspace"; exit 1; }
names() { sed -E 's/^[0-9]+//; s/ \(.*$//; s/ v/ /' | grep . | sort -u; }
ws_subtree() { awk -v r="0$1 v" '/^[0-9]/ { if (substr($0, 1, 1) == "0" && $0 !~ /^[0-9]{2}/) keep = (index($0, r) == 1) } keep' "$work/ws.txt" | names; }
alone() { tree -p "$1" --prefix depth | names; }
expected() { # package: NAME VERSION lines, the package's own crate included
  case $1 in
    jit-ca) ws_subtree jit-ca ;;
    jit) ws_subtree jit ;;
    jit-host) { ws_subtree jit-host; alone pam_jit; } | sort -u ;;
  esac
}
crates_of() { case $1 in jit-host) echo "jit-host pam_jit" ;; *) echo "$1" ;; esac; }

# Cargo.lock: NAME VERSION CHECKSUM
awk '/^\[\[package\]\]/ { if (n != "") print n, v, (c == "" ? "-" : c); n = v = c = "" }
     /^name = /{ n = $3 } /^version = /{ v = $3 } /^checksum = /{ c = $3 }
     END { if (n != "") print n, v, (c == "" ? "-" : c) }' Cargo.lock | tr -d '"' | sort > "$work/lock.txt"
# deny.toml's allowed licences, one a line.
sed -n '/^\[licenses\]/,/^\[/p' deny.toml | sed -n '/^allow = \[/,/^\]/p' | grep -oE '"[^"]+"' | tr -d '"' | sort -u > "$work/allowed.txt"

sbom_structure() { # file package
  jq -e --arg p "$2" --arg v "$VERSION" '
    def fail($m): error($m);
    (if .bomFormat != "CycloneDX" then fail("bomFormat is \(.bomFormat)") else . end)
    | (if (.specVersion | IN("1.5", "1.6")) | not then fail("specVersion \(.specVersion)") else . end)
    | (if (.serialNumber | test("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")) | not then fail("serialNumber \(.serialNumber)") else . end)
    | (if (.metadata.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) | not then fail("metadata.timestamp") else . end)
    | (if .metadata.component.name != $p or .metadata.component.version != $v then fail("metadata.component is \(.metadata.component.name) \(.metadata.component.version), not \($p) \($v)") else . end)
    | (if (.components | type) != "array" or (.components | length) == 0 then fail("no components") else . end)
    | ([.components[] | select((.name | type) != "string" or (.version | type) != "string"
         or .purl != "pkg:cargo/\(.name)@\(.version)"
         or ((.licenses[0].expression // "NOASSERTION") == "NOASSERTION"))
        | "\(.name) \(.version): purl \(.purl), licence \(.licenses)"]) as $bad
    | (if ($bad | length) > 0 then fail("components without name/version/purl/licence: \($bad | join("; "))") else . end)
    | ([.components[] | select(.hashes != null) | .hashes[] | select(.alg != "SHA-256" or (.content | test("^[0-9a-f]{64}$") | not))]) as $h
    | (if ($h | length) > 0 then fail("bad hashes: \($h)") else . end)
    | ([.metadata.component."bom-ref", .components[]."bom-ref"]) as $refs
    | (if ($refs | length) != ($refs | unique | length) then fail("duplicate bom-refs") else . end)
    | ([.dependencies[]? | .ref, .dependsOn[]] | unique - $refs) as $dangling
    | (if ($dangling | length) > 0 then fail("dependency refs that name no component: \($dangling)") else true end)
  ' "$1" >/dev/null
}

sbom_matches_tree() { # file package
  jq -r '.metadata.component, .components[] | "\(.name) \(.version)"' "$1" | sort -u > "$work/sbom-$2.txt"
  expected "$2" > "$work/tree-$2.txt"
  [ -s "$work/tree-$2.txt" ] || { echo "cargo tree printed nothing for $2"; return 1; }
  local rc=0 c
  if ! diff "$work/tree-$2.txt" "$work/sbom-$2.txt" > "$work/diff-$2.txt"; then
    echo "SBOM differs from cargo tree (< only in cargo tree, > only in the SBOM):"; cat "$work/diff-$2.txt"; rc=1
  fi
  for c in $(crates_of "$2"); do
    alone "$c" > "$work/alone-$c.txt"
    if [ -n "$(comm -23 "$work/alone-$c.txt" "$work/sbom-$2.txt")" ]; then
      echo "crates of 'cargo tree -p $c' missing from the SBOM:"; comm -23 "$work/alone-$c.txt" "$work/sbom-$2.txt"; rc=1
    fi
  done
  return $rc
}

sbom_matches_lock() { # file
  local rc=0 name ver sum lock
  while read -r name ver sum; do
    lock=$(awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { print $3 }' "$work/lock.txt")
    if [ -z "$lock" ]; then echo "$name $ver is not in Cargo.lock"; rc=1
    elif [ "$lock" != "$sum" ]; then echo "$name $ver: checksum ${sum} in the SBOM, ${lock} in Cargo.lock"; rc=1
    fi
  done < <(jq -r '.components[] | "\(.name) \(.version) \(.hashes[0].content // "-")"' "$1")
  return $rc
}

licences_allowed() { # file
  local rc=0 expr term
  while IFS= read -r expr; do
    while IFS= read -r term; do
      [ -n "$term" ] || continue
      grep -qxF -- "$term" "$work/allowed.txt" || { echo "licence '$term' (in '$expr') is not allowed by deny.toml"; rc=1; }
    done < <(printf '%s\n' "$expr" | tr '()' '  ' | sed -E 's/ +(OR|AND) +/\n/g; s/^ +//; s/ +$//')
  done < <(jq -r '.metadata.component, .components[] | .licenses[]?.expression // "NOASSERTION"' "$1" | sort -u)
  return $rc
}

extract_deb() { # deb path-inside
  dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./$2"
}
extract_rpm() { # rpm path-inside
  # rpm2cpio (rpm 4.18) exits 1 after writing a whole zstd payload: cpio judges the archive,
  # and a member that is not there gives no output (same_as then fails on the difference).
  { rpm2cpio "$1" || true; } | cpio -i --quiet --to-stdout "./$2" 2>/dev/null
}
same_as() { # file command...: the command's output equals the file
  local f=$1; shift
  "$@" > "$work/x" 2>/dev/null || { echo "cannot extract: $*"; return 1; }
  cmp -s "$f" "$work/x" || { echo "differs from $f: $*"; return 1; }
}

deb_copyright() { # deb package
  local c=$work/copyright-$2
  extract_deb "$1" "usr/share/doc/$2/copyright" > "$c" || { echo "no usr/share/doc/$2/copyright"; return 1; }
  local rc=0
  head -1 "$c" | grep -qxE 'Format: https?://www\.debian\.org/doc/packaging-manuals/copyright-format/1\.0/?' \
    || { echo "first line is not a DEP-5 Format: field: $(head -1 "$c")"; rc=1; }
  # A "Files: *" paragraph licensed "Apache-2.0 or MIT" and stand-alone paragraphs for both.
  awk 'BEGIN { RS = "" } /(^|\n)Files: \*\n/ && /\nLicense: Apache-2\.0 or MIT(\n|$)/ { f = 1 } END { exit !f }' "$c" \
    || { echo "no 'Files: *' paragraph with 'License: Apache-2.0 or MIT'"; rc=1; }
  awk 'BEGIN { RS = "" } /^License: Apache-2\.0\n/ && /\/usr\/share\/common-licenses\/Apache-2\.0/ { f = 1 } END { exit !f }' "$c" \
    || { echo "no 'License: Apache-2.0' paragraph referring to /usr/share/common-licenses/Apache-2.0"; rc=1; }
  awk 'BEGIN { RS = "" } /^License: MIT\n/ { sub(/^License: MIT\n/, ""); print; f = 1 } END { exit !f }' "$c" \
    | sed 's/^ //; s/^\.$//' > "$work/mit-$2.txt" || { echo "no 'License: MIT' paragraph"; rc=1; }
  sed -n '/^Permission is hereby granted/,$p' LICENSE-MIT > "$work/mit-ref.txt"
  [ -s "$work/mit-ref.txt" ] && diff "$work/mit-ref.txt" "$work/mit-$2.txt" >/dev/null \
    || { echo "the MIT text in the copyright file differs from LICENSE-MIT's:"; diff "$work/mit-ref.txt" "$work/mit-$2.txt" | head -10; rc=1; }
  grep -q 'sbom\.cdx\.json' "$c" || { echo "the copyright file does not name the SBOM (sbom.cdx.json)"; rc=1; }
  return $rc
}

rpm_licence() { # rpm package
  # The licence texts are in /usr/share/licenses/<pkg>/ with the content of the repository's
  # files, flagged %license (rpm -qpL) or, as cargo-generate-rpm 0.21.1 can only do, %doc
  # (rpm -qpd); the second is said on the PASS line.
  local rc=0 l f
  l=$(rpm -qp --qf '%{LICENSE}' "$1" 2>/dev/null)
  [ "$l" = "$LICENSE" ] || { echo "rpm License: '$l', Cargo: '$LICENSE'"; rc=1; }
  rpm -qpL "$1" 2>/dev/null | sort > "$work/lic-$2.txt"
  rpm -qpd "$1" 2>/dev/null | sort > "$work/doc-$2.txt"
  for f in LICENSE-APACHE LICENSE-MIT; do
    if grep -qxF "/usr/share/licenses/$2/$f" "$work/lic-$2.txt"; then :
    elif grep -qxF "/usr/share/licenses/$2/$f" "$work/doc-$2.txt"; then echo "%doc" >> "$work/docflag-$2"
    else
      echo "/usr/share/licenses/$2/$f is neither %license nor %doc in the rpm"; rc=1; continue
    fi
    same_as "$f" extract_rpm "$1" "usr/share/licenses/$2/$f" || rc=1
  done
  return $rc
}

# The dependency list cargo auditable embeds (section .dep-v0, zlib-compressed JSON) in a binary
# of the .deb: "NAME VERSION" of its runtime crates (proc-macros and build deps are "build").
embedded_deps() { # deb path-inside
  extract_deb "$1" "$2" > "$work/bin" || return 1
  objcopy --dump-section .dep-v0="$work/dep.z" "$work/bin" "$work/bin.out" 2>/dev/null || return 2
  python3 -c 'import sys, zlib; sys.stdout.write(zlib.decompress(open(sys.argv[1], "rb").read()).decode())' "$work/dep.z" \
    | jq -r '.packages[] | select((.kind // "runtime") == "runtime") | "\(.name) \(.version)"' | sort -u
}
sbom_in_binaries() { # sbom package deb
  # Every crate the SBOM lists as linked (scope required) is in the embedded list of one of the
  # package's binaries. cargo auditable takes its list from `cargo metadata`, whose features
  # are unified over the whole workspace, so it may name more crates than are built (pam_jit.so
  # is built alone): those extras are not an error.
  local f rc=0 bins
  case $2 in
    jit-ca) bins="usr/bin/jit-ca" ;;
    jit) bins="usr/bin/jit" ;;
    jit-host) bins="usr/sbin/jit-host $(dpkg-deb -c "$3" | grep -oE 'usr/lib/[^ ]*/security/pam_jit\.so$')" ;;
  esac
  : > "$work/embedded-$2.txt"
  for f in $bins; do
    if ! embedded_deps "$3" "$f" >> "$work/embedded-$2.txt"; then
      echo "$f has no embedded dependency list (section .dep-v0: build with cargo auditable, packaging/release-env.sh)"; rc=1
    fi
  done
  ((rc)) && return 1
  sort -u -o "$work/embedded-$2.txt" "$work/embedded-$2.txt"
  jq -r '.metadata.component, (.components[] | select(.scope == "required")) | "\(.name) \(.version)"' "$1" | sort -u > "$work/linked-$2.txt"
  if [ -n "$(comm -23 "$work/linked-$2.txt" "$work/embedded-$2.txt")" ]; then
    echo "crates the SBOM lists as linked but no binary's embedded list names:"; comm -23 "$work/linked-$2.txt" "$work/embedded-$2.txt"; rc=1
  fi
  return $rc
}

for p in jit-ca jit jit-host; do
  deb=$(deb_of "$p") rpm=$(rpm_of "$p")
  sbom=$PKGS/${p}_$VERSION.cdx.json
  if [ ! -f "$sbom" ]; then
    ko "$p: SBOM $sbom beside the packages (packaging/build.sh writes it)"
  else
    check "$p: SBOM is CycloneDX JSON (bomFormat, specVersion, serial, metadata, components with purl, licence, hashes)" sbom_structure "$sbom" "$p"
    check "$p: SBOM lists exactly the crates cargo tree shows for $(crates_of "$p" | sed 's/ / + /')" sbom_matches_tree "$sbom" "$p"
    check "$p: SBOM versions and SHA-256 checksums are Cargo.lock's" sbom_matches_lock "$sbom"
    check "$p: every licence in the SBOM is allowed by deny.toml" licences_allowed "$sbom"
    check "$p: the .deb ships the same SBOM (/usr/share/doc/$p/sbom.cdx.json)" same_as "$sbom" extract_deb "$deb" "usr/share/doc/$p/sbom.cdx.json"
    check "$p: the .rpm ships the same SBOM (/usr/share/doc/$p/sbom.cdx.json)" same_as "$sbom" extract_rpm "$rpm" "usr/share/doc/$p/sbom.cdx.json"
    # The binaries' own list (cargo auditable) exists once the release build uses it
    # (packaging/release-env.sh); then it is required.
    if [ -f packaging/release-env.sh ]; then
      check "$p: every crate the SBOM lists as linked is in the binaries' embedded list (cargo auditable)" sbom_in_binaries "$sbom" "$p" "$deb"
    fi
  fi
  check "$p: .deb copyright is DEP-5: Apache-2.0 or MIT, MIT text = LICENSE-MIT, names the SBOM" deb_copyright "$deb" "$p"
  rm -f "$work/docflag-$p"
  check "$p: .rpm License is '$LICENSE', /usr/share/licenses/$p/LICENSE-{APACHE,MIT} shipped" rpm_licence "$rpm" "$p"
  [ -f "$work/docflag-$p" ] && echo "    note: flagged %doc, not %license (rpm -qpL): cargo-generate-rpm has no %license asset flag"
done

licence_files() {
  local rc=0 c l
  grep -q 'Apache License' LICENSE-APACHE 2>/dev/null && grep -q 'Version 2.0, January 2004' LICENSE-APACHE \
    || { echo "LICENSE-APACHE is missing or not the Apache License 2.0"; rc=1; }
  grep -q '^Permission is hereby granted, free of charge' LICENSE-MIT 2>/dev/null \
    || { echo "LICENSE-MIT is missing or not the MIT licence"; rc=1; }
  for c in jit-ca jit jit-host pam_jit jit-common jit-api pam_jit_core; do
    l=$(jq -r --arg c "$c" '.packages[] | select(.name == $c) | .license' "$work/meta.json")
    [ "$l" = "Apache-2.0 OR MIT" ] || { echo "crate $c: license '$l', expected 'Apache-2.0 OR MIT'"; rc=1; }
  done
  # The copyright file in the source tree is the one the .debs ship (checked above).
  [ -f packaging/debian/copyright ] || { echo "packaging/debian/copyright is missing"; rc=1; }
  return $rc
}
check "LICENSE-APACHE, LICENSE-MIT, packaging/debian/copyright; every shipped crate's licence is Apache-2.0 OR MIT" licence_files

changelogs() {
  local rc=0 date deb_top deb_ver deb_date
  date=$(grep -E "^## \[?$VERSION\]? [—-] [0-9]{4}-[0-9]{2}-[0-9]{2}\$" CHANGELOG.md | head -1 | grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}$')
  [ -n "$date" ] || { echo "CHANGELOG.md has no '## $VERSION — YYYY-MM-DD' section"; rc=1; }
  grep -q '^## Unreleased$' CHANGELOG.md || { echo "CHANGELOG.md has no '## Unreleased' section"; rc=1; }
  deb_top=$(head -1 packaging/changelog)
  deb_ver=$(printf '%s\n' "$deb_top" | sed -nE 's/^jit \(([^)]+)\) .*/\1/p')
  [ "${deb_ver%-*}" = "$VERSION" ] \
    || { echo "packaging/changelog's top entry is '$deb_top', not version $VERSION-N"; rc=1; }
  # The first Debian revision of a version is dated the day of the release.
  deb_date=$(awk -v v="$VERSION-1" '$1 == "jit" && $2 == "(" v ")" { f = 1; next } f && /^ -- / { sub(/.*>  /, ""); print; exit }' packaging/changelog)
  if [ -z "$deb_date" ]; then echo "packaging/changelog has no entry for $VERSION-1"; rc=1
  elif [ -n "$date" ] && [ "$(date -u -d "$deb_date" +%F 2>/dev/null)" != "$date" ]; then
    echo "packaging/changelog dates $VERSION-1 '$deb_date', CHANGELOG.md $date"; rc=1
  fi
  return $rc
}
check "CHANGELOG.md has a section for $VERSION, dated like packaging/changelog's $VERSION-1 (its top entry)" changelogs

security_md() {
  local rc=0 minor
  minor=$(printf '%s\n' "$VERSION" | cut -d. -f1,2)
  [ -f SECURITY.md ] || { echo "SECURITY.md is missing"; return 1; }
  grep -qE '[A-Za-z0-9._-]+@[A-Za-z0-9.-]+\.[a-z]+' SECURITY.md || { echo "SECURITY.md names no contact address"; rc=1; }
  grep -qi 'private' SECURITY.md || { echo "SECURITY.md does not say how to report privately"; rc=1; }
  grep -qE "^\| *$(printf '%s' "$minor" | sed 's/\./\\./g')\.x *\| *yes" SECURITY.md \
    || { echo "SECURITY.md's supported-versions table has no '| $minor.x | yes' row"; rc=1; }
  return $rc
}
check "SECURITY.md: private contact, supported versions table with ${VERSION%.*}.x" security_md

echo
echo "meta-test: $pass passed, $fail failed ($SECONDS s)"
((fail == 0))
