#!/usr/bin/env bash
# Does the web interface (issue 16) add latency to issuance? Measures the latency of a
# human-approved issuance (signed POST /v1/requests, the approver's signed POST .../approve,
# the requester's signed GET .../certificate: p50/p99 from the scheduled start, open loop)
# against a real `jit-ca serve` on loopback, in three conditions taken in turn:
#   without  no web session;
#   paced    SESSIONS logged-in sessions each loading /ui/pending, /ui/access and a request
#            page (/ui/requests/ID) in turn at
#            PAGE_RATE pages/s (busy people: 8 x 2 pages/s by default);
#   flood    the same sessions loading pages as fast as they are answered (the worst case:
#            the pages then compete with issuance for the CPU).
# Prints one table; see BENCHMARKS.md. Tests never assert timings; this script measures.
#
#   bench/web.sh            4 rounds of 10 s per condition (about 3 minutes after the build)
#   bench/web.sh --smoke    1 round of 1 s (checks that every step works)
#
# Environment: CARGO_TARGET_DIR (default target/), JIT_BENCH_WORK (default: a fresh directory
# under /var/tmp, on disk so SQLite's fsyncs are real), JIT_BENCH_KEEP=1 keeps it,
# JIT_WEB_RATE (issuances per second, default 50), JIT_WEB_SESSIONS (default 8),
# JIT_WEB_PAGE_RATE (pages per second per paced session, default 2), JIT_WEB_DURATION (each
# elevation's length, default 2 s: about RATE x 2 in force), JIT_WEB_ROUNDS, JIT_WEB_SECS.
# Needs curl and jq. No root: nothing outside the work directory is touched, and everything
# listens on 127.0.0.1 only; the web load refuses any other address.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if ((SMOKE)); then
  ROUNDS=1 SECS=1 WARM=0.3 RATE=20 SESSIONS=2 PAGE_RATE=2 DURATION=60 FILL=1
else
  ROUNDS=${JIT_WEB_ROUNDS:-4} SECS=${JIT_WEB_SECS:-10} WARM=1 RATE=${JIT_WEB_RATE:-50}
  SESSIONS=${JIT_WEB_SESSIONS:-8} PAGE_RATE=${JIT_WEB_PAGE_RATE:-2}
  DURATION=${JIT_WEB_DURATION:-2} FILL=${JIT_WEB_DURATION:-2}
fi
# Enough requesters that none has a request still pending when its next one starts (a user
# may have one pending request per role).
REQUESTERS=64 APPROVERS=2

die() { echo "bench/web: $*" >&2; exit 1; }
log() { echo "bench/web: $*" >&2; }
for t in jq curl; do command -v "$t" >/dev/null || die "$t is missing: run tests/install-deps.sh"; done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
log "building release binaries (packaging/release-env.sh: jit_release_build)"
# The release build of tests/run.sh and packaging/build.sh (see bench/run.sh).
(source "$ROOT/packaging/release-env.sh" &&
  jit_release_build -q --workspace --bin jit-ca --bin jit-bench) >&2
BIN=$TARGET/release

WORK=${JIT_BENCH_WORK:-$(mktemp -d /var/tmp/jit-web-bench.XXXXXX)}
mkdir -p "$WORK"
CA_PID= LOAD_PID=
cleanup() {
  for p in "$LOAD_PID" "$CA_PID"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  if [ "${JIT_BENCH_KEEP:-0}" != 1 ] && [ -z "${JIT_BENCH_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
RAW=$WORK/web-results.jsonl
: > "$RAW"

CA=$WORK/ca
"$BIN/jit-ca" init --dir "$CA" >/dev/null
sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$CA/config.toml"
# The web sessions approve the role and are auditors: their pages list every pending request
# and every active elevation (the most work a page does).
cat > "$CA/policy.toml" <<'POLICY'
auditors = ["group:web"]

[roles.approved]
principals = []
hosts = ["load-*"]
sudo = true
max_duration = "1h"
requesters = ["group:bench"]
approvers = ["group:approvers", "group:web"]
approvals = 1
require_reason = false
POLICY
"$BIN/jit-bench" keys --out "$WORK/ids" --count "$REQUESTERS" >/dev/null
"$BIN/jit-bench" keys --out "$WORK/ids" --count "$APPROVERS" --prefix appr >/dev/null
"$BIN/jit-bench" keys --out "$WORK/ids" --count "$SESSIONS" --prefix web >/dev/null
add() { # prefix count group
  for ((i = 0; i < $2; i++)); do
    n=$(printf '%s%02d' "$1" "$i")
    "$BIN/jit-ca" user add "$n" --key "$WORK/ids/$n.pub" --group "$3" --dir "$CA" >/dev/null
  done
}
add bench "$REQUESTERS" bench
add appr "$APPROVERS" approvers
add web "$SESSIONS" web

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=$((20000 + $$ % 20000))
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
SERVER=http://127.0.0.1:$PORT
"$BIN/jit-ca" serve --dir "$CA" --listen "127.0.0.1:$PORT" >"$WORK/ca.log" 2>&1 &
CA_PID=$!
for _ in $(seq 100); do
  curl -fsS "$SERVER/v1/health" >/dev/null 2>&1 && break
  kill -0 "$CA_PID" 2>/dev/null || { cat "$WORK/ca.log" >&2; die "jit-ca serve exited"; }
  sleep 0.1
done
curl -fsS "$SERVER/v1/health" >/dev/null || die "jit-ca did not answer on $SERVER"

# Each elevation lasts DURATION seconds, so the number in force (what the access page lists
# to the sessions, who are auditors) settles at about RATE x DURATION and is the same for every
# condition; a first unmeasured run of DURATION seconds fills it.
issue() { # name [seconds]
  local out
  out=$("$BIN/jit-bench" issue --server "$SERVER" --key-dir "$WORK/ids" --users "$REQUESTERS" \
    --role approved --spread-hosts load- --approver-prefix appr --approvers "$APPROVERS" \
    --duration-secs "$DURATION" --rate "$RATE" --seconds "${2:-$SECS}" --warmup "$WARM")
  [ "$(jq -r '.errors' <<<"$out")" = 0 ] || die "$1: errors: $out"
  printf '{"name":"%s","result":%s}\n' "$1" "$out" >> "$RAW"
}
with_web() { # name [rate]
  local rate=()
  [ -n "${2:-}" ] && rate=(--rate "$2")
  "$BIN/jit-bench" web-load --server "$SERVER" --key-dir "$WORK/ids" --prefix web \
    --sessions "$SESSIONS" "${rate[@]}" \
    --seconds "$(awk -v s="$SECS" -v w="$WARM" 'BEGIN { print s + w + 1 }')" > "$WORK/load.json" &
  LOAD_PID=$!
  sleep 0.5 # the sessions log in and start loading pages
  kill -0 "$LOAD_PID" 2>/dev/null || die "the web load stopped at once: $(cat "$WORK/load.json")"
  issue "$1"
  wait "$LOAD_PID" || die "the web load failed: $(cat "$WORK/load.json")"
  LOAD_PID=
  printf '{"name":"%s-pages","result":%s}\n' "$1" "$(cat "$WORK/load.json")" >> "$RAW"
}
run() { # condition round
  case $1 in
    without) log "round $2/$ROUNDS: without web load"; issue "without-$2" ;;
    paced) log "round $2/$ROUNDS: $SESSIONS web sessions at $PAGE_RATE pages/s each"; with_web "paced-$2" "$PAGE_RATE" ;;
    flood) log "round $2/$ROUNDS: $SESSIONS web sessions as fast as answered"; with_web "flood-$2" ;;
  esac
}
log "filling: $FILL s of issuance (elevations of $DURATION s) before measuring"
issue fill "$FILL"
# Rotate the order (without paced flood, paced flood without, ...) so a drift of the machine
# falls on every condition alike.
CONDITIONS=(without paced flood)
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < 3; k++)); do
    run "${CONDITIONS[$(((r - 1 + k) % 3))]}" "$r"
  done
done

# The table: per condition, the median over rounds of p50 and p99, and each round's values.
jq -rs --arg rate "$RATE" --arg sessions "$SESSIONS" --arg page_rate "$PAGE_RATE" '
  def r(x): (x * 100 | round) / 100;
  def med(xs): (xs | sort) as $s | $s[($s | length) / 2 | floor];
  def runs($c): map(select(.name | test("^" + $c + "-[0-9]+$")));
  def pages($c): map(select(.name | test("^" + $c + "-[0-9]+-pages$")));
  . as $all |
  "issuance latency: request + approve + certificate (3 signed calls), open loop at \($rate)/s",
  "condition                         p50 ms (rounds)              p99 ms (rounds)              pages/s  KiB/page",
  (["without", "paced", "flood"][] as $c |
    ($all | runs($c)) as $x | ($all | pages($c)) as $p |
    ("\($c) " + (if $c == "without" then "(no session)" elif $c == "paced" then "(\($sessions) x \($page_rate) pages/s)" else "(\($sessions) sessions, unpaced)" end) | . + (" " * (34 - length))) +
    "\(r(med([$x[].result.latency.p50_ms]))) (\([$x[].result.latency.p50_ms | r(.)] | map(tostring) | join(" ")))" +
    "   \(r(med([$x[].result.latency.p99_ms]))) (\([$x[].result.latency.p99_ms | r(.)] | map(tostring) | join(" ")))" +
    "   " + (if ($p | length) > 0 then "\(med([$p[].result.pages_per_s]) | round)  \(med([$p[].result.bytes_per_page]) / 1024 | round)" else "-" end)),
  "page errors: \([$all[] | select(.name | endswith("-pages")) | .result.errors] | add // 0); issuance errors: \([$all[] | select(.name | endswith("-pages") | not) | .result.errors] | add)"
' "$RAW"
if [ "${JIT_BENCH_KEEP:-0}" = 1 ] || [ -n "${JIT_BENCH_WORK:-}" ]; then log "raw results: $RAW"; fi
