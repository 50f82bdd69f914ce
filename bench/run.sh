#!/usr/bin/env bash
# The jit benchmark suite: builds in release mode, runs every benchmark against the real
# programs (jit-ca serve with SQLite on disk, pam_jit.so through libpam, jit-host, ssh-keygen)
# and prints one table. See BENCHMARKS.md for what each line measures and the targets.
#
#   bench/run.sh            the full suite (about 8 minutes after the build: the memory fill
#                           to 100,000 grants and the long run take about 4)
#   bench/run.sh --smoke    the same steps, tiny durations, no targets (bench/smoke.sh)
#
# Environment: CARGO_TARGET_DIR (default: target/), JIT_BENCH_WORK (default: a fresh
# directory under /var/tmp, on disk so SQLite's fsyncs are real), JIT_BENCH_KEEP=1 keeps it,
# JIT_BENCH_JSON=FILE also writes every raw result as JSON lines, JIT_BENCH_SECS=N measured
# seconds per issuance run (default 6; e.g. 2 for a quick full run), JIT_BENCH_PG=0 skips
# the PostgreSQL rows (1b, 1c), JIT_BENCH_PG_PORTS=FROM-TO where its private cluster may
# listen (default 25400-25999), JIT_BENCH_LONG=0 skips the long-run row (a second CA, about 3
# minutes), JIT_BENCH_LONG_CERTS=N its certificates (default 40000), JIT_BENCH_RSS_TRACE=1
# samples the CA's VmRSS every 0.5 s into the JSON lines during the issuance rows,
# JIT_BENCH_MALLOC_ARENA_MAX=N the CA's malloc arena cap (default 2, as the shipped unit).
# Needs: root (pam_jit trusts root-owned files only), pamtester, libpam-wrapper, wrk,
# openssh-client, jq, curl, postgresql-15 (tests/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if ((SMOKE)); then
  SECS=1 WARM=0.3 RUNS=15 KEYGEN_RUNS=10 WRK_SECS=1 OTHERS=200 MINE=50 USERS=8 CLIENTS=(1 8) PG_CLIENTS=(8)
  FILL_GRANTS=2000 FETCH_NAMES=200 LONG_CERTS=500 LONG_GRANT_SECS=3 LONG_SWEEPS=1 LONG_IDLE=5 LONG_FRESH=1 AB_ROUNDS=1
else
  SECS=${JIT_BENCH_SECS:-6} WARM=1 RUNS=300 KEYGEN_RUNS=150 WRK_SECS=5 OTHERS=10000 MINE=50 USERS=64 CLIENTS=(1 8 64) PG_CLIENTS=(8 64)
  FILL_GRANTS=100000 FETCH_NAMES=20000 LONG_CERTS=${JIT_BENCH_LONG_CERTS:-40000} LONG_GRANT_SECS=60 LONG_SWEEPS=2 LONG_IDLE=60 LONG_FRESH=5 AB_ROUNDS=2
fi
LONG_BENCH=${JIT_BENCH_LONG:-1}
RSS_TRACE=${JIT_BENCH_RSS_TRACE:-0}
NPROC=$(nproc)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
PG_BENCH=${JIT_BENCH_PG:-1}

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (pam_jit.so and jit-host trust only root-owned files)"
for t in pamtester wrk ssh-keygen jq curl; do
  command -v "$t" >/dev/null || die "$t is missing: run tests/install-deps.sh"
done
PAM_WRAPPER_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1 || true)
[ -n "$PAM_WRAPPER_LIB" ] || die "libpam_wrapper.so is missing: run tests/install-deps.sh"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
echo "bench: building release binaries (packaging/release-env.sh: jit_release_build)" >&2
# The release build of tests/run.sh and packaging/build.sh (same environment, the workspace's
# feature resolution): the programs measured are the shipped ones, and nothing recompiles.
(source "$ROOT/packaging/release-env.sh" &&
  jit_release_build -q --workspace --bin jit-ca --bin jit --bin jit-host --bin jit-bench) >&2
bash "$ROOT/tests/build-module.sh" -q >&2
BIN=$TARGET/release
for b in jit-ca jit-host jit-bench libpam_jit.so; do
  [ -e "$BIN/$b" ] || die "$BIN/$b was not built"
done

WORK=${JIT_BENCH_WORK:-$(mktemp -d /var/tmp/jit-bench.XXXXXX)}
mkdir -p "$WORK"; chmod 0755 "$WORK"
CA_PID=
PG_CA_PIDS=()
PG_DIR=
RECV_PID=
cleanup() {
  if [ -n "$CA_PID" ]; then kill "$CA_PID" 2>/dev/null || true; wait "$CA_PID" 2>/dev/null || true; fi
  if [ -n "$RECV_PID" ]; then kill "$RECV_PID" 2>/dev/null || true; wait "$RECV_PID" 2>/dev/null || true; fi
  for p in "${PG_CA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "$PG_DIR" ]; then pg_stop "$PG_DIR" fast 2>/dev/null || true; fi
  if [ "${JIT_BENCH_KEEP:-0}" != 1 ] && [ -z "${JIT_BENCH_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

RAW=${JIT_BENCH_JSON:-$WORK/results.jsonl}
: > "$RAW"
record() { # name json
  printf '{"name":"%s","result":%s}\n' "$1" "$2" >> "$RAW"
}
log() { echo "bench: $*" >&2; }
j() { jq -r "$1" <<<"$2"; }

# ---------------------------------------------------------------------------------------
# The CA: on-disk SQLite, 64 registered users, an auto-approved role for the load and one
# for the host that the sync and login-hook benchmarks play.
CA=$WORK/ca
"$BIN/jit-ca" init --dir "$CA" >/dev/null
# The load keeps thousands of requests per user active: lift the per-user bound.
sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$CA/config.toml"
cat > "$CA/policy.toml" <<'EOF'
# Benchmark policy: every request is approved at once, so the load measures issuance.
[roles.load]
principals = []
hosts = ["load-*"]
sudo = true
max_duration = "1h"
requesters = ["group:bench"]
auto_approve = true
require_reason = false
extensions = ["permit-pty"]

[roles.hostgrants]
principals = []
hosts = ["bench-host"]
sudo = true
max_duration = "1h"
requesters = ["group:bench"]
auto_approve = true
require_reason = false
extensions = ["permit-pty"]
EOF
"$BIN/jit-bench" keys --out "$WORK/ids" --count "$USERS" >/dev/null
for ((i = 0; i < USERS; i++)); do
  n=$(printf 'bench%02d' "$i")
  "$BIN/jit-ca" user add "$n" --key "$WORK/ids/$n.pub" --group bench --dir "$CA" >/dev/null
done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=$((20000 + $$ % 20000))
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
SERVER=http://127.0.0.1:$PORT
# The CA runs with the malloc arena cap of the shipped unit (packaging/systemd/jit-ca.service:
# MALLOC_ARENA_MAX=2), so the memory rows measure what a packaged CA does.
# JIT_BENCH_MALLOC_ARENA_MAX=N changes it for a comparison (glibc's default is 8 x cores).
CA_ARENAS=${JIT_BENCH_MALLOC_ARENA_MAX:-2}
start_ca() { # DIR LOG: jit-ca serve on $PORT as CA_PID (the rows below read /proc/$CA_PID)
  MALLOC_ARENA_MAX=$CA_ARENAS "$BIN/jit-ca" serve --dir "$1" --listen "127.0.0.1:$PORT" >>"$2" 2>&1 &
  CA_PID=$!
  for _ in $(seq 300); do
    curl -fsS "$SERVER/v1/health" >/dev/null 2>&1 && break
    kill -0 "$CA_PID" 2>/dev/null || { cat "$2" >&2; die "jit-ca serve exited"; }
    sleep 0.1
  done
  curl -fsS "$SERVER/v1/health" >/dev/null || die "jit-ca did not answer on $SERVER"
}
stop_ca() {
  kill "$CA_PID"; wait "$CA_PID" 2>/dev/null || true; CA_PID=
}
start_ca "$CA" "$WORK/ca.log"

ca_cpu() { # utime+stime of the CA in seconds
  awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$CA_PID/stat"
}
ca_kib() { # field of /proc/PID/status in KiB
  awk -v f="$1:" '$1 == f { print $2 }' "/proc/$CA_PID/status"
}
metric() { # NAME [URL]: a value from the CA's /metrics (0 if absent)
  curl -fsS "${2:-$SERVER}/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { printf "%.0f\n", v + 0 }'
}
rss_trace() { # ROW PID: the CA's VmRSS every 0.5 s into the JSON lines, until killed
  local t0 k; t0=$(date +%s.%N)
  while k=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$2/status" 2>/dev/null) && [ -n "$k" ]; do
    record rss-trace "{\"row\":\"$1\",\"t_s\":$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'),\"vmrss_kib\":$k}"
    sleep 0.5
  done
}

# Disk sync latency where the database lives: every durable commit pays at least one.
FSYNC=$("$BIN/jit-bench" fsync --dir "$CA" --count $((SMOKE ? 10 : 100)))
record fsync "$FSYNC"

# ---------------------------------------------------------------------------------------
# 1. Issuance through the real API, closed loop at 1, 8, 64 clients.
commits() { # "batches changes" from the CA's metrics (group commit)
  curl -fsS "$SERVER/metrics" | awk '$1 == "jit_ca_commit_batches_total" { b = $2 }
    $1 == "jit_ca_commit_changes_total" { c = $2 } END { print b + 0, c + 0 }'
}
issue() { # name args...
  local name=$1; shift
  local c0 c1 m0 m1 out tp=
  if [ "$RSS_TRACE" = 1 ]; then rss_trace "$name" "$CA_PID" >/dev/null 2>&1 & tp=$!; fi
  c0=$(ca_cpu); m0=$(commits)
  out=$("$BIN/jit-bench" issue --server "$SERVER" --key-dir "$WORK/ids" --users "$USERS" "$@")
  c1=$(ca_cpu); m1=$(commits)
  if [ -n "$tp" ]; then kill "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true; fi
  out=$(jq -c --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
    --argjson batch "$(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " ");
      db = y[1] - x[1]; printf "%.1f", (db > 0 ? (y[2] - x[2]) / db : 0) }')" \
    '. + {server_cpu_s: $cpu, server_cpu_us_per_cert: ($cpu * 1e6 / (.all_ok + 0.000001)),
          mean_commit_batch: $batch}' <<<"$out")
  [ "$(jq -r '.ok // 0' <<<"$out")" -gt 0 ] || die "issuance run $name issued no certificate: $out"
  record "$name" "$out"
  echo "$out"
}
declare -A ISSUE
for c in "${CLIENTS[@]}"; do
  log "issuance, $c concurrent clients"
  ISSUE[$c]=$(issue "issue-$c" --role load --spread-hosts load- --clients "$c" --seconds "$SECS" --warmup "$WARM")
done
CA_HWM_KIB=$(ca_kib VmHWM)
CA_RSS_KIB=$(ca_kib VmRSS)
record ca-memory "{\"vmhwm_kib\":$CA_HWM_KIB,\"vmrss_kib\":$CA_RSS_KIB}"

log "issuance, open loop at 500 requests/s"
OPEN=$(issue issue-open-500 --role load --spread-hosts load- --rate "$((SMOKE ? 100 : 500))" --seconds "$SECS" --warmup "$WARM")
# For comparison: clients that fetch the certificate with a second signed call.
log "issuance, ${CLIENTS[-1]} clients, POST then GET (two signed calls per certificate)"
FETCH=$(issue "issue-${CLIENTS[-1]}-fetch" --role load --spread-hosts load- --clients "${CLIENTS[-1]}" --fetch --seconds "$SECS" --warmup "$WARM")

# 5. Memory with FILL_GRANTS active grants, after FETCH_NAMES distinct host names fetched
# their grants documents (load-0 .. load-999 have grants, the rest none). VmHWM is reset
# first (clear_refs 5), so the VmHWM read after is the peak of this phase.
ISSUED=$(metric jit_ca_certificates_issued_total)
FILL=$((FILL_GRANTS - ISSUED))
echo 5 > "/proc/$CA_PID/clear_refs" 2>/dev/null || log "cannot reset VmHWM: the phase peak is the process peak"
if ((FILL > 0)); then
  log "memory: filling to $FILL_GRANTS active grants ($FILL more certificates)"
  # Active for an hour (the role's longest): every grant issued so far is still active.
  issue memory-fill --role load --spread-hosts load- --clients 64 --requests "$FILL" \
    --duration-secs 3600 --warmup 0 --seconds 3600 >/dev/null
fi
ACTIVE=$(metric jit_ca_certificates_issued_total)
log "memory: $FETCH_NAMES host names fetch their grants documents"
HOSTS=$("$BIN/jit-bench" hosts --server "$SERVER" --prefix load- --count "$FETCH_NAMES" --concurrency 8)
record host-fetches "$HOSTS"
[ "$(j '.errors' "$HOSTS")" = 0 ] || die "host fetches failed: $HOSTS"
MEM_RSS_KIB=$(ca_kib VmRSS) MEM_HWM_KIB=$(ca_kib VmHWM)
record ca-memory-fetched "{\"issued\":$ACTIVE,\"names\":$FETCH_NAMES,\"vmrss_kib\":$MEM_RSS_KIB,\"vmhwm_kib\":$MEM_HWM_KIB,\"nonces\":$(metric jit_ca_nonces_remembered),\"cache_documents\":$(metric jit_ca_host_grants_cache_documents),\"cache_bytes\":$(metric jit_ca_host_grants_cache_bytes),\"cache_names\":$(metric jit_ca_host_grants_cache_names)}"

# ---------------------------------------------------------------------------------------
# 2. Baseline: ssh-keygen -s, one process per certificate, same CA key type (ed25519).
log "baseline: ssh-keygen -s, one process per certificate"
cp "$WORK/ids/bench00.pub" "$WORK/kg-user.pub"
KEYGEN=$("$BIN/jit-bench" exec --runs "$KEYGEN_RUNS" \
  --cmd "ssh-keygen -q -s $CA/keys/user_ca -I jit:bench:bench00 -n bench00 -V -1m:+1h -z 7 -O permit-pty $WORK/kg-user.pub")
record ssh-keygen "$KEYGEN"
ssh-keygen -L -f "$WORK/kg-user-cert.pub" >/dev/null || die "ssh-keygen made no certificate"
# The same with one process per core at once, as the CA uses every core: each worker signs
# its own copy of the key (ssh-keygen writes <pub>-cert.pub next to it).
log "baseline: ssh-keygen -s, $NPROC processes at once"
for ((w = 0; w < NPROC; w++)); do cp "$WORK/ids/bench00.pub" "$WORK/kg-user-$w.pub"; done
KEYGEN_N=$("$BIN/jit-bench" exec --runs "$KEYGEN_RUNS" --parallel "$NPROC" \
  --cmd "ssh-keygen -q -s $CA/keys/user_ca -I jit:bench:bench00 -n bench00 -V -1m:+1h -z 7 -O permit-pty $WORK/kg-user-{w}.pub")
record ssh-keygen-parallel "$KEYGEN_N"
ssh-keygen -L -f "$WORK/kg-user-$((NPROC - 1))-cert.pub" >/dev/null || die "ssh-keygen --parallel made no certificate"

# ---------------------------------------------------------------------------------------
# Host side: host.toml trusting this CA, a grant store, a host called bench-host.
HOST=$WORK/host
mkdir -p "$HOST/state"
chmod 0755 "$HOST" "$HOST/state"
cat > "$HOST/host.toml" <<EOF
mode = "enforce"
services = ["sudo"]
clock_skew_secs = 60
revocation_max_age_secs = 43200   # the default; jit-host sync below installs a fresh list
state_dir = "$HOST/state"
grant_writer = "daemon"
hostnames = ["bench-host"]
user_ca_keys = ["$(cat "$CA/keys/user_ca.pub")"]
grant_keys = ["$(cat "$CA/keys/grant.pub")"]
break_glass_keys = []
EOF
chmod 0644 "$HOST/host.toml"

# 3. Sudo gate: pamtester through pam_wrapper (no /etc change), pam_permit vs pam_jit, with
# OTHERS grants of other users and MINE of the invoking user. pam_jit allows root at once
# (nothing to elevate), so pamtester runs as the existing unprivileged user `nobody`.
# The store is then indexed the way a real host's sync timer indexes it: the real
# `jit-host sync` as root (revocation list and KRL from the CA, then a verified-grant record
# per stored grant in root's <state_dir>/verified). The last row runs without the records
# (every candidate's Ed25519 signature verified in the module).
GATE_USER=nobody
GATE_UID=$(id -u "$GATE_USER") GATE_GID=$(id -g "$GATE_USER")
log "sudo gate: $OTHERS grants of other users, $MINE of this user"
"$BIN/jit-bench" grants --key "$CA/keys/grant" --state-dir "$HOST/state" --user "$GATE_USER" \
  --host bench-host --mine "$MINE" --others "$OTHERS" >/dev/null
log "sudo gate: jit-host sync (root) indexes the store"
"$BIN/jit-host" --config "$HOST/host.toml" sync --server "$SERVER" >&2 || die "jit-host sync failed"
[ -f "$HOST/state/revocations" ] || die "jit-host sync installed no revocation list"
GATE_RECORDS=$(find "$HOST/state/verified" -maxdepth 1 -type f | wc -l)
[ "$GATE_RECORDS" -gt "$OTHERS" ] || die "jit-host sync wrote $GATE_RECORDS verified-grant records for $((OTHERS + MINE)) grants"
mkdir -p "$WORK/pam-permit" "$WORK/pam-jit" "$WORK/pam-access"
printf 'account required pam_permit.so\n' > "$WORK/pam-permit/sudo"
printf 'account requisite %s config=%s\naccount required pam_permit.so\n' \
  "$BIN/libpam_jit.so" "$HOST/host.toml" > "$WORK/pam-jit/sudo"
# For comparison, in the same rounds: pam_access with a one-line table allowing everyone.
printf '+:ALL:ALL\n' > "$WORK/access.conf"
printf 'account required pam_access.so accessfile=%s\naccount required pam_permit.so\n' \
  "$WORK/access.conf" > "$WORK/pam-access/sudo"
for d in pam-permit pam-jit pam-access; do cp "$WORK/$d/sudo" "$WORK/$d/other"; done
chmod 0755 "$WORK/pam-permit" "$WORK/pam-jit" "$WORK/pam-access"; chmod 0644 "$WORK"/pam-*/* "$WORK/access.conf"
AS_USER="setpriv --reuid=$GATE_UID --regid=$GATE_GID --clear-groups"
PAMTEST="pamtester -I ruser=$GATE_USER sudo $GATE_USER acct_mgmt"
gate() { # paired runs: pam_permit, pam_jit, pam_access
  "$BIN/jit-bench" exec --runs "$RUNS" --env "LD_PRELOAD=$PAM_WRAPPER_LIB" --env PAM_WRAPPER=1 \
    --cmd "$AS_USER env PAM_WRAPPER_SERVICE_DIR=$WORK/pam-permit $PAMTEST" \
    --cmd "$AS_USER env PAM_WRAPPER_SERVICE_DIR=$WORK/pam-jit $PAMTEST" \
    --cmd "$AS_USER env PAM_WRAPPER_SERVICE_DIR=$WORK/pam-access $PAMTEST"
}
GATE=$(gate)
record sudo-gate "$GATE"
# The common case: the user's only grant here is the covering one (10,000 others stay).
rm -f "$HOST/state/grants/$GATE_USER"/a-*.grant
GATE1=$(gate)
record sudo-gate-1 "$GATE1"
# The same without root's records: the module verifies the covering grant's signature.
mv "$HOST/state/verified" "$HOST/state/verified.off"
GATE1C=$(gate)
record sudo-gate-1-cold "$GATE1C"
mv "$HOST/state/verified.off" "$HOST/state/verified"
# A flooded store: 100,000 files in the user's directory, the covering grant among them.
# The module refuses to look through that many (a denial, asserted in
# tests/system/50-host-bad-inputs.sh); here only how long the refusal takes is measured and
# reported (tests never judge timings).
log "sudo gate: 100,000 files in the user's directory (denied)"
(cd "$HOST/state/grants/$GATE_USER" && seq -f 'g-%06.0f.grant' 100000 | xargs touch)
FLOOD=$("$BIN/jit-bench" exec --runs "$((SMOKE ? 3 : 30))" --expect 1 \
  --env "LD_PRELOAD=$PAM_WRAPPER_LIB" --env PAM_WRAPPER=1 \
  --cmd "$AS_USER env PAM_WRAPPER_SERVICE_DIR=$WORK/pam-jit $PAMTEST") \
  || die "pam_jit.so did not deny a user directory of 100,000 files"
record sudo-gate-flood "$FLOOD"
find "$HOST/state/grants/$GATE_USER" -name 'g-*.grant' -delete
# The same loop must deny without a grant (so the figure is of a real decision), even with
# the removed grant's record still in place.
rm -f "$HOST/state/grants/$GATE_USER/z-covering.grant"
if $AS_USER env LD_PRELOAD="$PAM_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$WORK/pam-jit" \
  $PAMTEST >/dev/null 2>&1; then
  die "pam_jit.so allowed $GATE_USER without a covering grant: the gate benchmark is not measuring a decision"
fi

# 4. Login hook: jit-host principals with a real certificate carrying a grant.
log "login hook: jit-host principals"
"$BIN/jit-bench" issue --server "$SERVER" --key-dir "$WORK/ids" --users 1 --role hostgrants \
  --clients 1 --requests 50 --warmup 0 --seconds 60 --save-cert "$WORK/login-cert.pub" >/dev/null
CERT_B64=$(awk '{ print $2 }' "$WORK/login-cert.pub")
# 4a: the user's stored grants removed before each call, so every call stores the grant
# (write + fsync of the file and its directory); 4b: the unchanged path (already stored).
log "login hook: jit-host principals, first store each call"
HOOK_STORE=$("$BIN/jit-bench" exec --runs "$RUNS" --expect-stdout bench00 \
  --before "rm -rf $HOST/state/grants/bench00" \
  --cmd "$BIN/jit-host --config $HOST/host.toml principals bench00 $CERT_B64")
record login-hook-store "$HOOK_STORE"
HOOK=$("$BIN/jit-bench" exec --runs "$RUNS" --expect-stdout bench00 \
  --cmd "$BIN/jit-host --config $HOST/host.toml principals bench00 $CERT_B64")
record login-hook "$HOOK"
[ -n "$(ls "$HOST/state/grants/bench00/" 2>/dev/null)" ] || die "jit-host principals stored no grant"

# 5. Fleet sync: GET /v1/hosts/bench-host/grants with If-None-Match, answered 304.
log "fleet sync: 304 to If-None-Match"
ETAG=$(curl -fsS -D - -o /dev/null "$SERVER/v1/hosts/bench-host/grants" |
  awk 'tolower($1) == "etag:" { sub(/\r$/, ""); $1 = ""; sub(/^ /, ""); print }')
[ -n "$ETAG" ] || die "/v1/hosts/bench-host/grants sent no ETag"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$SERVER/v1/hosts/bench-host/grants")
[ "$CODE" = 304 ] || die "If-None-Match got HTTP $CODE, not 304"
c0=$(ca_cpu)
WRK_OUT=$(wrk -t2 -c64 -d"${WRK_SECS}s" --latency -H "If-None-Match: $ETAG" "$SERVER/v1/hosts/bench-host/grants")
c1=$(ca_cpu)
SYNC_RPS=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$WRK_OUT")
SYNC_REQS=$(awk '/requests in/ { print $1 }' <<<"$WRK_OUT")
SYNC_BAD=$(awk '/Non-2xx or 3xx/ { print $5 }' <<<"$WRK_OUT")
SYNC_P99=$(awk '$1 == "99%" { print $2 }' <<<"$WRK_OUT")
record sync "{\"rps\":${SYNC_RPS:-0},\"requests\":${SYNC_REQS:-0},\"bad\":${SYNC_BAD:-0},\"p99\":\"${SYNC_P99:-?}\",\"server_cpu_s\":$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')}"
[ "${SYNC_BAD:-0}" = 0 ] || die "wrk saw $SYNC_BAD responses that were not 2xx/3xx"

stop_ca

# ---------------------------------------------------------------------------------------
# Outbox A/B: row 1 at 8 clients with and without a [[notify]] sink (a local receiver that
# answers every POST 200), in alternating restarts of the same CA (AB_ROUNDS rounds). The
# CA here holds the memory row's grants: compare the two variants with each other only.
log "outbox A/B: issuance at 8 clients with and without a [[notify]] sink"
"$BIN/jit-bench" receive --listen 127.0.0.1:0 --count-file "$WORK/received" >"$WORK/receiver.addr" &
RECV_PID=$!
for _ in $(seq 50); do [ -s "$WORK/receiver.addr" ] && break; sleep 0.1; done
RECV_ADDR=$(head -1 "$WORK/receiver.addr")
[ -n "$RECV_ADDR" ] || die "jit-bench receive did not start"
cp "$CA/config.toml" "$WORK/config.plain.toml"
cp "$CA/config.toml" "$WORK/config.notify.toml"
printf '\n[[notify]]\nname = "bench"\nurl = "http://%s/hook"\nformat = "slack"\n' "$RECV_ADDR" >> "$WORK/config.notify.toml"
# A slack sink's URL is its credential: the CA refuses a config.toml others can read.
chmod o-r "$CA/config.toml"
declare -A AB
for ((r = 1; r <= AB_ROUNDS; r++)); do
  for v in notify plain; do
    cp "$WORK/config.$v.toml" "$CA/config.toml"
    start_ca "$CA" "$WORK/ca.log"
    AB[$v-$r]=$(issue "issue-8-outbox-$v-$r" --role load --spread-hosts load- --clients 8 --seconds "$SECS" --warmup "$WARM")
    stop_ca
  done
done
cp "$WORK/config.plain.toml" "$CA/config.toml"
RECEIVED=$(cat "$WORK/received" 2>/dev/null || echo 0)
kill "$RECV_PID" 2>/dev/null || true; wait "$RECV_PID" 2>/dev/null || true; RECV_PID=
ab_mean() { # notify|plain FIELD: mean over the rounds
  local r; for ((r = 1; r <= AB_ROUNDS; r++)); do j "$2" "${AB[$1-$r]}"; done | awk '{ t += $1 } END { print t / NR }'
}
AB_NOTIFY_CPU=$(ab_mean notify .server_cpu_us_per_cert) AB_PLAIN_CPU=$(ab_mean plain .server_cpu_us_per_cert)
AB_NOTIFY_RATE=$(ab_mean notify .certs_per_s) AB_PLAIN_RATE=$(ab_mean plain .certs_per_s)
record outbox-ab "{\"rounds\":$AB_ROUNDS,\"received\":${RECEIVED:-0},\"notify_cpu_us_per_cert\":$AB_NOTIFY_CPU,\"plain_cpu_us_per_cert\":$AB_PLAIN_CPU,\"notify_certs_per_s\":$AB_NOTIFY_RATE,\"plain_certs_per_s\":$AB_PLAIN_RATE}"

# ---------------------------------------------------------------------------------------
# Long run on a second, fresh CA (JIT_BENCH_LONG=0 skips): R0 = VmRSS after a fresh short
# run (LONG_FRESH s, 8 clients); then LONG_CERTS certificates of LONG_GRANT_SECS s each; RSS
# once every grant has ended and LONG_SWEEPS sweeps (15 s apart) have run; RSS after
# LONG_IDLE s idle. Each must stay within 1.5 x R0.
if [ "$LONG_BENCH" != 0 ]; then
  LCA=$WORK/ca-long
  "$BIN/jit-ca" init --dir "$LCA" >/dev/null
  sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$LCA/config.toml"
  cp "$CA/policy.toml" "$LCA/policy.toml"
  for ((i = 0; i < USERS; i++)); do
    n=$(printf 'bench%02d' "$i")
    "$BIN/jit-ca" user add "$n" --key "$WORK/ids/$n.pub" --group bench --dir "$LCA" >/dev/null
  done
  start_ca "$LCA" "$WORK/ca-long.log"
  log "long run: a fresh short run ($LONG_FRESH s, 8 clients)"
  issue long-run-fresh --role load --spread-hosts load- --clients 8 --seconds "$LONG_FRESH" --warmup 0 \
    --duration-secs "$LONG_GRANT_SECS" >/dev/null
  R0_KIB=$(ca_kib VmRSS)
  log "long run: $LONG_CERTS certificates of $LONG_GRANT_SECS s"
  issue long-run-issue --role load --spread-hosts load- --clients 8 --requests "$LONG_CERTS" \
    --duration-secs "$LONG_GRANT_SECS" --warmup 0 --seconds 3600 >/dev/null
  LONG_KIB=$(ca_kib VmRSS) LONG_HWM_KIB=$(ca_kib VmHWM)
  LONG_NONCES=$(metric jit_ca_nonces_remembered)
  # The last grant ends LONG_GRANT_SECS after the run; then LONG_SWEEPS sweeps (15 s apart).
  WAIT=$((LONG_GRANT_SECS + 15 * LONG_SWEEPS + 1))
  log "long run: waiting ${WAIT}s (every grant ends, then $LONG_SWEEPS sweep(s))"
  sleep "$WAIT"
  EXP_KIB=$(ca_kib VmRSS)
  log "long run: idle ${LONG_IDLE}s"
  sleep "$LONG_IDLE"
  IDLE_KIB=$(ca_kib VmRSS) IDLE_HWM_KIB=$(ca_kib VmHWM)
  SWEEP_ERRORS=$(grep -c 'expiry sweep failed' "$WORK/ca-long.log" || true)
  record long-run "{\"certs\":$LONG_CERTS,\"grant_secs\":$LONG_GRANT_SECS,\"r0_kib\":$R0_KIB,\"long_kib\":$LONG_KIB,\"long_hwm_kib\":$LONG_HWM_KIB,\"expired_kib\":$EXP_KIB,\"idle_kib\":$IDLE_KIB,\"idle_hwm_kib\":$IDLE_HWM_KIB,\"nonces_after_long\":$LONG_NONCES,\"nonces_after_idle\":$(metric jit_ca_nonces_remembered),\"cache_documents\":$(metric jit_ca_host_grants_cache_documents),\"cache_bytes\":$(metric jit_ca_host_grants_cache_bytes),\"cache_names\":$(metric jit_ca_host_grants_cache_names),\"sweep_errors\":$SWEEP_ERRORS}"
  [ "$SWEEP_ERRORS" = 0 ] || die "the long run's CA logged $SWEEP_ERRORS failed sweeps (see $WORK/ca-long.log)"
  stop_ca
fi

# ---------------------------------------------------------------------------------------
# 1b, 1c. Issuance on PostgreSQL (issue 17): one, then two replicas of one CA on one
# database, in the same run as the SQLite rows, with the same users, policy and load. The
# cluster is private (tests/lib/pg.sh: initdb as nobody under $WORK, on the same disk), with
# fsync and synchronous_commit on: a commit waits for its WAL flush, as the CA's "nothing is
# answered before it is durable" needs. CPU per certificate is split: the replicas'
# utime+stime, and PostgreSQL's (the postmaster, its live backends, and the backends it
# reaped: cutime+cstime).
declare -A PG_ISSUE
if [ "$PG_BENCH" != 0 ]; then
  # shellcheck source=../tests/lib/pg.sh
  . "$ROOT/tests/lib/pg.sh"
  PG_PORTS=${JIT_BENCH_PG_PORTS:-25400-25999}
  PG_PORT=$(pg_free_port "${PG_PORTS%-*}" "${PG_PORTS#*-}") || die "no free port in $PG_PORTS for PostgreSQL"
  log "PostgreSQL: a private cluster on 127.0.0.1:$PG_PORT, fsync on (JIT_BENCH_PG=0 skips these rows)"
  PG_DIR=$WORK/pg
  pg_start "$PG_DIR" "$PG_PORT" -c fsync=on -c synchronous_commit=on ||
    die "PostgreSQL did not start (apt-get install postgresql-15, or JIT_BENCH_PG=0 to skip)"
  psql "$PG_URL dbname=postgres" -qAtc "CREATE DATABASE jit_bench" >/dev/null
  PGCA=$WORK/ca-pg
  "$BIN/jit-ca" init --dir "$PGCA" >/dev/null
  sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$PGCA/config.toml"
  printf '\ndatabase = "%s dbname=jit_bench"\n' "$PG_URL" >> "$PGCA/config.toml"
  cp "$CA/policy.toml" "$PGCA/policy.toml"
  for ((i = 0; i < USERS; i++)); do
    n=$(printf 'bench%02d' "$i")
    "$BIN/jit-ca" user add "$n" --key "$WORK/ids/$n.pub" --group bench --dir "$PGCA" >/dev/null
  done
  # The second replica: the same keys, config.toml and policy.toml in its own directory.
  PGCA2=$WORK/ca-pg2
  mkdir -p "$PGCA2"; chmod --reference="$PGCA" "$PGCA2"
  cp -a "$PGCA/keys" "$PGCA/config.toml" "$PGCA/policy.toml" "$PGCA2/"
  pg_serve() { # DIR -> URL on stdout; the PID joins PG_CA_PIDS (in this shell: not in $(...))
    local dir=$1 port
    port=$((PORT + 1)); while ! port_free "$port"; do port=$((port + 1)); done
    MALLOC_ARENA_MAX=$CA_ARENAS "$BIN/jit-ca" serve --dir "$dir" --listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
    PG_CA_PIDS+=($!)
    for _ in $(seq 100); do
      curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
      kill -0 "$!" 2>/dev/null || { cat "$dir.log" >&2; die "jit-ca serve on PostgreSQL exited"; }
      sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null || die "jit-ca on PostgreSQL did not answer"
    PG_SERVE_URL=http://127.0.0.1:$port
  }
  pid_cpu() { # PID...: utime+stime in seconds
    local p; for p in "$@"; do cat "/proc/$p/stat"; done 2>/dev/null |
      awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t / 100 }'
  }
  pg_cpu() { # the postmaster (with what it reaped) and its live children
    local pm; pm=$(head -1 "$PG_DIR/data/postmaster.pid")
    { awk '{ sub(/.*\) /, ""); print ($12 + $13 + $14 + $15) / 100 }' "/proc/$pm/stat"
      pid_cpu $(ps -o pid= --ppid "$pm"); } | awk '{ t += $1 } END { print t }'
  }
  pg_commits() { # URL...: "batches changes" summed over the replicas
    local u; for u in "$@"; do curl -fsS "$u/metrics"; done | awk '
      $1 == "jit_ca_commit_batches_total" { b += $2 } $1 == "jit_ca_commit_changes_total" { c += $2 }
      END { print b + 0, c + 0 }'
  }
  pg_issue() { # name "URL..." args...
    local name=$1 urls=$2; shift 2
    local c0 c1 p0 p1 m0 m1 out u args=()
    for u in $urls; do args+=(--server "$u"); done
    c0=$(pid_cpu "${PG_CA_PIDS[@]}"); p0=$(pg_cpu); m0=$(pg_commits $urls)
    out=$("$BIN/jit-bench" issue "${args[@]}" --key-dir "$WORK/ids" --users "$USERS" "$@")
    c1=$(pid_cpu "${PG_CA_PIDS[@]}"); p1=$(pg_cpu); m1=$(pg_commits $urls)
    out=$(jq -c --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
      --argjson pg "$(awk -v a="$p0" -v b="$p1" 'BEGIN { print b - a }')" \
      --argjson batch "$(awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " ");
        db = y[1] - x[1]; printf "%.1f", (db > 0 ? (y[2] - x[2]) / db : 0) }')" \
      '. + {server_cpu_s: $cpu, server_cpu_us_per_cert: ($cpu * 1e6 / (.all_ok + 0.000001)),
            pg_cpu_s: $pg, pg_cpu_us_per_cert: ($pg * 1e6 / (.all_ok + 0.000001)),
            mean_commit_batch: $batch}' <<<"$out")
    [ "$(jq -r '.ok // 0' <<<"$out")" -gt 0 ] || die "issuance run $name issued no certificate: $out"
    record "$name" "$out"
    echo "$out"
  }
  pg_serve "$PGCA"; PG1=$PG_SERVE_URL
  for c in "${PG_CLIENTS[@]}"; do
    log "issuance on PostgreSQL, 1 replica, $c concurrent clients"
    PG_ISSUE[1-$c]=$(pg_issue "issue-pg1-$c" "$PG1" --role load --spread-hosts load- --clients "$c" --seconds "$SECS" --warmup "$WARM")
  done
  pg_serve "$PGCA2"; PG2=$PG_SERVE_URL
  PG_TOP=${PG_CLIENTS[-1]}
  log "issuance on PostgreSQL, 2 replicas, $PG_TOP concurrent clients"
  PG_ISSUE[2-$PG_TOP]=$(pg_issue "issue-pg2-$PG_TOP" "$PG1 $PG2" --role load --spread-hosts load- --clients "$PG_TOP" --seconds "$SECS" --warmup "$WARM")
  "$BIN/jit-ca" audit verify --dir "$PGCA" >/dev/null || die "jit-ca audit verify failed on PostgreSQL after the load"
  # Fleet sync on a PostgreSQL replica: 304s are answered from the replica's memory, so
  # PostgreSQL should spend (next to) nothing while wrk runs.
  log "fleet sync on a PostgreSQL replica: 304 to If-None-Match"
  PG_ETAG=$(curl -fsS -D - -o /dev/null "$PG1/v1/revocations" |
    awk 'tolower($1) == "etag:" { sub(/\r$/, ""); $1 = ""; sub(/^ /, ""); print }')
  [ -n "$PG_ETAG" ] || die "$PG1/v1/revocations sent no ETag"
  p0=$(pg_cpu)
  PG_WRK=$(wrk -t2 -c64 -d"${WRK_SECS}s" -H "If-None-Match: $PG_ETAG" "$PG1/v1/revocations")
  p1=$(pg_cpu)
  PG_SYNC_RPS=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$PG_WRK")
  PG_SYNC_BAD=$(awk '/Non-2xx or 3xx/ { print $5 }' <<<"$PG_WRK")
  [ "${PG_SYNC_BAD:-0}" = 0 ] || die "wrk saw $PG_SYNC_BAD answers from the PostgreSQL replica that were not 2xx/3xx"
  PG_SYNC_CPU=$(awk -v a="$p0" -v b="$p1" 'BEGIN { print b - a }')
  record sync-pg "{\"rps\":${PG_SYNC_RPS:-0},\"pg_cpu_s\":$PG_SYNC_CPU}"
  for p in "${PG_CA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PG_CA_PIDS=()
  pg_stop "$PG_DIR" fast || true
  PG_DIR=
fi

# ---------------------------------------------------------------------------------------
# 6. Micro benchmarks (criterion); in smoke mode each runs once (--test).
log "micro benchmarks (criterion)"
export CRITERION_HOME=$WORK/criterion
CRIT_ARGS=(--warm-up-time 1 --measurement-time 3)
((SMOKE)) && CRIT_ARGS=(--test)
cargo bench --locked -q -p jit-common --bench micro -- "${CRIT_ARGS[@]}" >"$WORK/criterion.txt" 2>&1 ||
  { cat "$WORK/criterion.txt" >&2; die "cargo bench -p jit-common failed"; }
cargo bench --locked -q -p jit-bench --bench decide -- "${CRIT_ARGS[@]}" >>"$WORK/criterion.txt" 2>&1 ||
  { cat "$WORK/criterion.txt" >&2; die "cargo bench -p jit-bench failed"; }
crit() { # group/bench -> mean in microseconds, from criterion's estimates.json
  local f="$CRITERION_HOME/$1/new/estimates.json"
  if [ -f "$f" ]; then jq -r '.mean.point_estimate / 1000 | . * 100 | round / 100' "$f"
  elif ((SMOKE)); then echo "(ran once)"; else echo "-"; fi
}

# ---------------------------------------------------------------------------------------
# The table.
r1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
r2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
r0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
verdict() { # ok-condition-exit-status
  if ((SMOKE)); then echo "(smoke)"; elif [ "$1" = 0 ]; then echo "met"; else echo "MISSED"; fi
}

KEYGEN_MS=$(j '.results[0].time.mean_ms' "$KEYGEN")
KEYGEN_RATE=$(awk -v m="$KEYGEN_MS" 'BEGIN { printf "%.0f", 1000 / m }')
KEYGEN_N_RATE=$(j '.per_s' "$KEYGEN_N")
TOP=${CLIENTS[-1]}
TOP_RATE=$(j '.certs_per_s' "${ISSUE[$TOP]}")
RATIO=$(awk -v a="$TOP_RATE" -v b="$KEYGEN_N_RATE" 'BEGIN { printf "%.1f", a / b }')
RATIO1=$(awk -v a="$TOP_RATE" -v b="$KEYGEN_RATE" 'BEGIN { printf "%.1f", a / b }')
GATE_ADD=$(j '.results[1].median_paired_diff_ms' "$GATE")
GATE_ACCESS=$(j '.results[2].median_paired_diff_ms' "$GATE")
PERMIT_MS=$(j '.results[0].time.p50_ms' "$GATE")
JIT_MS=$(j '.results[1].time.p50_ms' "$GATE")
HOOK_MS=$(j '.results[0].time.p50_ms' "$HOOK")
HOOK_P99=$(j '.results[0].time.p99_ms' "$HOOK")
HOOK_STORE_MS=$(j '.results[0].time.p50_ms' "$HOOK_STORE")
HOOK_STORE_P99=$(j '.results[0].time.p99_ms' "$HOOK_STORE")
OPEN_P99=$(j '.latency.p99_ms' "$OPEN")
OPEN_P50=$(j '.latency.p50_ms' "$OPEN")
RSS_MIB=$(awk -v k="$CA_HWM_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
MEM_RSS_MIB=$(awk -v k="$MEM_RSS_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
MEM_HWM_MIB=$(awk -v k="$MEM_HWM_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
FSYNC_MS=$(j '.fdatasync.p50_ms' "$FSYNC")
FSYNC_P99=$(j '.fdatasync.p99_ms' "$FSYNC")
# A latency that is null in the JSON landed on a failed operation: +inf.
ms() { if [ "$1" = null ]; then echo inf; else r2 "$1"; fi; }
le() { [ "$1" != null ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

echo
echo "jit benchmark suite — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load before run: $LOAD0"
echo "disk: fdatasync p50 $(r2 "$FSYNC_MS") ms, p99 $(r2 "$FSYNC_P99") ms where the CA database lives ($(df -T "$CA" | awk 'NR == 2 { print $2 }')); every durable commit pays one"
((SMOKE)) && echo "SMOKE RUN: tiny durations, figures are not meaningful, targets not judged"
echo "latencies count every failed operation (error, late start) as +inf: 'inf' is a percentile that landed on one"
echo
printf '| %-46s | %-30s | %-22s | %-7s |\n' "benchmark" "result" "target" "verdict"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..48})" "$(printf -- '-%.0s' {1..32})" "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..9})"
row() { printf '| %-46s | %-30s | %-22s | %-7s |\n' "$@"; }
for c in "${CLIENTS[@]}"; do
  R=${ISSUE[$c]}
  rate=$(j '.certs_per_s' "$R") errs=$(j '.errors' "$R")
  # Closed loop: a verdict needs 0 errors as well as its figure.
  st=1; [ "$c" = 64 ] && ge "$rate" 3000 && [ "$errs" = 0 ] && st=0
  v=$([ "$c" = 64 ] && verdict $st || echo "")
  row "1. issuance, $c clients (certs/s)" "$(r0 "$rate")/s p50 $(ms "$(j '.latency.p50_ms' "$R")") p99 $(ms "$(j '.latency.p99_ms' "$R")") ms" "$([ "$c" = 64 ] && echo '>= 3000/s, 0 errors' || echo '-')" "$v"
  cpu=$(j '.server_cpu_us_per_cert' "$R")
  st=1; ge 150 "$cpu" && [ "$errs" = 0 ] && st=0
  if [ "$c" = 8 ] || [ "$c" = 64 ]; then t='<= 150 us, 0 errors' v=$(verdict $st); else t='' v=''; fi
  row "   server CPU per cert, errors" "$(r0 "$cpu") us, $errs errors" "$t" "$v"
  row "   client CPU per cert, commit batch" "$(r0 "$(j '.client_cpu_us_per_cert' "$R")") us, $(j '.mean_commit_batch' "$R")" "" ""
done
row "1. issuance, $TOP clients, POST + GET" "$(r0 "$(j '.certs_per_s' "$FETCH")")/s p50 $(ms "$(j '.latency.p50_ms' "$FETCH")") p99 $(ms "$(j '.latency.p99_ms' "$FETCH")") ms" "-" ""
OPEN_ERRS=$(j '.errors' "$OPEN")
st=1; le "$OPEN_P99" 5 && [ "$OPEN_ERRS" = 0 ] && st=0
row "1. issuance at $(j '.rate_target' "$OPEN")/s open loop (latency)" "p50 $(ms "$OPEN_P50") p99 $(ms "$OPEN_P99") ms" "p99 <= 5 ms, 0 errors" "$(verdict $st)"
row "   errors, late starts (both count as +inf)" "$OPEN_ERRS errors, $(j '.late' "$OPEN") late" "" ""
row "1. outbox A/B at 8 clients: CPU per cert" "$(r0 "$AB_NOTIFY_CPU") us with a sink, $(r0 "$AB_PLAIN_CPU") without" "-" ""
row "   certs/s with / without, events received" "$(r0 "$AB_NOTIFY_RATE") / $(r0 "$AB_PLAIN_RATE"), $RECEIVED" "" ""
if [ "$PG_BENCH" != 0 ]; then
  pg_row() { # label result-json
    row "$1" "$(r0 "$(j '.certs_per_s' "$2")")/s p50 $(ms "$(j '.latency.p50_ms' "$2")") p99 $(ms "$(j '.latency.p99_ms' "$2")") ms" "-" ""
    row "   CPU per cert CA / PostgreSQL, errors, batch" "$(r0 "$(j '.server_cpu_us_per_cert' "$2")") / $(r0 "$(j '.pg_cpu_us_per_cert' "$2")") us, $(j '.errors' "$2") errors, $(j '.mean_commit_batch' "$2")" "" ""
  }
  for c in "${PG_CLIENTS[@]}"; do
    pg_row "1b. issuance on PostgreSQL, 1 replica, $c clients" "${PG_ISSUE[1-$c]}"
  done
  pg_row "1c. issuance on PostgreSQL, 2 replicas, ${PG_CLIENTS[-1]} cl." "${PG_ISSUE[2-${PG_CLIENTS[-1]}]}"
  row "6b. fleet sync 304s on a PostgreSQL replica" "$(r0 "${PG_SYNC_RPS:-0}")/s, PostgreSQL CPU $(r2 "$PG_SYNC_CPU") s" "-" ""
else
  row "1b/1c/6b. PostgreSQL rows" "not run (JIT_BENCH_PG=0)" "-" ""
fi
row "2. baseline ssh-keygen -s, 1 process per cert" "$KEYGEN_RATE/s ($(r2 "$KEYGEN_MS") ms each)" "-" ""
row "2. baseline ssh-keygen -s, $NPROC processes at once" "$(r0 "$KEYGEN_N_RATE")/s" "-" ""
st=1; ge "$RATIO" 25 && st=0
row "2. ratio issuance@$TOP / ssh-keygen x$NPROC" "${RATIO}x (${RATIO1}x over 1 process)" ">= 25x" "$(verdict $st)"
st=1; le "$GATE_ADD" 0.25 && st=0
row "3. sudo gate added over pam_permit (median)" "$(r2 "$GATE_ADD") ms ($(r2 "$PERMIT_MS") -> $(r2 "$JIT_MS"))" "<= 0.25 ms" "$(verdict $st)"
row "   pam_access (+:ALL:ALL) in the same rounds" "$(r2 "$GATE_ACCESS") ms over pam_permit" "" ""
row "   ($MINE grants of the user: $((MINE - 1)) for other hosts)" "" "" ""
GATE1_ADD=$(j '.results[1].median_paired_diff_ms' "$GATE1")
st=1; le "$GATE1_ADD" 0.25 && st=0
row "3. sudo gate, user has only the covering grant" "$(r2 "$GATE1_ADD") ms ($(r2 "$(j '.results[0].time.p50_ms' "$GATE1")") -> $(r2 "$(j '.results[1].time.p50_ms' "$GATE1")"))" "<= 0.25 ms" "$(verdict $st)"
row "   pam_access in the same rounds" "$(r2 "$(j '.results[2].median_paired_diff_ms' "$GATE1")") ms over pam_permit" "" ""
row "   (rows above: store indexed by jit-host sync)" "" "" ""
row "3. the same without root's records (cold)" "$(r2 "$(j '.results[1].median_paired_diff_ms' "$GATE1C")") ms ($(r2 "$(j '.results[0].time.p50_ms' "$GATE1C")") -> $(r2 "$(j '.results[1].time.p50_ms' "$GATE1C")"))" "-" ""
row "3. sudo gate, 100,000 files (denied)" "p50 $(r2 "$(j '.results[0].time.p50_ms' "$FLOOD")") p99 $(r2 "$(j '.results[0].time.p99_ms' "$FLOOD")") ms" "-" ""
st=1; le "$HOOK_STORE_MS" 3 && st=0
row "4a. login hook, first store (write + fsync)" "p50 $(r2 "$HOOK_STORE_MS") p99 $(r2 "$HOOK_STORE_P99") ms" "p50 <= 3 ms" "$(verdict $st)"
st=1; le "$HOOK_MS" 5 && st=0
row "4b. login hook, grant already stored" "p50 $(r2 "$HOOK_MS") p99 $(r2 "$HOOK_P99") ms" "<= 5 ms" "$(verdict $st)"
st=1; le "$MEM_HWM_MIB" 64 && st=0
row "5. CA RSS, $FILL_GRANTS grants, $FETCH_NAMES host fetches" "RSS $MEM_RSS_MIB, peak $MEM_HWM_MIB MiB" "peak <= 64 MiB" "$(verdict $st)"
row "   host fetches: rate, p99" "$(r0 "$(j '.per_s' "$HOSTS")")/s, p99 $(ms "$(j '.latency.p99_ms' "$HOSTS")") ms" "" ""
row "   (before: peak RSS after $TOP clients)" "$RSS_MIB MiB" "" ""
if [ "$LONG_BENCH" != 0 ]; then
  x() { awk -v a="$1" -v b="$R0_KIB" 'BEGIN { printf "%.2f", a / b }'; }
  st=0; for k in "$LONG_KIB" "$EXP_KIB" "$IDLE_KIB"; do le "$(x "$k")" 1.5 || st=1; done
  row "5b. RSS long / expiries / idle vs fresh" "x$(x "$LONG_KIB") / x$(x "$EXP_KIB") / x$(x "$IDLE_KIB")" "each <= 1.5x" "$(verdict $st)"
  row "   fresh R0, $LONG_CERTS certs of ${LONG_GRANT_SECS} s (MiB)" "$(r1 "$(awk -v k="$R0_KIB" 'BEGIN { print k / 1024 }')") -> $(r1 "$(awk -v k="$LONG_KIB" 'BEGIN { print k / 1024 }')") / $(r1 "$(awk -v k="$EXP_KIB" 'BEGIN { print k / 1024 }')") / $(r1 "$(awk -v k="$IDLE_KIB" 'BEGIN { print k / 1024 }')")" "" ""
else
  row "5b. long run" "not run (JIT_BENCH_LONG=0)" "-" ""
fi
st=1; ge "${SYNC_RPS:-0}" 10000 && st=0
row "6. fleet sync, 304 to If-None-Match" "$(r0 "${SYNC_RPS:-0}")/s (wrk -c64, p99 ${SYNC_P99:-?})" ">= 10000/s" "$(verdict $st)"
row "7. grant sign / parse+verify+covers (us)" "$(crit grant/sign) / $(crit grant/parse_verify_covers)" "-" ""
row "7. cert build+sign+encode / validate (us)" "$(crit certificate/build_sign_encode) / $(crit certificate/parse_validate)" "-" ""
for n in 1 50 256; do
  row "7. decide over $n grants of the user (us)" "$(crit "decide/$n")" "-" ""
done
echo
echo "raw results: $RAW"
