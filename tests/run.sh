#!/usr/bin/env bash
# Runs every test: formatting, lints, dependency checks, unit and integration tests (the
# root-only ones included), then the system tests (real sshd, sudo, sudo-rs, PAM, SQLite,
# packages) in private namespaces. Installs what is missing first, so it works on a fresh
# Debian 12 machine (as root). Every step runs under a (generous) timeout: a hang fails
# that step instead of stalling the suite.
#
#   tests/run.sh            everything
#   tests/run.sh system     only the system tests (after a build)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

timeout 3600 bash tests/install-deps.sh || { echo "install-deps failed"; exit 1; }

passed=0 failed=0 failures=()
step() { # name seconds command...
  local name=$1 secs=$2; shift 2
  echo
  echo "=== $name"
  local t0=$SECONDS rc=0
  # --kill-after: a step that ignores TERM is killed; --foreground is not used so that the
  # whole process group of the step gets the signal.
  timeout --kill-after=30 "$secs" "$@" || rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - t0)) s)"
  else
    ((rc == 124)) && echo "--- TIMEOUT after ${secs} s: $name"
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - t0)) s)"
  fi
}

# A step that runs in the background, beside the steps that follow, at the lowest CPU
# priority (nice 19: it takes only what they leave idle), so that the suite stays under an
# hour on 2 cores. Its output is printed, and its result counted, where bg_wait is called.
bg_dir=$(mktemp -d /tmp/jit-run-bg.XXXXXX)
trap 'rm -rf "$bg_dir"' EXIT
declare -A bg_pid=() bg_t0=()
bg_start() { # name seconds command...
  local name=$1 secs=$2 key; shift 2
  key=$(printf '%s' "$name" | tr -c 'A-Za-z0-9' _)
  echo
  echo "=== $name: started in the background (nice 19); its output follows when it ends"
  ( rc=0
    timeout --kill-after=30 "$secs" nice -n 19 "$@" > "$bg_dir/$key.log" 2>&1 || rc=$?
    echo "$rc" > "$bg_dir/$key.rc" ) &
  bg_pid[$key]=$! bg_t0[$key]=$SECONDS
}
bg_wait() { # name seconds (the same as bg_start's)
  local name=$1 secs=$2 key rc
  key=$(printf '%s' "$name" | tr -c 'A-Za-z0-9' _)
  wait "${bg_pid[$key]}" 2>/dev/null
  rc=$(cat "$bg_dir/$key.rc" 2>/dev/null || echo 1)
  echo
  echo "=== $name (ran in the background)"
  cat "$bg_dir/$key.log" 2>/dev/null
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - bg_t0[$key])) s since it started)"
  else
    [ "$rc" = 124 ] && echo "--- TIMEOUT after ${secs} s: $name"
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - bg_t0[$key])) s since it started)"
  fi
}

what=${1:-all}
if [ "$what" = all ]; then
  step "cargo fmt --check" 600 cargo fmt --all --check
  # The module's own build (jit-common without `write` and `syslog`) is linted too: the
  # workspace build above unifies those features on.
  step "cargo clippy (pam_jit alone)" 1800 cargo clippy -p pam_jit --locked -- -D warnings
  step "cargo clippy" 3600 cargo clippy --workspace --all-targets --locked -- -D warnings
  # Unused and disallowed dependencies, licences, advisories (cargo machete, cargo deny).
  step "dependencies (tests/deps.sh)" 1800 bash tests/deps.sh
  # --include-ignored: the tests marked #[ignore = "needs root"] run too (this suite runs
  # as root); a root-only test never passes by returning early. The web page's browser
  # tests are part of it (ssh-ca/server/tests/browser, jit-test-kit's cdp: Debian's headless
  # chromium from install-deps.sh); their one 62 s wait runs beside the binary's other tests.
  # Tests that need PostgreSQL live in modules named `pg` (`--skip pg::`): they run in the
  # next step, against a private cluster, with the api/cli tests again on PostgreSQL.
  step "cargo test (unit + integration)" 5400 cargo test --workspace --locked -- --include-ignored --skip pg::
  step "cargo test on PostgreSQL (tests/pg-tests.sh)" 3600 bash tests/pg-tests.sh
  # The shipped alerting rules: valid, and each alert fires and stays quiet as its tests say.
  step "prometheus rules (promtool)" 300 sh -c 'promtool check rules packaging/prometheus/jit.rules.yml && promtool test rules packaging/prometheus/jit.rules.test.yml'
  # pam_jit.mtail (the log metrics behind JitSudoDenialBurst, JitBreakGlassUsed) run by the
  # real mtail on lines the module's logline code builds.
  step "log metrics (tests/mtail.sh)" 300 bash tests/mtail.sh
  # install-deps.sh never stops or disables a Prometheus server it did not install.
  step "install-deps guard (tests/install-deps-guard.sh)" 300 bash tests/install-deps-guard.sh
fi
# Every release build goes through packaging/release-env.sh (cargo auditable, path remapping,
# SOURCE_DATE_EPOCH): the same command as packaging/build.sh and bench/, so what the system
# tests run is what ships and nothing is compiled twice with other flags. Debug builds (clippy,
# cargo test above) keep their own environment.
step "release build" 3600 bash -c 'source packaging/release-env.sh && jit_release_build --workspace'
# The shipped pam_jit.so is built on its own: a workspace build unifies features, which
# would compile jit-common's `write` and `syslog` features into it (01-invariants.sh checks).
step "release build: pam_jit alone" 1800 bash tests/build-module.sh
export JIT_BIN_DIR=$ROOT/target/release
# The reproducibility check builds the host package twice in clones of HEAD (its own target
# dirs and, for one, its own CARGO_HOME): nothing the steps below read or write. It starts
# now and is waited for at the end.
repro=packaging/repro.sh
[ -e "$repro" ] && bg_start "$repro" 3600 bash "$repro"
for t in tests/system/*.sh; do
  [ -e "$t" ] || continue
  step "system: $(basename "$t" .sh)" 1800 bash "$t"
done
for extra in packaging/test.sh bench/smoke.sh fuzz/smoke.sh \
    packaging/repo-test.sh packaging/meta-test.sh packaging/upgrade-test.sh; do
  [ -e "$extra" ] && step "$extra" 3600 bash "$extra"
done
[ -e "$repro" ] && bg_wait "$repro" 3600

echo
if ((failed)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "suite: $passed passed, $failed failed"
((failed == 0))
