#!/usr/bin/env bash
# Writes one CycloneDX 1.5 SBOM (JSON) per package, from Cargo.lock:
#
#   packaging/sbom.sh --out DIR      -> DIR/jit-ca.cdx.json, DIR/jit.cdx.json, DIR/jit-host.cdx.json
#
# What each SBOM lists: the crates in the dependency graph of the package's binaries for
# x86_64-unknown-linux-gnu, normal dependencies only, with the features the shipped build
# resolves:
#   jit-ca    the jit-ca binary          (built by `cargo build --workspace --release`)
#   jit       the jit binary             (same build)
#   jit-host  the jit-host binary (same build) AND pam_jit.so (crate pam_jit, built on its own
#             by tests/build-module.sh): the package ships both, so the SBOM is the union.
# The binaries come from ONE workspace build, where cargo unifies the features of every
# member (ssh-key gets the rsa/p256 features the client's agent support asks for, and so on):
# their graph is their subtree of `cargo tree --workspace`, not of `cargo tree -p NAME`, which
# would miss crates the shipped binary contains. pam_jit.so is built alone: `cargo tree -p
# pam_jit`. If packaging/build.sh changes how it builds, change GRAPH_* below with it
# (packaging/meta-test.sh compares the SBOMs with the same cargo tree commands).
#
# Scope: crates linked into a binary are "required". Proc-macro crates (serde_derive,
# clap_derive, ...) and the crates only they use run inside the compiler and are not in the
# binary, but they shape the generated code, so they are listed with scope "excluded".
# Build-dependencies (build.rs helpers such as cc) are not listed (cargo tree -e normal).
#
# Each component: name, version, purl pkg:cargo/NAME@VERSION, licence (the crate's SPDX
# `license`, old "A/B" syntax normalised to "A OR B"), and for registry crates the SHA-256
# checksum Cargo.lock records. Workspace crates (jit-common, ...) have no checksum.
#
# Reproducible: the timestamp is SOURCE_DATE_EPOCH (when unset, packaging/release-env.sh's
# default: the commit time of HEAD), the serial number a UUID derived from the SBOM's content,
# components and dependencies sorted. No network: cargo runs with --locked --offline when the
# sources are already there (they are, after a build).
#
# Needs: cargo, jq, git (for the default SOURCE_DATE_EPOCH).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

die() { echo "sbom.sh: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: packaging/sbom.sh --out DIR" >&2; exit 2; }

OUT=
while (($#)); do
  case $1 in
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sbom.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$OUT" ] || usage
for tool in cargo jq; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install jq; cargo from rustup)"
done

TARGET=x86_64-unknown-linux-gnu
SPEC=1.5
# How each package's code is built (see the header): "ws:CRATE" = CRATE's subtree of the
# feature-unified workspace graph, "alone:CRATE" = `cargo tree -p CRATE`.
GRAPH_jit_ca="ws:jit-ca"
GRAPH_jit="ws:jit"
GRAPH_jit_host="ws:jit-host alone:pam_jit"

# build.sh exports it (packaging/release-env.sh); run alone, the same default: HEAD's commit time.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null) && [ -n "$SOURCE_DATE_EPOCH" ] \
    || die "SOURCE_DATE_EPOCH is unset and this is no git checkout: set it (seconds since 1970)"
fi
case $SOURCE_DATE_EPOCH in ''|*[!0-9]*) die "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not a number of seconds" ;; esac
TIMESTAMP=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo_q() { # cargo subcommand, offline when possible
  cargo "$@" --offline 2>"$work/cargo.err" || cargo "$@" 2>"$work/cargo.err" || {
    sed 's/^/  | /' "$work/cargo.err" >&2; die "cargo $1 failed (is Cargo.lock up to date? --locked)"; }
}

# The graphs, with depth prefixes and no de-duplication (a (*) line still names an edge).
cargo_q tree -q --locked -e normal --target "$TARGET" --workspace --no-dedupe --prefix depth > "$work/tree-ws.txt"
cargo_q metadata -q --locked --format-version 1 --filter-platform "$TARGET" > "$work/metadata.json"
# name, version -> licence (normalised), local (no source) or registry.
jq -r '.packages[] | [.name, .version,
    ((.license // "NOASSERTION") | gsub(" ?/ ?"; " OR ")),
    (if .source == null then "local" else .source end)] | @tsv' \
  "$work/metadata.json" > "$work/licences.tsv"
# Cargo.lock: name, version, checksum (registry crates).
awk '
  /^\[\[package\]\]/ { if (n != "" && c != "") print n "\t" v "\t" c; n = v = c = ""; next }
  /^name = /     { n = $3; gsub(/"/, "", n) }
  /^version = /  { v = $3; gsub(/"/, "", v) }
  /^checksum = / { c = $3; gsub(/"/, "", c) }
  END { if (n != "" && c != "") print n "\t" v "\t" c }
' Cargo.lock > "$work/checksums.tsv"

# nodes.tsv: name version buildtime(0|1); edges.tsv: parent-ref child-ref. From a depth-
# prefixed tree, the part under the root named ROOTNAME (all of it when ROOTNAME is empty).
# Everything below a proc-macro is build time.
tree_graph() { # file rootname
  awk -v root="$2" -v nodes="$work/nodes.tsv" -v edges="$work/edges.tsv" '
    /^$/ { next }
    {
      match($0, /^[0-9]+/); d = substr($0, 1, RLENGTH) + 0
      rest = substr($0, RLENGTH + 1)
      split(rest, f, " "); name = f[1]; ver = f[2]; sub(/^v/, "", ver)
      pm = (rest ~ /\(proc-macro\)/)
      if (d == 0) { keep = (root == "" || name == root); pmd = -1 }
      if (!keep) next
      if (pmd >= 0 && d <= pmd) pmd = -1
      if (pm && pmd < 0) pmd = d
      bt = (pmd >= 0) ? 1 : 0
      ref[d] = "pkg:cargo/" name "@" ver
      print name "\t" ver "\t" bt >> nodes
      if (d > 0) print ref[d - 1] "\t" ref[d] >> edges
    }' "$1"
}

# The SBOM of one package.
sbom() { # package
  local pkg=$1 var spec kind crate
  var=GRAPH_${pkg//-/_}
  : > "$work/nodes.tsv"; : > "$work/edges.tsv"
  for spec in ${!var}; do
    kind=${spec%%:*} crate=${spec#*:}
    if [ "$kind" = ws ]; then
      tree_graph "$work/tree-ws.txt" "$crate"
    else
      cargo_q tree -q --locked -e normal --target "$TARGET" -p "$crate" --no-dedupe --prefix depth > "$work/tree-$crate.txt"
      tree_graph "$work/tree-$crate.txt" ""
    fi
  done
  [ -s "$work/nodes.tsv" ] || die "no dependency graph for $pkg (${!var}): is the crate in the workspace?"
  local version
  version=$(jq -r --arg n "$pkg" '.packages[] | select(.name == $n and .source == null) | .version' "$work/metadata.json")
  [ -n "$version" ] || die "no workspace crate named $pkg"
  jq -n --arg pkg "$pkg" --arg version "$version" --arg ts "$TIMESTAMP" --arg spec "$SPEC" \
    --rawfile nodes "$work/nodes.tsv" --rawfile edges "$work/edges.tsv" \
    --rawfile lic "$work/licences.tsv" --rawfile sums "$work/checksums.tsv" '
    def rows($s): $s | split("\n") | map(select(length > 0) | split("\t"));
    (rows($lic) | map({key: "\(.[0])@\(.[1])", value: {licence: .[2], local: (.[3] == "local")}}) | from_entries) as $L
    | (rows($sums) | map({key: "\(.[0])@\(.[1])", value: .[2]}) | from_entries) as $S
    # A crate is required if it is reached once outside a proc-macro, build time otherwise.
    | (rows($nodes) | group_by(.[0] + "@" + .[1])
        | map({name: .[0][0], version: .[0][1], buildtime: (map(.[2]) | all(. == "1"))})) as $N
    | "pkg:cargo/\($pkg)@\($version)" as $root
    | {
        bomFormat: "CycloneDX",
        specVersion: $spec,
        serialNumber: "",
        version: 1,
        metadata: {
          timestamp: $ts,
          tools: {components: [{type: "application", name: "packaging/sbom.sh",
            description: "cargo tree + cargo metadata + Cargo.lock, see the script header"}]},
          component: {type: "application", "bom-ref": $root, name: $pkg, version: $version,
            purl: $root,
            licenses: [{expression: ($L["\($pkg)@\($version)"].licence // "NOASSERTION")}]},
          properties: [{name: "jit:target", value: "x86_64-unknown-linux-gnu"}]
        },
        components: [$N[] | select("pkg:cargo/\(.name)@\(.version)" != $root)
          | "\(.name)@\(.version)" as $k
          | {type: "library", "bom-ref": "pkg:cargo/\($k)", name, version,
             scope: (if .buildtime then "excluded" else "required" end),
             purl: "pkg:cargo/\($k)",
             licenses: [{expression: ($L[$k].licence // "NOASSERTION")}]}
          + (if $S[$k] then {hashes: [{alg: "SHA-256", content: $S[$k]}]} else {} end)
          + (if .buildtime then {properties: [{name: "jit:build-time", value: "proc-macro or used only by one"}]} else {} end)
        ] | sort_by(.name, .version),
        dependencies: (rows($edges) | group_by(.[0])
          | map({ref: .[0][0], dependsOn: (map(.[1]) | unique)})
          | . as $d | ($N | map("pkg:cargo/\(.name)@\(.version)")) as $all
          | $d + [$all[] | select(. as $r | $d | map(.ref) | index($r) | not) | {ref: ., dependsOn: []}]
          | unique_by(.ref))
      }
    ' > "$work/$pkg.nosn.json"
  # Serial number: a UUID (version 5 layout) from the SHA-256 of the content without it.
  local h
  h=$(sha256sum < "$work/$pkg.nosn.json" | cut -c1-32)
  local uuid="${h:0:8}-${h:8:4}-5${h:13:3}-$(printf '%x' $(( (0x${h:16:1} & 3) | 8 )))${h:17:3}-${h:20:12}"
  jq --arg sn "urn:uuid:$uuid" '.serialNumber = $sn' "$work/$pkg.nosn.json" > "$OUT/$pkg.cdx.json"
  echo "sbom.sh: $OUT/$pkg.cdx.json ($(jq '.components | length' "$OUT/$pkg.cdx.json") components, $(jq '[.components[] | select(.scope == "required")] | length' "$OUT/$pkg.cdx.json") linked)"
}

mkdir -p "$OUT"
for pkg in jit-ca jit jit-host; do sbom "$pkg"; done
