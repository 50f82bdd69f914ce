#!/usr/bin/env bash
# Two jit-ca replicas on one PostgreSQL (issue 17), one killed with SIGKILL under load:
#   * PostgreSQL 15 from Debian's packages in a private directory, run as nobody, on the
#     namespace's own loopback (tests/lib/pg.sh); replicas A and B have their own data
#     directories sharing keys/, config.toml and policy.toml, both `database = ...`
#   * 16 real `jit` clients (JIT_SERVER=A,B: they fail over by themselves), each its own
#     user, request an auto-approved role in a loop for RUN_SECS (default 30) and record
#     every serial they receive; A is killed with kill -9 at a third of the run and started
#     again at two thirds
#   * a pending request made at the start expires (pending_expiry = 12s) exactly once,
#     whichever replica leads the sweep when it is due (A leads, dies, B takes over)
# Then:
#   * every serial a client received is in the database (certs) and has its issuance
#     record in the audit trail; no serial twice (database, audit, clients)
#   * the clients failed over: every client succeeded after the kill; failures are clean
#     (a JSON error on stdout, a non-zero exit), at most one per client in flight at the kill
#   * `jit-ca audit verify` passes on both data directories; `jit-ca db status --check` too
# Runs in a private network + mount + PID namespace (nothing on the host; every process
# dies with the namespace).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
. "$HERE/../lib/pg.sh"
RUN_SECS=${RUN_SECS:-30}
CLIENTS=${CLIENTS:-16}

W=$(mktemp -d /tmp/jit-replicas.XXXXXX)
chmod 0755 "$W" # nobody (PostgreSQL) must reach $W/pg
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

pg_start "$W/pg" 25601 -c fsync=off || sys_die "PostgreSQL did not start"
psql "$PG_URL dbname=postgres" -qAtc "CREATE DATABASE jit" || sys_die "CREATE DATABASE failed"
# The replicas reach PostgreSQL over TCP on loopback (as replicas on other machines would,
# there with TLS); psql uses the socket.
DB="host=127.0.0.1 port=25601 user=jit dbname=jit"
sql() { psql "$PG_URL dbname=jit" -qAtc "$1"; }

A=$W/a B=$W/b
sys_ca_dir "$A" '
[roles.ops]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
auto_approve = true
require_reason = false

[roles.db-admin]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
'
sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$A/config.toml"
sed -i 's/^pending_expiry = .*/pending_expiry = "12s"/' "$A/config.toml"
printf 'database = "%s"\n' "$DB" >> "$A/config.toml"
# B: the same keys, config and policy (what docs/ha.md says to distribute), its own name.
mkdir -m 0700 "$B"
cp -a "$A/keys" "$A/config.toml" "$A/policy.toml" "$B/"
printf 'replica_name = "a"\n' >> "$A/config.toml"
printf 'replica_name = "b"\n' >> "$B/config.toml"

export HOME=$W/home; mkdir -p "$HOME"
unset SSH_AUTH_SOCK
# Users go in through replica A's data directory: the database is shared.
for i in $(seq "$CLIENTS"); do sys_ca_user "$A" "u$i" dev "$W/u$i"; done
sys_ca_user "$A" carol dev "$W/carol"
# (The list is read whole before grep: `producer | grep -q` under pipefail fails when grep
# exits at its first match while the producer is still writing, and CI hit exactly that.)
B_USERS=$("$JIT_CA" user list --dir "$B") || sys_die "jit-ca user list --dir B failed"
grep -qw u1 <<<"$B_USERS" || sys_die "replica B's data directory does not see the users added through A"

PA=18601 PB=18602
URL_A=http://127.0.0.1:$PA URL_B=http://127.0.0.1:$PB
start_a() { sys_start_ca "$A" "$PA" "$W/a.log"; A_PID=$SYS_CA_PID; }
start_b() { sys_start_ca "$B" "$PB" "$W/b.log"; B_PID=$SYS_CA_PID; }
start_a
start_b
SYS_CA_PID=

# The pending request that must expire once (pending_expiry = 12s), made on A.
pend=$(JIT_SERVER=$URL_A "$JIT" --identity "$W/carol" request db-admin --duration 10m \
  --reason "expires once" --no-wait --json) || sys_die "pending request failed: $pend"
PENDING_ID=$(jq -r '.request.id // .id' <<<"$pend")
[ -n "$PENDING_ID" ] && [ "$PENDING_ID" != null ] || sys_die "no request id in: $pend"

export JIT_SERVER=$URL_A,$URL_B
# One client: requests in a loop; a line per outcome: `ok SERIAL ID T` or `fail CODE T`.
client() { # N
  local n=$1 k=0 out code
  while :; do
    k=$((k + 1))
    if out=$("$JIT" --identity "$W/u$n" request ops --duration 10m --reason "stream $n/$k" --json 2>/dev/null); then
      jq -r --arg t "$(date +%s.%N)" '"ok \(.certificate.serial) \(.request.id) \($t)"' <<<"$out" >> "$W/out.$n"
    else
      code=$(jq -r '.error.code // "no-json-error"' <<<"$out" 2>/dev/null || echo no-json-error)
      echo "fail ${code:-no-json-error} $(date +%s.%N)" >> "$W/out.$n"
    fi
  done
}
for i in $(seq "$CLIENTS"); do : > "$W/out.$i"; client "$i" & LOOPS+=($!); done

sleep $((RUN_SECS / 3))
KILLED_AT=$(date +%s.%N)
kill -9 "$A_PID"; wait "$A_PID" 2>/dev/null || true; A_PID=
sleep $((RUN_SECS / 3))
start_a; SYS_CA_PID=
sleep $((RUN_SECS - 2 * (RUN_SECS / 3)))
for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${LOOPS[@]}" 2>/dev/null || true
LOOPS=()

# ---- the checks ---------------------------------------------------------------------------
cat "$W"/out.* > "$W/all"
{ grep '^ok ' "$W/all" || true; } | cut -d' ' -f2 | LC_ALL=C sort > "$W/received"
received=$(wc -l < "$W/received")
((received > 100)) && t_ok "$received certificates received by $CLIENTS clients over ${RUN_SECS}s" \
  || t_bad "only $received certificates received (the load did not run)"

sql "SELECT serial FROM certs WHERE certificate <> ''" | LC_ALL=C sort > "$W/db-serials"
missing=$(LC_ALL=C comm -23 "$W/received" "$W/db-serials" | wc -l)
((missing == 0)) && t_ok "every received serial is in the database's certs" \
  || t_bad "$missing received serials are not in the database: $(LC_ALL=C comm -23 "$W/received" "$W/db-serials" | head -5 | tr '\n' ' ')"

"$JIT_CA" audit export --json --dir "$B" > "$W/audit.json" || sys_die "audit export failed"
jq -r '(if type == "array" then .[] else . end) | select(.event == "issuance" or .event == "extension") | .details.serial' \
  "$W/audit.json" | LC_ALL=C sort > "$W/audit-serials"
amissing=$(LC_ALL=C comm -23 "$W/received" "$W/audit-serials" | wc -l)
((amissing == 0)) && t_ok "every received serial has its issuance record in the audit trail" \
  || t_bad "$amissing received serials have no issuance record"
for f in received db-serials audit-serials; do
  d=$(uniq -d "$W/$f" | wc -l)
  ((d == 0)) && t_ok "no serial twice in $f" || t_bad "$d serials twice in $f: $(uniq -d "$W/$f" | head -3 | tr '\n' ' ')"
done

# Failover: every client got a certificate after A died; failures are clean and few.
late=0
for i in $(seq "$CLIENTS"); do
  awk -v k="$KILLED_AT" '$1 == "ok" && $4 > k + 0 { found = 1 } END { exit !found }' "$W/out.$i" || late=$((late + 1))
done
((late == 0)) && t_ok "every client received certificates after replica A was killed (failed over to B)" \
  || t_bad "$late clients received nothing after the kill"
fails=$(grep -c '^fail ' "$W/all" || true)
unclean=$(grep -c '^fail no-json-error' "$W/all" || true)
((unclean == 0)) && t_ok "every failed call ($fails) ended with a JSON error and a non-zero exit" \
  || t_bad "$unclean failures without a JSON error"
# Calls in flight on A when it died (one per client at most, twice for the restart window).
((fails <= 2 * CLIENTS)) && t_ok "$fails failed calls (at most the calls in flight on A when it was killed)" \
  || t_bad "$fails failed calls: clients did not fail over ($(grep '^fail ' "$W/all" | cut -d' ' -f2 | sort | uniq -c | tr '\n' ' '))"

# The pending request expired exactly once, whichever replica led the sweep.
for _ in $(seq 40); do
  n=$(sql "SELECT count(*) FROM audit WHERE event = 'expiry' AND details LIKE '%\"$PENDING_ID\"%'")
  ((n > 0)) && break
  sleep 1
done
sleep 16 # another sweep period on both replicas: a second expiry would show now
n=$(sql "SELECT count(*) FROM audit WHERE event = 'expiry' AND details LIKE '%\"$PENDING_ID\"%'")
[ "$n" = 1 ] && t_ok "the pending request $PENDING_ID expired exactly once (one sweep leader)" \
  || t_bad "the pending request $PENDING_ID has $n expiry records"
state=$(sql "SELECT state FROM requests WHERE id = '$PENDING_ID'")
[ "$state" = expired ] && t_ok "its state is expired" || t_bad "its state is $state"

for d in "$A" "$B"; do
  out=$("$JIT_CA" audit verify --dir "$d" 2>&1) && t_ok "audit verify on $(basename "$d"): $(head -1 <<<"$out")" \
    || t_bad "audit verify on $(basename "$d"): $out"
done
out=$("$JIT_CA" db status --dir "$B" --check 2>&1) && t_ok "db status --check: both replicas current" \
  || t_bad "db status --check: $out"
grep -q '"a"\|^ *a ' <<<"$("$JIT_CA" db status --dir "$B" --json)" && t_ok "db status lists replica a" \
  || t_bad "db status does not list replica a"

kill "$A_PID" "$B_PID" 2>/dev/null || true
wait "$A_PID" "$B_PID" 2>/dev/null || true
A_PID= B_PID=
pg_stop "$W/pg" fast >/dev/null
t_summary
