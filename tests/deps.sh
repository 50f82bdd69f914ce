#!/usr/bin/env bash
# Dependency checks (needs the tools tests/install-deps.sh installs):
#
#   1. cargo deny (policy in deny.toml), offline: licences on the allowed list, no crate from
#      an unknown source, no duplicate versions beyond those listed.
#   2. cargo deny advisories: no known vulnerability, unmaintained or yanked crate, against
#      the RustSec advisory database fetched fresh (`cargo deny fetch db`) on every run; the
#      check itself never runs on a stale or missing database. JIT_DEPS_ADVISORIES says
#      what a failed FETCH means:
#        check (default)  the step fails;
#        auto             the step reports "ADVISORIES NOT CHECKED" (loudly, with the reason)
#                         and goes on: for machines without a route to the database, such
#                         as CI runners here; wherever the fetch works, findings still fail;
#        skip             advisories are not looked at (reported as not checked).
#   3. cargo machete: no dependency declared in any Cargo.toml (the workspace's and fuzz/'s)
#      that its crate's sources never use.
#
# Exit status: 0 when every check passes, 1 on any finding, a missing tool or a failed fetch.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

for tool in cargo-deny cargo-machete; do
  if ! command -v "$tool" >/dev/null; then
    echo "deps: $tool is not installed (bash tests/install-deps.sh)" >&2
    exit 1
  fi
done

status=0
fail() { echo "deps: FAILED: $*" >&2; status=1; }

echo "deps: $(cargo deny --version): licenses bans sources"
# --locked: check the Cargo.lock that is committed, never a re-resolved one.
cargo deny --locked --all-features check --show-stats licenses bans sources \
  || fail "cargo deny licenses/bans/sources (see above; policy in deny.toml)"

case ${JIT_DEPS_ADVISORIES:-check} in
  skip)
    echo "deps: ADVISORIES NOT CHECKED (JIT_DEPS_ADVISORIES=skip): known vulnerabilities," \
      "unmaintained and yanked crates were not looked for in this run" >&2
    ;;
  check | auto)
    echo "deps: $(cargo deny --version): advisories (fetching the advisory database)"
    if timeout 300 cargo deny --locked fetch db; then
      cargo deny --locked --all-features check --disable-fetch --show-stats advisories \
        || fail "cargo deny advisories (see the findings above)"
    elif [ "${JIT_DEPS_ADVISORIES:-check}" = auto ]; then
      echo "deps: ADVISORIES NOT CHECKED: the advisory database could not be fetched (no route" \
        "to it from this machine); JIT_DEPS_ADVISORIES=auto lets the run go on" >&2
    else
      fail "the advisory database could not be fetched (set JIT_DEPS_ADVISORIES=auto on a machine without a route to it)"
    fi
    ;;
  *)
    fail "JIT_DEPS_ADVISORIES must be check, auto or skip, not '${JIT_DEPS_ADVISORIES}'"
    ;;
esac

echo "deps: cargo-machete $(cargo machete --version 2>/dev/null)"
# target/ holds build outputs, never our manifests.
cargo machete --skip-target-dir \
  || fail "unused dependencies (remove them from the Cargo.toml named above)"

if ((status == 0)); then
  echo "deps: ok"
fi
exit "$status"
