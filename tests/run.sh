#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and integration tests, then the system tests
# (real sshd, sudo, sudo-rs, PAM, SQLite, packages) in private namespaces.
# Installs what is missing first, so it works on a fresh Debian 12 machine (as root).
#
#   tests/run.sh            everything
#   tests/run.sh system     only the system tests (after a build)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

bash tests/install-deps.sh || { echo "install-deps failed"; exit 1; }

passed=0 failed=0 failures=()
step() { # name command...
  local name=$1; shift
  echo
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - t0)) s)"
  fi
}

what=${1:-all}
if [ "$what" = all ]; then
  step "cargo fmt --check" cargo fmt --all --check
  step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
  step "cargo test (unit + integration)" cargo test --workspace --locked
fi
step "release build" cargo build --workspace --release --locked
export JIT_BIN_DIR=$ROOT/target/release
for t in tests/system/*.sh; do
  [ -e "$t" ] || continue
  step "system: $(basename "$t" .sh)" bash "$t"
done
for extra in packaging/test.sh bench/smoke.sh fuzz/smoke.sh; do
  [ -e "$extra" ] && step "$extra" bash "$extra"
done

echo
if ((failed)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "suite: $passed passed, $failed failed"
((failed == 0))
