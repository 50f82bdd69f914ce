#!/usr/bin/env bash
# Where the long run's memory sits (BENCHMARKS.md, "Issue 18: the misses"): the steps of
# bench/run.sh's row 5b on a fresh CA (a 5-s run, 40,000 certificates of 60 s at 8 clients,
# every grant ended + sweeps, 60 s idle), printing VmRSS, VmHWM and the anonymous memory
# (smaps_rollup) after each, for a CA started with the given environment:
#   bench/long-rss.sh LABEL [VAR=VALUE...]
#   e.g. bench/long-rss.sh shipped MALLOC_ARENA_MAX=2
# Needs target/release/{jit-ca,jit-bench} (cargo build --release), curl; about 4 minutes.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/long-rss.sh LABEL [VAR=VALUE...]" >&2; exit 2; }
LABEL=$1; shift
B=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}/release
W=$(mktemp -d /var/tmp/jit-lr.XXXXXX); chmod 755 "$W"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$W"' EXIT
. "$(dirname "$0")/lib-ca.sh"
bench_load_ca "$B/jit-ca" "$B/jit-bench" "$W/ca" "$W/ids"
port=$((28000 + $$ % 1000))
env "$@" "$B/jit-ca" serve --dir $W/ca --listen 127.0.0.1:$port >$W/ca.log 2>&1 & pid=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:$port/v1/health >/dev/null 2>&1 && break; sleep 0.1; done
kib() { awk -v k="$1:" '$1==k{print $2}' /proc/$pid/status; }
anon() { awk '$1=="Anonymous:"{print $2}' /proc/$pid/smaps_rollup; }
run() { "$B/jit-bench" issue --server http://127.0.0.1:$port --key-dir $W/ids --users 64 --role load --clients 8 --spread-hosts load- --duration-secs 60 "$@" >/dev/null; }
run --seconds 5 --warmup 0
echo "$LABEL R0 rss=$(kib VmRSS) anon=$(anon)"
run --requests 40000 --warmup 0 --seconds 3600
echo "$LABEL long rss=$(kib VmRSS) hwm=$(kib VmHWM) anon=$(anon)"
sleep 91
echo "$LABEL expired rss=$(kib VmRSS) hwm=$(kib VmHWM) anon=$(anon)"
sleep 60
echo "$LABEL idle rss=$(kib VmRSS) hwm=$(kib VmHWM) anon=$(anon) threads=$(awk '$1=="Threads:"{print $2}' /proc/$pid/status)"
echo "$LABEL sweeps that expired something: $(grep -c 'sweep: expired' "$W/ca.log" || true)"
