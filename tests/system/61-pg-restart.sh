#!/usr/bin/env bash
# PostgreSQL restarted under load (issue 17): two jit-ca replicas on one PostgreSQL, 8 real
# `jit` clients (4 pinned to each replica, so the replica's own answer is seen) request an
# auto-approved role in a loop; PostgreSQL is restarted with `pg_ctl restart -m fast`, and
# later stopped with `-m immediate` (a crash: no shutdown checkpoint) and started again
# after a pause. Then:
#   * during the outage calls fail cleanly: a JSON error `unavailable` (HTTP 503, nothing
#     stored, safe to retry), or `internal` for a call whose COMMIT was cut (outcome
#     unknown); never a success, never another code; /v1/health answers 503 meanwhile
#   * the replicas reconnect by themselves (same processes): every client succeeds again
#     after each outage and /v1/health is 200 again
#   * nothing answered is missing: every serial a client received is in the database and
#     its issuance record in the audit trail; no serial twice; audit verify on both
# Runs in a private network + mount + PID namespace.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
. "$HERE/../lib/pg.sh"

W=$(mktemp -d /tmp/jit-pgrestart.XXXXXX)
chmod 0755 "$W"
MAIN_PID=$BASHPID
LOOPS=()
A_PID= B_PID=
cleanup() {
  [ "$BASHPID" = "$MAIN_PID" ] || return 0
  for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $A_PID $B_PID; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$W/pg/data/postmaster.pid" ] && pg_stop "$W/pg" immediate >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

PGPORT=25602
pg_start "$W/pg" "$PGPORT" -c fsync=off || sys_die "PostgreSQL did not start"
psql "$PG_URL dbname=postgres" -qAtc "CREATE DATABASE jit" || sys_die "CREATE DATABASE failed"
# The replicas reach PostgreSQL over TCP on loopback (as replicas on other machines would,
# there with TLS); psql uses the socket.
DB="host=127.0.0.1 port=$PGPORT user=jit dbname=jit"
sql() { psql "$PG_URL dbname=jit" -qAtc "$1"; }
pg_ctl_() { runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -w -t 30 "$@" >/dev/null; }

A=$W/a B=$W/b
sys_ca_dir "$A" '
[roles.ops]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
auto_approve = true
require_reason = false
'
sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$A/config.toml"
printf 'database = "%s"\n' "$DB" >> "$A/config.toml"
mkdir -m 0700 "$B"
cp -a "$A/keys" "$A/config.toml" "$A/policy.toml" "$B/"
printf 'replica_name = "a"\n' >> "$A/config.toml"
printf 'replica_name = "b"\n' >> "$B/config.toml"
export HOME=$W/home; mkdir -p "$HOME"
unset SSH_AUTH_SOCK
for i in $(seq 8); do sys_ca_user "$A" "u$i" dev "$W/u$i"; done

PA=18611 PB=18612
sys_start_ca "$A" "$PA" "$W/a.log"; A_PID=$SYS_CA_PID
sys_start_ca "$B" "$PB" "$W/b.log"; B_PID=$SYS_CA_PID
SYS_CA_PID=

client() { # N URL: `ok SERIAL ID T` or `fail CODE T MESSAGE` per call
  local n=$1 url=$2 k=0 out code
  while :; do
    k=$((k + 1))
    if out=$(JIT_SERVER=$url "$JIT" --identity "$W/u$n" request ops --duration 10m --reason "r $n/$k" --json 2>/dev/null); then
      jq -r --arg t "$(date +%s.%N)" '"ok \(.certificate.serial) \(.request.id) \($t)"' <<<"$out" >> "$W/out.$n"
    else
      code=$(jq -r '.error.code // "no-json-error"' <<<"$out" 2>/dev/null || echo no-json-error)
      msg=$(jq -r '.error.message // ""' <<<"$out" 2>/dev/null | tr '\n' ' ' || true)
      echo "fail ${code:-no-json-error} $(date +%s.%N) $msg" >> "$W/out.$n"
    fi
    sleep 0.05
  done
}
for i in $(seq 8); do
  : > "$W/out.$i"
  if ((i % 2)); then client "$i" "http://127.0.0.1:$PA" & else client "$i" "http://127.0.0.1:$PB" & fi
  LOOPS+=($!)
done
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v1/health"; }
# Waits until every client has a success after T (the replicas came back by themselves).
recovered_after() { # T SECS
  local t=$1 i n
  for ((i = 0; i < $2 * 10; i++)); do
    n=0
    for k in $(seq 8); do
      awk -v t="$t" '$1 == "ok" && $4 > t + 0 { f = 1 } END { exit !f }' "$W/out.$k" && n=$((n + 1))
    done
    ((n == 8)) && return 0
    sleep 0.1
  done
  return 1
}

sleep 5
# 1. A fast restart (backends terminated, a clean shutdown checkpoint, started again).
T1=$(date +%s.%N)
pg_ctl_ -m fast restart || sys_die "pg_ctl restart -m fast failed"
recovered_after "$(date +%s.%N)" 30 && t_ok "after pg_ctl restart -m fast every client succeeds again (no replica restarted)" \
  || t_bad "clients did not recover within 30 s of the fast restart"
sleep 3
# 2. A crash: -m immediate, and PostgreSQL stays down for a while (the outage is observed).
T2=$(date +%s.%N)
pg_ctl_ -m immediate stop || sys_die "pg_ctl stop -m immediate failed"
sleep 4
ha=$(health "$PA") hb=$(health "$PB")
[ "$ha" = 503 ] && [ "$hb" = 503 ] && t_ok "/v1/health answers 503 on both replicas while PostgreSQL is down" \
  || t_bad "/v1/health while PostgreSQL is down: a=$ha b=$hb (want 503)"
T3=$(date +%s.%N)
pg_start "$W/pg" "$PGPORT" || sys_die "PostgreSQL did not start again" # same options (pg_ctl start alone would not keep them)
recovered_after "$(date +%s.%N)" 30 && t_ok "after the crash and restart every client succeeds again" \
  || t_bad "clients did not recover within 30 s of PostgreSQL's return"
for _ in $(seq 50); do [ "$(health "$PA")" = 200 ] && [ "$(health "$PB")" = 200 ] && break; sleep 0.1; done
ha=$(health "$PA") hb=$(health "$PB")
[ "$ha" = 200 ] && [ "$hb" = 200 ] && t_ok "/v1/health is 200 again on both" || t_bad "/v1/health after: a=$ha b=$hb"
kill -0 "$A_PID" && kill -0 "$B_PID" && t_ok "both replicas kept running (same processes)" \
  || t_bad "a replica died during the outages"
sleep 2
for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${LOOPS[@]}" 2>/dev/null || true
LOOPS=()

# ---- the checks ---------------------------------------------------------------------------
cat "$W"/out.* > "$W/all"
# During the down time of the crash (T2..T3) nothing succeeds.
during=$(awk -v a="$T2" -v b="$T3" '$1 == "ok" && $4 > a + 0.5 && $4 < b + 0 { n++ } END { print n + 0 }' "$W/all")
((during == 0)) && t_ok "no call succeeded while PostgreSQL was down" || t_bad "$during calls succeeded while PostgreSQL was down"
out_fails=$(awk -v a="$T2" -v b="$T3" '$1 == "fail" && $3 > a + 0.5 && $3 < b + 0 { n++ } END { print n + 0 }' "$W/all")
((out_fails > 0)) && t_ok "$out_fails calls failed during the outage" || t_bad "no call was made during the outage"
bad=$(awk '$1 == "fail" && $2 != "unavailable" && !($2 == "internal" && /may or may not be stored/)' "$W/all")
[ -z "$bad" ] && t_ok "every failure is 503 unavailable (or 500 internal: outcome unknown, a cut COMMIT)" \
  || t_bad "other failures: $(head -5 <<<"$bad")"
grep -q '^fail unavailable' "$W/all" && t_ok "the outage answered unavailable" || t_bad "no call got unavailable"

{ grep '^ok ' "$W/all" || true; } | cut -d' ' -f2 | LC_ALL=C sort > "$W/received"
received=$(wc -l < "$W/received")
((received > 50)) && t_ok "$received certificates received" || t_bad "only $received certificates received"
sql "SELECT serial FROM certs WHERE certificate <> ''" | LC_ALL=C sort > "$W/db-serials"
missing=$(LC_ALL=C comm -23 "$W/received" "$W/db-serials" | wc -l)
((missing == 0)) && t_ok "every received serial is in the database (nothing answered is missing)" \
  || t_bad "$missing received serials are not in the database"
"$JIT_CA" audit export --json --dir "$A" > "$W/audit.json" || sys_die "audit export failed"
jq -r '(if type == "array" then .[] else . end) | select(.event == "issuance") | .details.serial' \
  "$W/audit.json" | LC_ALL=C sort > "$W/audit-serials"
amissing=$(LC_ALL=C comm -23 "$W/received" "$W/audit-serials" | wc -l)
((amissing == 0)) && t_ok "every received serial has its issuance record" || t_bad "$amissing received serials have no issuance record"
d=$(uniq -d "$W/received" | wc -l); ((d == 0)) && t_ok "no serial received twice" || t_bad "$d serials received twice"
d=$(uniq -d "$W/audit-serials" | wc -l); ((d == 0)) && t_ok "no serial issued twice (audit)" || t_bad "$d serials issued twice"
for d in "$A" "$B"; do
  out=$("$JIT_CA" audit verify --dir "$d" 2>&1) && t_ok "audit verify on $(basename "$d")" || t_bad "audit verify on $(basename "$d"): $out"
done

kill "$A_PID" "$B_PID" 2>/dev/null || true
wait "$A_PID" "$B_PID" 2>/dev/null || true
A_PID= B_PID=
pg_stop "$W/pg" fast >/dev/null
t_summary
