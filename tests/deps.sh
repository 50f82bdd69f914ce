#!/usr/bin/env bash
# Dependency checks (run by tests/run.sh; needs the tools tests/install-deps.sh installs):
#
#   1. cargo deny (deny.toml): licences on the allowed list, no known vulnerability, no
#      unmaintained or yanked crate, no crate from an unknown source, no duplicate versions
#      beyond those listed. The advisory database is fetched from the network each run; if
#      that fails, this check fails (it never passes on a stale or missing database).
#   2. cargo machete: no dependency declared in any Cargo.toml (the workspace's and fuzz/'s)
#      that its crate's sources never use.
#
# Exit status: 0 when both pass, 1 on any finding or when a tool is missing or fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

status=0
for tool in cargo-deny cargo-machete; do
  if ! command -v "$tool" >/dev/null; then
    echo "deps: $tool is not installed (bash tests/install-deps.sh)" >&2
    exit 1
  fi
done

echo "deps: cargo deny $(cargo deny --version 2>/dev/null | awk '{print $2}')"
# --locked: check the Cargo.lock that is committed, never a re-resolved one.
if ! cargo deny --locked --all-features check --show-stats licenses bans sources advisories; then
  echo "deps: FAILED: cargo deny (see above; policy in deny.toml)" >&2
  status=1
fi

echo "deps: cargo machete $(cargo machete --version 2>/dev/null)"
# target/ holds vendored build outputs, never our manifests.
if ! cargo machete --skip-target-dir; then
  echo "deps: FAILED: unused dependencies (remove them from the Cargo.toml named above)" >&2
  status=1
fi

if ((status == 0)); then
  echo "deps: ok"
fi
exit "$status"
