#!/usr/bin/env bash
# Interleaved A/B of two jit-ca binaries (BENCHMARKS.md, "Issue 18: before and after"):
#   bench/ab-ca.sh OLD_JIT_CA NEW_JIT_CA CLIENTS SECONDS ROUNDS
# bench/run.sh's CA setup (64 users, max_active_grants_per_user = 100000, the auto-approved
# load role, --spread-hosts load-), made once with OLD (NEW migrates it if its schema is
# newer); every round runs OLD then NEW on a fresh copy of that database, 1 s warm-up +
# SECONDS, and prints the CA's CPU (utime + stime) per certificate and its VmHWM.
# Needs target/release/jit-bench (cargo build --release -p jit-bench), jq, curl.
set -euo pipefail
[ $# = 5 ] || { echo "usage: bench/ab-ca.sh OLD_JIT_CA NEW_JIT_CA CLIENTS SECONDS ROUNDS" >&2; exit 2; }
OLD=$1 NEW=$2 CLIENTS=$3 SECS=$4 ROUNDS=$5
B=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/release
W=$(mktemp -d /var/tmp/jit-ab.XXXXXX); chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/lib-ca.sh"
bench_load_ca "$OLD" "$B/jit-bench" "$W/ca0" "$W/ids"
port=$((27500 + $$ % 1000))
for r in $(seq $ROUNDS); do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    rm -rf $W/ca; cp -a $W/ca0 $W/ca
    port=$((port+1))
    MALLOC_ARENA_MAX=2 $bin serve --dir $W/ca --listen 127.0.0.1:$port >$W/ca.log 2>&1 & pid=$!
    for _ in $(seq 100); do curl -fsS http://127.0.0.1:$port/v1/health >/dev/null 2>&1 && break; sleep 0.1; done
    c0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$("$B/jit-bench" issue --server http://127.0.0.1:$port --key-dir $W/ids --users 64 --role load --clients $CLIENTS --seconds $SECS --warmup 1 --spread-hosts load-)
    c1=$(awk '{print $14+$15}' /proc/$pid/stat)
    tck=$(getconf CLK_TCK)
    ok=$(jq -r '.all_ok' <<<"$out"); rate=$(jq -r '.per_s // .rate // empty' <<<"$out" 2>/dev/null || true)
    rss=$(awk '$1=="VmHWM:"{print $2}' /proc/$pid/status)
    kill $pid; wait $pid 2>/dev/null || true
    echo "round $r $v clients=$CLIENTS certs=$ok cpu_us_per_cert=$(awk -v a=$c0 -v b=$c1 -v t=$tck -v n=$ok 'BEGIN{printf "%.0f",(b-a)/t*1e6/n}') hwm_kb=$rss"
  done
done
