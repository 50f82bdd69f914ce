#!/usr/bin/env bash
# The long fuzz run: every target (or the ones named) for SECONDS_PER_TARGET (default one
# hour), one after another, on FUZZ_JOBS parallel workers each (default: half the cores).
# The growing corpus is kept in fuzz/target/corpus/<target>/ (not committed) so repeated
# runs continue where the last one stopped; crashes land in fuzz/artifacts/<target>/.
#
#   bash fuzz/run-long.sh                        # all targets, 1 h each
#   bash fuzz/run-long.sh 600 grant_signed_body  # one target, 10 min
#   FUZZ_JOBS=8 bash fuzz/run-long.sh 86400      # a day per target on a big machine
#
# Afterwards, minimise what was found and, if it adds coverage, fold a few small inputs
# into the committed seeds: cargo +nightly fuzz cmin <target> fuzz/target/corpus/<target>
set -uo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"
per_target=${1:-3600}
shift || true
jobs=${FUZZ_JOBS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
SANITIZER=${FUZZ_SANITIZER:-address}   # smoke.sh uses none (faster build); long runs use ASan

targets=("$@")
if ((${#targets[@]} == 0)); then mapfile -t targets < <(cargo +nightly fuzz list); fi
cargo +nightly fuzz build -O -a -s "$SANITIZER" || exit 1
export JIT_FUZZ_SCRATCH=$PWD/target/scratch
rm -rf "$JIT_FUZZ_SCRATCH"; mkdir -p -m 0755 "$JIT_FUZZ_SCRATCH"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t"
  echo "=== $t: ${per_target}s on $jobs worker(s)"
  if ! cargo +nightly fuzz run -O -a -s "$SANITIZER" "$t" "target/corpus/$t" "corpus/$t" -- \
      -max_total_time="$per_target" -timeout=5 -rss_limit_mb=2048 \
      -jobs="$jobs" -workers="$jobs" -print_final_stats=1; then
    failed+=("$t")
  fi
done
echo "fuzz/run-long.sh: ${#targets[@]} targets, failed: ${failed[*]:-none}"
ls artifacts/*/crash-* artifacts/*/timeout-* artifacts/*/oom-* 2>/dev/null
((${#failed[@]} == 0))
