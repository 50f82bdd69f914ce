#!/usr/bin/env bash
# Crash safety of jit-ca (issue 7): a client streams issuances (auto-approved sudo role,
# the real `jit` client, the real HTTP API), and `jit-ca serve` is killed with SIGKILL at a
# random moment, CRASH_ITERATIONS times (default 100). After every restart:
#   * the database opens and the service answers (/v1/health),
#   * `jit-ca audit verify` passes.
# At the end:
#   * every certificate a client received has its issuance audit record with that serial,
#   * no serial was ever issued twice (audit trail and received certificates),
#   * the certificates the client received are real OpenSSH certificates (ssh-keygen -L),
#     and each saved certificate file has the serial the client reported for it.
# Runs in a private network + mount namespace (its own loopback; nothing on the host).
#
# JIT_CA_BACKEND=postgres (53-ca-crash-postgres.sh, issue 17): the same test with the CA's
# store in a private PostgreSQL cluster (tests/lib/pg.sh, inside the namespace, reached over
# TCP on loopback as a replica on another machine would), synchronous commit on: every
# certificate answered before a kill -9 must be in PostgreSQL and its audit chain.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
ITER=${CRASH_ITERATIONS:-100}
BACKEND=${JIT_CA_BACKEND:-sqlite}
case $BACKEND in
  sqlite | postgres) ;;
  *) echo "JIT_CA_BACKEND must be sqlite or postgres, not '$BACKEND'" >&2; exit 2 ;;
esac

W=$(mktemp -d /tmp/jit-crash.XXXXXX)
# PostgreSQL runs as nobody under $W/pg: $W must be searchable.
chmod 0755 "$W"
CLIENT_PID=
MAIN_PID=$BASHPID
cleanup() {
  # Only the script itself cleans up (never a subshell of the stream that inherited the trap).
  [ "$BASHPID" = "$MAIN_PID" ] || { echo "cleanup skipped in subshell $BASHPID" >&2; return 0; }
  [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null || true
  [ -n "${SYS_CA_PID:-}" ] && kill -9 "$SYS_CA_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$BACKEND" = postgres ] && [ -f "$W/pg/data/postmaster.pid" ]; then
    pg_stop "$W/pg" immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT

CA=$W/ca
sys_ca_dir "$CA" '
[roles.ops]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
auto_approve = true
require_reason = false
'
# The stream keeps many of alice's requests active at once: lift the per-user bound.
sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$CA/config.toml"
if [ "$BACKEND" = postgres ]; then
  . "$HERE/../lib/pg.sh"
  PGPORT=25610
  pg_start "$W/pg" "$PGPORT" || sys_die "PostgreSQL did not start"
  psql "$PG_URL dbname=postgres" -qAtc "CREATE DATABASE jit" || sys_die "CREATE DATABASE failed"
  printf 'database = "host=127.0.0.1 port=%s user=jit dbname=jit"\n' "$PGPORT" >> "$CA/config.toml"
fi
sys_ca_user "$CA" alice dev "$W/alice"
PORT=18443
export HOME=$W/home; mkdir -p "$HOME"
unset SSH_AUTH_SOCK
RECEIVED=$W/received   # one line per certificate a client got: serial request-id
: > "$RECEIVED"

# The stream: one `jit request` after another, each auto-approved and issued. A line is
# recorded only after the client exited 0 with a certificate in its JSON.
stream() {
  local n=0 out
  while :; do
    n=$((n + 1))
    if out=$("$JIT" --server "http://127.0.0.1:$PORT" --identity "$W/alice" request ops \
        --duration 10m --reason "crash stream $n" --json 2>/dev/null); then
      jq -r 'select(.certificate.serial != null) | "\(.certificate.serial) \(.request.id)"' <<<"$out" >> "$RECEIVED" || true
      reported=$(jq -r '.certificate.serial // empty' <<<"$out" 2>/dev/null || true)
      # The client exited 0: its certificate file must be there (a missing one is a
      # failure, counted below, never a skipped check), and it must be the certificate the
      # client reported (same serial, read back with ssh-keygen -L).
      if cp "$W/alice-cert.pub" "$W/last-cert.pub.new" 2>/dev/null; then
        if [ -n "$reported" ]; then
          saved=$(ssh-keygen -L -f "$W/last-cert.pub.new" 2>/dev/null | awk '$1 == "Serial:" {print $2}')
          if [ "$saved" = "$reported" ]; then
            echo "$reported" >> "$W/serial-matched"
          else
            echo "request $n: reported serial $reported, saved certificate has ${saved:-none}" >> "$W/serial-mismatch"
          fi
        fi
        mv "$W/last-cert.pub.new" "$W/last-cert.pub"
      else
        echo "$n" >> "$W/copy-failed"
      fi
    fi
  done
}

fail=0
for i in $(seq "$ITER"); do
  sys_start_ca "$CA" "$PORT" "$W/serve.log"
  stream & CLIENT_PID=$!
  # A random moment: 0-400 ms into the stream (a few issuances, often one in flight).
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 "$SYS_CA_PID"; wait "$SYS_CA_PID" 2>/dev/null || true; SYS_CA_PID=
  kill "$CLIENT_PID" 2>/dev/null || true; wait "$CLIENT_PID" 2>/dev/null || true; CLIENT_PID=
  if ! out=$("$JIT_CA" audit verify --dir "$CA" 2>&1); then
    echo "FAIL: iteration $i: audit verify after kill -9: $out"; fail=1; break
  fi
  (( i % 20 == 0 )) && echo "  $i kills, $(wc -l < "$RECEIVED") certificates received so far"
done

# One more start proves the last crash left an openable database.
sys_start_ca "$CA" "$PORT" "$W/serve.log"
kill -9 "$SYS_CA_PID"; wait "$SYS_CA_PID" 2>/dev/null || true; SYS_CA_PID=

received=$(wc -l < "$RECEIVED")
"$JIT_CA" audit export --json --dir "$CA" > "$W/audit.json" || { echo "FAIL: audit export"; exit 1; }
# Issuance serials from the audit trail (export is a JSON array or JSON lines).
jq -r '(if type == "array" then .[] else . end) | select(.event == "issuance" or .event == "extension") | .details.serial' \
  "$W/audit.json" | sort -n > "$W/audit-serials"
issued=$(wc -l < "$W/audit-serials")
dups=$(uniq -d "$W/audit-serials" | wc -l)
missing=0
while read -r serial id; do
  grep -qx "$serial" "$W/audit-serials" || { echo "FAIL: received serial $serial ($id) has no issuance record"; missing=$((missing + 1)); }
done < "$RECEIVED"
rdups=$(cut -d' ' -f1 "$RECEIVED" | sort -n | uniq -d | wc -l)

echo "backend: $BACKEND; kill -9 iterations: $ITER; certificates received: $received; issuances audited: $issued"
((received > 0)) || { echo "FAIL: the client never received a certificate (the stream did not run)"; fail=1; }
((dups == 0)) || { echo "FAIL: $dups serials issued twice in the audit trail"; fail=1; }
((rdups == 0)) || { echo "FAIL: $rdups serials received twice"; fail=1; }
((missing == 0)) || fail=1
if [ -s "$W/copy-failed" ]; then
  echo "FAIL: $(wc -l < "$W/copy-failed") successful jit request(s) left no certificate file"; fail=1
fi
if [ -s "$W/serial-mismatch" ]; then
  echo "FAIL: saved certificates that are not the one the client reported:"; head -5 "$W/serial-mismatch"; fail=1
fi
matched=$(cat "$W/serial-matched" 2>/dev/null | wc -l)
echo "saved certificates whose serial (ssh-keygen -L) is the one the client reported: $matched"
((matched > 0)) || { echo "FAIL: no saved certificate was compared with the serial the client reported"; fail=1; }
if [ ! -s "$W/last-cert.pub" ]; then
  echo "FAIL: no certificate file was saved (received: $received)"; fail=1
elif ! last=$(ssh-keygen -L -f "$W/last-cert.pub") || ! grep -q 'user certificate' <<<"$last"; then
  echo "FAIL: last certificate unreadable: $last"; fail=1
else
  serial=$(awk '$1 == "Serial:" {print $2}' <<<"$last")
  grep -qx "$serial" "$W/audit-serials" || { echo "FAIL: the last certificate's serial $serial has no issuance record"; fail=1; }
fi
"$JIT_CA" audit verify --dir "$CA" >/dev/null || { echo "FAIL: final audit verify"; fail=1; }
((fail == 0)) && echo "ok: crash safety holds over $ITER kills ($BACKEND)"
exit "$fail"
