#!/usr/bin/env bash
# The break-glass runbook (docs/break-glass.md) on real programs, in private mount/UTS/net/PID
# namespaces:
#   an offline key (`jit-ca break-glass keygen`) whose public key is in host.toml
#   `break_glass_keys`; the CA goes down; `jit-ca break-glass sign` (no data directory, no
#   network) makes a grant; windows over 24 h are refused unless asked for; `jit-host install`
#   accepts it and real sudo (pam_jit.so in the account stack) allows; the CA comes back;
#   `jit-ca revoke-grant ID` while it runs; within seconds the served revocation list names
#   it, `jit-host sync` installs it and sudo is denied as revoked.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
command -v sudo >/dev/null || sys_die "sudo is not installed (run tests/install-deps.sh)"
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user bob 2002
sys_add_user jitw 2003
cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nbob ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d"; cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d

# run USER CMD... -> RC, OUT (no tty, empty environment)
run() {
  local user=$1; shift
  set +e
  OUT=$(sys_timeout setsid -w setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LANG=C "$@" 2>&1 </dev/null)
  RC=$?
  set -e
}

# The CA.
CA=$W/ca; CA_PORT=18444; URL=http://127.0.0.1:$CA_PORT
"$JIT_CA" init --dir "$CA" >/dev/null
CA_PID=
start_ca() {
  "$JIT_CA" serve --dir "$CA" --listen "127.0.0.1:$CA_PORT" >>"$W/ca.log" 2>&1 &
  CA_PID=$!
  local i; for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$CA_PORT) 2>/dev/null && return 0; sleep 0.1; done
  sys_die "jit-ca did not start: $(cat "$W/ca.log")"
}
stop_ca() { [ -n "$CA_PID" ] && kill "$CA_PID" 2>/dev/null && wait "$CA_PID" 2>/dev/null; CA_PID=; return 0; }
trap 'stop_ca' EXIT
start_ca

# Runbook 1: the offline key (made on a machine with no CA data and no network).
OFF=$W/offline; mkdir -m 0700 "$OFF"
out=$(env -i PATH=/usr/bin:/bin "$JIT_CA" break-glass keygen --out "$OFF/break-glass" 2>&1) || sys_die "keygen: $out"
[ "$(stat -c %a "$OFF/break-glass")" = 600 ] && t_ok "break-glass keygen wrote a 0600 key" || t_bad "key mode $(stat -c %a "$OFF/break-glass")"
BG_PUB=$(cat "$OFF/break-glass.pub")

# Runbook 2: every host trusts it (break_glass_keys in host.toml), set up as the README says.
STATE=$W/state
CONF=$W/etc/host.toml; mkdir -p "$W/etc"
"$JIT_CA" host-config --dir "$CA" 2>/dev/null \
  | sed -e "s|^server = .*|server = \"$URL\"|" -e "s|^state_dir = .*|state_dir = \"$STATE\"|" \
        -e 's|^grant_writer = .*|grant_writer = "jitw"|' \
        -e "s|^break_glass_keys = .*|break_glass_keys = [\"$BG_PUB\"]|" > "$CONF"
TEXTFILE=$W/node-exporter; mkdir -p "$TEXTFILE"
printf 'textfile_dir = "%s"\n' "$TEXTFILE" >> "$CONF"
bg_metric() { awk '$1 == "jit_host_break_glass_grants" {print $2}' "$TEXTFILE/jit_host.prom" 2>/dev/null; }
chmod 0644 "$CONF"
grep -q "^break_glass_keys = \[\"ssh-ed25519 " "$CONF" || sys_die "break_glass_keys not set: $(cat "$CONF")"
out=$("$JIT_HOST" --config "$CONF" setup --sudo --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) || sys_die "first sync: $out"
run bob sudo -n true
[ $RC != 0 ] && t_ok "no grant: sudo denied" || t_bad "sudo allowed without a grant: $OUT"

# Runbook 3: the CA is down; sign a grant offline and install it.
stop_ca
(exec 3<>/dev/tcp/127.0.0.1/$CA_PORT) 2>/dev/null && sys_die "the CA is still up"
sign() { env -i PATH=/usr/bin:/bin "$JIT_CA" break-glass sign --key "$OFF/break-glass" --user bob \
  --hosts db-1 --reason "CA down, INC-7" "$@"; }
set +e; out=$(sign --duration 25h --out "$OFF/long.grant" 2>&1); rc=$?; set -e
[ $rc != 0 ] && grep -q break_glass_max_window_secs <<<"$out" && [ ! -e "$OFF/long.grant" ] \
  && t_ok "a 25h break-glass window is refused, with the reason" || t_bad "25h window: rc $rc: $out"
out=$(sign --duration 2h --out "$OFF/bg.grant" --json 2>&1) || sys_die "sign: $out"
BG_ID=$(jq -r .id <<<"$out")
[[ $BG_ID == bg-* ]] && t_ok "break-glass sign wrote grant $BG_ID offline" || t_bad "no id: $out"
out=$("$JIT_HOST" --config "$CONF" install "$OFF/bg.grant" 2>&1) && t_ok "jit-host install accepts the break-glass grant" || t_bad "install: $out"
run bob sudo -n id -u
[ $RC = 0 ] && [ "$OUT" = 0 ] && t_ok "sudo allowed by the break-glass grant while the CA is down" || t_bad "sudo with break-glass grant: rc $RC: $OUT"
# The sync timer keeps running while the CA is down: its failed sync still reports the grant
# to monitoring (JitBreakGlassGrantPresent in packaging/prometheus/jit.rules.yml).
[ "$(bg_metric)" = 0 ] || t_bad "before the failed sync the metrics file should still say 0: $(bg_metric)"
set +e; out=$("$JIT_HOST" --config "$CONF" sync 2>&1); rc=$?; set -e
[ $rc != 0 ] && [ "$(bg_metric)" = 1 ] && grep -qx 'jit_host_last_sync_success 0' "$TEXTFILE/jit_host.prom" \
  && t_ok "a failed sync (CA down) writes jit_host_break_glass_grants 1 for the alert" \
  || t_bad "metrics after a failed sync with a break-glass grant: rc $rc: $(grep -v '^#' "$TEXTFILE/jit_host.prom" 2>&1 | tr '\n' ' ')"

# Runbook 4: the CA is back; revoke the grant while it runs; hosts apply it at their next sync.
start_ca
out=$("$JIT_CA" revoke-grant "$BG_ID" --reason "outage over" --dir "$CA" 2>&1) && t_ok "revoke-grant $BG_ID" || t_bad "revoke-grant: $out"
seen=
for i in $(seq 50); do
  if curl -fsS "$URL/v1/revocations" | grep -qF "\"$BG_ID\""; then seen=1; break; fi
  sleep 0.1
done
[ -n "$seen" ] && t_ok "the running CA serves the revocation within 5 s" || t_bad "revocation not served within 5 s"
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) || t_bad "sync after revocation: $out"
[ "$(bg_metric)" = 0 ] && grep -qx 'jit_host_last_sync_success 1' "$TEXTFILE/jit_host.prom" \
  && t_ok "after revoke-grant and sync: jit_host_break_glass_grants 0" || t_bad "metrics after revocation: $(grep -v '^#' "$TEXTFILE/jit_host.prom" | tr '\n' ' ')"
run bob sudo -n true
[ $RC != 0 ] && grep -q "grant $BG_ID was revoked" <<<"$OUT" \
  && t_ok "after revoke-grant and sync: sudo denied, naming the revocation" || t_bad "after revocation: rc $RC: $OUT"
"$JIT_CA" audit verify --dir "$CA" >/dev/null && t_ok "audit trail intact" || t_bad "audit verify failed"
# -s + any(): jq -e over a stream takes its exit status from the last record only, and since
# issue 15 revoke-grant appends an `alert` record after its grant_revocation record.
"$JIT_CA" audit export --dir "$CA" --json >"$W/audit.jsonl"
jq -s -e "any(.[]; .event == \"grant_revocation\" and .details.grant_id == \"$BG_ID\")" "$W/audit.jsonl" >/dev/null \
  && t_ok "the revocation is audited" || t_bad "no grant_revocation record"
jq -s -e '[.[] | select(.event == "alert" and .details.kind == "break_glass")] | length == 1' "$W/audit.jsonl" >/dev/null \
  && t_ok "revoke-grant raised exactly one alert.break_glass record" || t_bad "no single break_glass alert record"

t_summary
