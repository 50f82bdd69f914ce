#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each one briefly from the committed seed corpus.
# Exits non-zero if a target fails to build, crashes, hangs (-timeout) or leaks past the
# memory limit. Run by tests/run.sh (and so .ci/run); the long run is fuzz/run-long.sh.
#
#   bash fuzz/smoke.sh                 # every target, FUZZ_SECONDS (default 15) each
#   FUZZ_SECONDS=5 bash fuzz/smoke.sh grant_parse_verify host_match
#
# New inputs go to a throw-away directory: the committed corpus stays as it is. A crash is
# saved under fuzz/artifacts/<target>/ with the command that replays it.
set -uo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"
SECONDS_EACH=${FUZZ_SECONDS:-15}
# No sanitizer by default: the fuzzed code is safe Rust (common, ssh-ca and jit-host forbid
# `unsafe`; the only unsafe code is the PAM FFI in pam_jit/module/src, which no target
# reaches, and the small libc wrappers in pam_jit/core/src/sys.rs), so AddressSanitizer adds little but
# doubles the build (it also instruments the bundled SQLite). Panics, hangs (-timeout) and
# memory blow-ups (-rss_limit_mb) are still caught. The long run uses address.
SANITIZER=${FUZZ_SANITIZER:-none}
# -a (--debug-assertions): debug assertions and overflow checks on in the optimised build
# (fuzz/Cargo.toml's release profile says the same), so a broken invariant or an integer
# overflow is a crash, not a silent wrap.

die() { echo "fuzz/smoke.sh: $*" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is not installed; run tests/install-deps.sh (cargo install --locked cargo-fuzz)"
rustup toolchain list 2>/dev/null | grep -q '^nightly' \
  || die "no nightly toolchain (cargo fuzz needs -Zsanitizer); install one with rustup toolchain install nightly"

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo +nightly fuzz list) || die "cargo fuzz list failed"
fi
((${#targets[@]})) || die "no fuzz targets found"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Scratch state of the principals and API targets (a 0755 dir: the grant store and the CA
# data dir check their ancestors).
export JIT_FUZZ_SCRATCH=$work/scratch
chmod 0755 "$work"; mkdir -m 0755 "$JIT_FUZZ_SCRATCH"
echo "fuzz/smoke.sh: building the fuzz targets"
cargo +nightly fuzz build -O -a -s "$SANITIZER" >/dev/null 2>"$work/build.log" \
  || { tail -40 "$work/build.log"; die "build failed"; }

failed=()
total_runs=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "corpus/$t" "artifacts/$t"
  log=$work/$t.log
  # -timeout: one input taking over 5 s is a denial-of-service bug, reported as a crash.
  # -rss_limit_mb: unbounded allocation from small input is one too.
  cargo +nightly fuzz run -O -a -s "$SANITIZER" "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  total_runs=$((total_runs + ${runs:-0}))
  if ((rc != 0)); then
    failed+=("$t")
    echo "FAIL $t (exit $rc) after ${runs:-?} runs:"
    grep -E -A3 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -30
    echo "  replay: cargo +nightly fuzz run -O -a -s $SANITIZER $t fuzz/artifacts/$t/<crash file>"
  else
    echo "ok   $t: ${runs:-?} runs in ${SECONDS_EACH}s, seeds $(find "corpus/$t" -type f | wc -l), new inputs $(find "$work/$t" -type f | wc -l)"
  fi
done
echo "fuzz/smoke.sh: ${#targets[@]} targets, $total_runs runs, ${#failed[@]} failed"
((${#failed[@]} == 0))
