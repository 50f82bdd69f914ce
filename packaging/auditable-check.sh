#!/usr/bin/env bash
# Checks the dependency list `cargo auditable` embeds in the shipped programs (the `.dep-v0`
# section: zlib-compressed JSON, read by `cargo audit bin`, trivy, syft, grype...), so a scanner
# can list what an installed host runs:
#
#   packaging/auditable-check.sh [--lock Cargo.lock] FILE...
#
# FILE: a program (jit-ca, jit, jit-host, pam_jit.so or libpam_jit.so, as installed or built)
# or a package (.deb, .rpm), whose programs are checked. For each program:
#   - the section is there (a build without cargo auditable, or a strip that drops it, fails);
#   - the root package is the program's crate (jit-ca, jit, jit-host, pam_jit);
#   - every crate it lists is in Cargo.lock at that version, with the same source (registry
#     crates are from crates.io, ours are local);
#   - the crates that matter are listed at Cargo.lock's version: ed25519-dalek in pam_jit.so
#     and jit-host, axum and rusqlite in jit-ca, ureq in jit;
#   - no crate of another program leaked in: no axum, tokio, rusqlite or ureq in pam_jit.so,
#     none of the client's own (indicatif, ssh-agent-client-rs, signal-hook) in jit-ca, no axum
#     or rusqlite (the server's) in jit.
# The list is cargo-auditable's reading of `cargo metadata`, whose features are resolved over
# the whole workspace: it can name a few crates more than the program links (pam_jit.so's
# lists syslog and ssh-key's rsa, which only jit-common's `syslog` feature and the client
# enable), never fewer. Scanners may report such a crate; the versions are exact.
# Prints PASS/FAIL lines; exits non-zero on any failure. (rpm2cpio exits 1 on these packages
# although it writes the whole payload: cpio's status and the files found count.)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCK=$ROOT/Cargo.lock
if [ "${1:-}" = --lock ]; then LOCK=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: packaging/auditable-check.sh [--lock Cargo.lock] FILE..." >&2; exit 2; }
[ -f "$LOCK" ] || { echo "auditable-check: $LOCK not found" >&2; exit 2; }
for tool in objcopy python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: auditable-check: $tool is missing (apt-get install binutils python3)"; exit 1; }
done

fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check_program() { # path name-for-messages
  local bin=$1 what=$2 base root n
  base=$(basename "$bin")
  case $base in
    jit-ca) root=jit-ca ;; jit) root=jit ;; jit-host) root=jit-host ;;
    pam_jit.so|libpam_jit.so) root=pam_jit ;;
    *) echo "FAIL: $what: not a jit program (jit-ca, jit, jit-host, pam_jit.so)"; fails=$((fails + 1)); return ;;
  esac
  n=$((n_sec = n_sec + 1))
  local sec=$tmp/dep-$n
  if ! objcopy --dump-section ".dep-v0=$sec" "$bin" "$tmp/objcopy-out" 2>"$tmp/err" || [ ! -s "$sec" ]; then
    echo "FAIL: $what: no .dep-v0 section (built without cargo auditable, or stripped away): $(head -c 300 "$tmp/err")"
    fails=$((fails + 1)); return
  fi
  if python3 - "$sec" "$LOCK" "$root" "$what" <<'PY'; then :; else fails=$((fails + 1)); fi
import json, sys, tomllib, zlib

sec, lock_path, root, what = sys.argv[1:]
try:
    data = json.loads(zlib.decompress(open(sec, "rb").read()))
except Exception as e:  # noqa: BLE001 - any decoding problem is the failure
    print(f"FAIL: {what}: .dep-v0 is not zlib-compressed JSON: {e}")
    sys.exit(1)
with open(lock_path, "rb") as f:
    lock = tomllib.load(f)
locked = {}
for p in lock.get("package", []):
    src = p.get("source", "")
    kind = "crates.io" if src.startswith("registry+https://github.com/rust-lang/crates.io-index") \
        else ("local" if not src else "other")
    locked.setdefault(p["name"], set()).add((p["version"], kind))

pkgs = data.get("packages", [])
bad = []
roots = [p["name"] for p in pkgs if p.get("root")]
if roots != [root]:
    bad.append(f"root package is {roots}, expected [{root!r}]")
listed = {}
for p in pkgs:
    name, ver, src = p.get("name"), p.get("version"), p.get("source", "crates.io")
    listed.setdefault(name, set()).add(ver)
    kind = src if src in ("crates.io", "local") else "other"
    if (ver, kind) not in locked.get(name, set()):
        bad.append(f"{name} {ver} ({src}) is not in Cargo.lock (Cargo.lock has {sorted(locked.get(name, []))})")

must = {"pam_jit": ["ed25519-dalek", "jit-common", "pam-bindings"],
        "jit-host": ["ed25519-dalek", "jit-common", "rustix"],
        "jit-ca": ["axum", "rusqlite", "tokio", "jit-common"],
        "jit": ["ureq", "clap", "jit-common"]}[root]
never = {"pam_jit": ["axum", "tokio", "rusqlite", "ureq", "hyper"],
         "jit-host": ["axum", "rusqlite", "tokio-postgres"],
         "jit-ca": ["indicatif", "ssh-agent-client-rs", "signal-hook"],
         "jit": ["axum", "rusqlite", "tokio-postgres"]}[root]
for name in must:
    want = {v for v, _ in locked.get(name, set())}
    if not listed.get(name):
        bad.append(f"{name} is missing from the list")
    elif not listed[name] <= want:
        bad.append(f"{name} {sorted(listed[name])} differs from Cargo.lock's {sorted(want)}")
for name in never:
    if name in listed:
        bad.append(f"{name} is listed, but {root} does not use it")
if bad:
    for b in bad:
        print(f"FAIL: {what}: {b}")
    sys.exit(1)
show = ", ".join(f"{n} {sorted(listed[n])[0]}" for n in must)
print(f"PASS: {what}: .dep-v0 lists {len(pkgs)} crates at Cargo.lock's versions (root {root}; {show})")
PY
}

n_sec=0
for f in "$@"; do
  if [ ! -f "$f" ]; then echo "FAIL: $f: no such file"; fails=$((fails + 1)); continue; fi
  case $f in
    *.deb|*.rpm)
      x=$tmp/pkg-$((n_sec = n_sec + 1))
      mkdir -p "$x"
      abs=$(realpath "$f")
      if [[ $f == *.deb ]]; then
        dpkg-deb -x "$abs" "$x" || { echo "FAIL: $f: cannot unpack"; fails=$((fails + 1)); continue; }
      else
        (cd "$x" && { rpm2cpio "$abs" || true; } | cpio -id --quiet) ||
          { echo "FAIL: $f: cannot unpack (rpm2cpio | cpio)"; fails=$((fails + 1)); continue; }
      fi
      found=0
      while IFS= read -r -d '' b; do
        found=1
        check_program "$b" "$(basename "$f"):${b#"$x"}"
      done < <(find "$x" -type f \( -path '*/bin/*' -o -path '*/sbin/*' -o -path '*/security/*' \) \
        \( -name jit-ca -o -name jit -o -name jit-host -o -name pam_jit.so \) -print0 | sort -z)
      ((found)) || { echo "FAIL: $f: contains no jit program"; fails=$((fails + 1)); }
      ;;
    *) check_program "$f" "$f" ;;
  esac
done
((fails == 0))
