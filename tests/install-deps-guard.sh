#!/usr/bin/env bash
# tests/install-deps.sh must never stop or disable a Prometheus server it did not install
# (a developer's or a CI runner's real one): it runs here with every program it calls
# replaced by a stub that records its arguments (dpkg-query, apt-get, systemctl, service,
# promtool, mtail, cargo and the cargo tools), in a private mount namespace with a tmpfs over
# /usr/sbin (the policy-rc.d it may create), so nothing on this machine is installed,
# stopped or changed. Needs root (unshare). Usage: tests/install-deps-guard.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${JIT_GUARD_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "install-deps-guard.sh: must run as root (unshare)" >&2; exit 1; }
  JIT_GUARD_NS=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
mount -t tmpfs -o mode=0755 jit-guard /usr/sbin
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

stubs=$W/bin; mkdir -p "$stubs" "$W/tools/bin" "$W/home"
stub() { # NAME BODY
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n%s\n' "$1" "$W" "$2" > "$stubs/$1"
  chmod 755 "$stubs/$1"
}
# dpkg-query reports every package installed except those listed in $W/absent.
stub dpkg-query 'for a; do p=$a; done; grep -qx "$p" "'"$W"'/absent" 2>/dev/null && exit 1; printf "install ok installed"'
for p in apt-get systemctl service promtool mtail cargo cargo-fuzz; do stub "$p" 'exit 0'; done
stub cargo-deny 'echo "cargo-deny 0.20.2"'
stub cargo-machete 'echo "cargo-machete 0.9.2"'
printf '#!/bin/sh\n' > "$W/tools/bin/sudo"; chmod 755 "$W/tools/bin/sudo"

run() { # ABSENT-PACKAGES...: runs install-deps.sh, sets CALLS
  : > "$W/calls"; printf '%s\n' "$@" > "$W/absent"
  HOME=$W/home JIT_TEST_TOOLS=$W/tools PATH="$stubs:/usr/bin:/bin" \
    bash "$ROOT/tests/install-deps.sh" >"$W/out" 2>&1 || { echo "install-deps.sh failed:"; cat "$W/out"; exit 1; }
  CALLS=$(cat "$W/calls")
}
fail=0
run
if grep -qE '^(systemctl|service) ' <<<"$CALLS"; then
  echo "FAILED: with prometheus already installed, install-deps.sh touched its service:"; grep -E '^(systemctl|service) ' <<<"$CALLS"; fail=1
else echo "ok: an already installed prometheus is left alone (no systemctl, no service)"; fi
if grep -q '^apt-get ' <<<"$CALLS"; then echo "FAILED: nothing missing, yet apt-get ran"; fail=1; fi

run prometheus
if grep -q '^apt-get install .*prometheus' <<<"$CALLS" && grep -q '^systemctl disable' <<<"$CALLS"; then
  echo "ok: a prometheus installed by this run is disabled"
else echo "FAILED: installed now, not disabled:"; echo "$CALLS"; fail=1; fi

run mtail
if grep -q '^apt-get install .*mtail' <<<"$CALLS" && ! grep -qE '^(systemctl|service) ' <<<"$CALLS"; then
  echo "ok: installing only mtail touches no service"
else echo "FAILED: mtail alone:"; echo "$CALLS"; fail=1; fi
run chromium fonts-dejavu-core
if grep -q '^apt-get install .*chromium fonts-dejavu-core' <<<"$CALLS"; then
  echo "ok: the browser tests' chromium (and a font) is installed from Debian"
else echo "FAILED: chromium missing, not installed:"; echo "$CALLS"; fail=1; fi
exit "$fail"
