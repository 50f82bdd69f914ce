#!/usr/bin/env bash
# pam_jit.so through real libpam: pamtester + pam_wrapper (service files in a test
# directory, /etc/pam.d untouched), run as a test user so the uid cross-check is real.
# The whole decision matrix: valid, expired, not yet valid, wrong user, wrong host,
# revoked, stale list, break-glass, tampered, symlinked file, world-writable dir, missing
# or unsafe config, audit mode, ignored service, uid mismatch; plus the module's exports
# and its syslog lines; and root's verified-grant records (allow via a record, a hostile
# grant writer's forged grant and self-written record denied, key changes invalidate).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter "$@"
sys_bins
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user alice 2001
sys_add_user bob 2002
sys_add_user jitw 2003   # the grant writer, played hostile in section 9
sys_private_dev "$W"
mkdir -p "$W/log"
sys_start_syslog "$W/log"
trap sys_stop_syslog EXIT

# 0. Exactly the six pam_sm_* symbols are exported.
exported=$(nm -D --defined-only "$PAM_JIT_SO" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort | tr '\n' ' ')
want="pam_sm_acct_mgmt pam_sm_authenticate pam_sm_chauthtok pam_sm_close_session pam_sm_open_session pam_sm_setcred "
if [ "$exported" = "$want" ]; then t_ok "exports exactly the six pam_sm_* symbols"; else t_bad "exports: $exported"; fi

K=$W/keys; mkdir -p "$K"
host_keygen "$K/grant"; host_keygen "$K/glass"; host_keygen "$K/other"
STATE=$W/state; host_state_dir "$STATE"
host_fresh_revocations "$K/grant" "$STATE"   # a synced host (without one every grant is denied)
CONF=$W/etc/host.toml
SVC=$W/pam.d; mkdir -p "$SVC"
write_services() { # CONFIG
  local c=$1
  printf 'account requisite %s config=%s\naccount required pam_permit.so\n' "$PAM_JIT_SO" "$c" > "$SVC/sudo"
  cp "$SVC/sudo" "$SVC/sudo-i"
  # For an ungated service only PAM_IGNORE gets past: success dies, ignore skips pam_deny.
  printf 'account [ignore=1 default=die] %s config=%s\naccount required pam_deny.so\naccount required pam_permit.so\n' "$PAM_JIT_SO" "$c" > "$SVC/login"
  printf 'account required pam_deny.so\n' > "$SVC/other"
}
write_services "$CONF"
config() { host_config "$CONF" "$STATE" "$K/grant.pub" "break_glass_keys = [\"$(cat "$K/glass.pub")\"]" "$@"; }
config

NOW=$(date +%s)
G=$W/g; mkdir -p "$G"
clear_grants() { rm -rf "$STATE/grants/alice"; host_fresh_revocations "$K/grant" "$STATE"; }

# run_pam USER RUSER SERVICE -> sets RC, OUT (stdout+stderr). As USER (real uid), with a
# clean environment; PAM_WRAPPER_USE_SYSLOG makes pam_wrapper pass pam_syslog to syslog(3).
run_pam() { sys_pamtester "$SVC" "$@"; }

expect() { # NAME allow|deny|ignore [NEEDLE] -- USER RUSER SERVICE
  local name=$1 want=$2 needle=${3:-}; shift 3; [ "${1:-}" = -- ] && shift
  run_pam "$@"
  local got=deny
  [ $RC = 0 ] && got=allow
  if [ "$want" = ignore ]; then want=allow; fi
  if [ "$got" != "$want" ]; then t_bad "$name: expected $want, got $got: $OUT"; return; fi
  if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$OUT"; then t_bad "$name: no \"$needle\" in: $OUT"; return; fi
  if [ "$want" = allow ] && grep -q 'jit:' <<<"$OUT"; then t_bad "$name: printed on success: $OUT"; return; fi
  t_ok "$name"
}

# 1. Valid grant: allowed silently, for sudo and sudo-i.
host_sign_grant "$K/grant" "$G/valid" g-valid alice dba 'db-*' $((NOW - 60)) $((NOW + 600))
host_put_grant "$STATE" alice "$G/valid"
expect "valid grant allows (sudo)" allow "" -- alice alice sudo
expect "valid grant allows (sudo-i)" allow "" -- alice alice sudo-i
sys_wait_log "$W/log/auth.log" "result=allow user=alice uid=2001 service=sudo" \
  && t_ok "allow logged to authpriv with user and uid" || t_bad "no allow line in syslog: $(tail -3 "$W/log/auth.log" 2>/dev/null)"
grep "result=allow user=alice" "$W/log/auth.log" | grep -q 'pam_jit(sudo:account).*grant=g-valid' \
  && t_ok "log line names service and grant" || t_bad "log line: $(grep result=allow "$W/log/auth.log" | tail -1)"

# 2. The caller must be PAM_RUSER.
expect "uid mismatch denies (bob claims to be alice)" deny "is not the calling process's user" -- bob alice sudo
expect "missing PAM_RUSER denies" deny "PAM_RUSER is not set" -- alice "" sudo

# 3. Windows, users, hosts.
clear_grants
host_sign_grant "$K/grant" "$G/expired" g-expired alice dba 'db-*' $((NOW - 7200)) $((NOW - 3600))
host_put_grant "$STATE" alice "$G/expired"
expect "expired grant denies with when and what to run" deny "jit: sudo denied for alice on db-1: grant g-expired expired at" -- alice alice sudo
expect "expired message says how to ask again" deny 'run: jit request dba --duration 30m --reason "..."' -- alice alice sudo
sys_wait_log "$W/log/auth.log" "result=deny user=alice uid=2001" && t_ok "deny logged" || t_bad "no deny line in syslog"

clear_grants
host_sign_grant "$K/grant" "$G/future" g-future alice dba 'db-*' $((NOW + 3600)) $((NOW + 7200))
host_put_grant "$STATE" alice "$G/future"
expect "not-yet-valid grant denies" deny "grant g-future starts at" -- alice alice sudo

clear_grants
host_sign_grant "$K/grant" "$G/bob" g-bob bob dba 'db-*' $((NOW - 60)) $((NOW + 600))
host_put_grant "$STATE" alice "$G/bob"
expect "another user's grant (in alice's dir) denies" deny "is for user bob" -- alice alice sudo
host_put_grant "$STATE" bob "$G/bob"
expect "bob's own grant allows bob" allow "" -- bob bob sudo

clear_grants
host_sign_grant "$K/grant" "$G/web" g-web alice dba 'web-*' $((NOW - 60)) $((NOW + 600))
host_put_grant "$STATE" alice "$G/web"
expect "another host's grant denies" deny "grant g-web covers hosts web-*, not this one" -- alice alice sudo
config 'hostnames = ["web-7"]'
expect "a host name from host.toml counts" allow "" -- alice alice sudo
config

clear_grants
host_sign_grant "$K/grant" "$G/nosudo" g-nosudo alice viewer 'db-*' $((NOW - 60)) $((NOW + 600)) false
host_put_grant "$STATE" alice "$G/nosudo"
expect "a grant without sudo denies" deny "does not allow sudo" -- alice alice sudo

# 4. Revocation and staleness.
clear_grants
host_sign_grant "$K/grant" "$G/rev" g-rev alice dba 'db-*' $((NOW - 60)) $((NOW + 600)) true 77
host_put_grant "$STATE" alice "$G/rev"
host_sign_revocations "$K/grant" "$W/rev1" 1 "$NOW" "g-rev" ""
install -m 0644 "$W/rev1" "$STATE/revocations"
expect "revoked grant id denies" deny "grant g-rev was revoked" -- alice alice sudo
host_sign_revocations "$K/grant" "$W/rev2" 2 "$NOW" "" "77"
install -m 0644 "$W/rev2" "$STATE/revocations"
expect "revoked certificate serial denies" deny "serial 77 is revoked" -- alice alice sudo
host_sign_revocations "$K/grant" "$W/rev3" 3 "$NOW" "g-other" "1"
install -m 0644 "$W/rev3" "$STATE/revocations"
expect "unrelated revocations do not deny" allow "" -- alice alice sudo
chown 2001 "$STATE/revocations"
expect "a revocation list not owned by root denies" deny "revocation list is unusable" -- alice alice sudo
chown 0 "$STATE/revocations"
host_sign_revocations "$K/other" "$W/rev-forged" 9 "$NOW" "" ""
install -m 0644 "$W/rev-forged" "$STATE/revocations"
expect "a revocation list signed by another key denies" deny "revocation list is invalid" -- alice alice sudo

config "revocation_max_age_secs = 600"
host_sign_revocations "$K/grant" "$W/rev-old" 4 $((NOW - 3600)) "" ""
install -m 0644 "$W/rev-old" "$STATE/revocations"
expect "stale revocation list denies" deny "older than 10m" -- alice alice sudo
rm -f "$STATE/revocations"
expect "missing revocation list with a bound denies" deny "this host has no revocation list" -- alice alice sudo
config
expect "missing revocation list with the default config denies (never synced), says what to run" deny "(it has never synced with the CA); ask an administrator to run: jit-host sync" -- alice alice sudo
host_sign_revocations "$K/grant" "$W/rev-13h" 4 $((NOW - 13 * 3600)) "" ""
install -m 0644 "$W/rev-13h" "$STATE/revocations"
expect "a list older than the default bound (12h) denies, naming the stale list" deny "the revocation list is stale" -- alice alice sudo
config "revocation_max_age_secs = 0"
expect "revocation_max_age_secs = 0 is refused as invalid (fails closed)" deny "revocation_max_age_secs: 0 (no staleness bound) is not accepted" -- alice alice sudo
config "revocation_max_age_secs = 600"
install -m 0644 "$W/rev-old" "$STATE/revocations"
host_sign_grant "$K/glass" "$G/glass" g-glass alice breakglass 'db-*' $((NOW - 60)) $((NOW + 600))
host_put_grant "$STATE" alice "$G/glass"
expect "break-glass grant allows despite a stale list" allow "" -- alice alice sudo
sys_wait_log "$W/log/auth.log" "BREAK-GLASS grant g-glass" && t_ok "break-glass use logged loudly" || t_bad "no BREAK-GLASS log line"
host_sign_revocations "$K/grant" "$W/rev-fresh" 5 "$NOW" "" ""
install -m 0644 "$W/rev-fresh" "$STATE/revocations"
rm -f "$STATE/grants/alice/g-glass.grant"
expect "fresh list with a bound allows" allow "" -- alice alice sudo
config

# 4b. The window of a break-glass grant is capped (break_glass_max_window_secs, 24 h default).
clear_grants
host_sign_grant "$K/glass" "$G/glass-25h" g-glass25 alice breakglass 'db-*' $((NOW - 60)) $((NOW - 60 + 25 * 3600))
host_put_grant "$STATE" alice "$G/glass-25h"
expect "a 25 h break-glass grant denies, naming the cap" deny "more than break_glass_max_window_secs" -- alice alice sudo
host_sign_grant "$K/glass" "$G/glass-24h" g-glass24 alice breakglass 'db-*' $((NOW - 60)) $((NOW - 60 + 24 * 3600))
host_put_grant "$STATE" alice "$G/glass-24h"
expect "a 24 h break-glass grant allows" allow "" -- alice alice sudo
config "break_glass_max_window_secs = 3600"
expect "a configured 1 h cap denies the 24 h break-glass grant" deny "more than break_glass_max_window_secs (1h)" -- alice alice sudo
config
clear_grants

# 5. Files: tampered, untrusted signer, symlink, modes, owners.
clear_grants
sed 's/system test/system tesT/' "$G/valid" > "$G/tampered"
host_put_grant "$STATE" alice "$G/tampered"
expect "tampered grant denies" deny "altered" -- alice alice sudo
clear_grants
host_sign_grant "$K/other" "$G/forged" g-forged alice dba 'db-*' $((NOW - 60)) $((NOW + 600))
host_put_grant "$STATE" alice "$G/forged"
expect "grant signed by an untrusted key denies" deny "not a trusted key" -- alice alice sudo

clear_grants
mkdir -p "$STATE/grants/alice" "$W/elsewhere"
install -m 0644 "$G/valid" "$W/elsewhere/g-valid.grant"
ln -s "$W/elsewhere/g-valid.grant" "$STATE/grants/alice/g-valid.grant"
expect "symlinked grant file denies" deny "symbolic link" -- alice alice sudo
clear_grants
ln -s "$W/elsewhere" "$STATE/grants/alice"
expect "symlinked user directory denies" deny "symbolic link" -- alice alice sudo
rm -f "$STATE/grants/alice"

host_put_grant "$STATE" alice "$G/valid"
chmod 0777 "$STATE/grants/alice"
expect "world-writable user directory denies" deny "writable by group or others" -- alice alice sudo
chmod 0755 "$STATE/grants/alice"; chmod 0775 "$STATE/grants"
expect "group-writable grants directory denies" deny "writable by group or others" -- alice alice sudo
chmod 0755 "$STATE/grants"
chmod 0666 "$STATE/grants/alice/g-valid.grant"
expect "world-writable grant file denies" deny "writable by group or others" -- alice alice sudo
chmod 0644 "$STATE/grants/alice/g-valid.grant"
chown 2001 "$STATE/grants/alice/g-valid.grant"
expect "grant file owned by the user denies" deny "not trusted" -- alice alice sudo
chown 0 "$STATE/grants/alice/g-valid.grant"
expect "back to a good file allows" allow "" -- alice alice sudo

# 6. Configuration.
mv "$CONF" "$CONF.away"
expect "missing config denies sudo" deny "host configuration is unusable" -- alice alice sudo
expect "missing config ignores other services" ignore "" -- alice alice login
mv "$CONF.away" "$CONF"
chmod 0666 "$CONF"
expect "world-writable config denies" deny "writable by group or others" -- alice alice sudo
chmod 0644 "$CONF"; chown 2001 "$CONF"
expect "config owned by a user denies" deny "not trusted" -- alice alice sudo
chown 0 "$CONF"
echo 'surprise = 1' >> "$CONF"
expect "unknown config key denies" deny "surprise" -- alice alice sudo
config
expect "ungated service returns PAM_IGNORE" ignore "" -- alice alice login

# 7. Audit mode: allows, says nothing, logs what it would have denied.
clear_grants
config 'mode = "audit"'
expect "audit mode allows without a grant" allow "" -- alice alice sudo
sys_wait_log "$W/log/auth.log" "result=audit-allow user=alice" && t_ok "audit mode logs the would-be denial" || t_bad "no audit-allow log line"
config

# 8. The same decision from jit-host check.
host_put_grant "$STATE" alice "$G/valid"
if "$JIT_HOST" --config "$CONF" check alice >/dev/null; then t_ok "jit-host check agrees (allow)"; else t_bad "jit-host check denied a valid grant"; fi
rm -f "$STATE/grants/alice/g-valid.grant"
if out=$("$JIT_HOST" --config "$CONF" check alice --json); then t_bad "jit-host check allowed without a grant"
else jq -e '.allowed == false and .result == "deny"' <<<"$out" >/dev/null && t_ok "jit-host check --json agrees (deny)" || t_bad "check json: $out"; fi
# jit-host check warns when the staleness bound conflicts with the CA's revocation_refresh.
config "revocation_max_age_secs = 600"
out=$("$JIT_HOST" --config "$CONF" check alice 2>&1 || true)
grep -q "warning: revocation_max_age_secs = 600 is less than the CA's revocation_refresh" <<<"$out" \
  && t_ok "jit-host check warns about a bound below revocation_refresh + two sync periods" || t_bad "check warning: $out"
out=$("$JIT_HOST" --config "$CONF" check alice --json 2>&1 || true)
jq -e '.warnings | length == 1' <<<"$out" >/dev/null && t_ok "jit-host check --json lists the warning" || t_bad "check json warnings: $out"
config

# 9. Root's verified-grant records (<state_dir>/verified): a hit replaces only the signature
# check; the grant writer cannot make the module skip verification of a grant it forged.
clear_grants
config 'grant_writer = "jitw"'
chown jitw "$STATE/grants"
REC=$STATE/verified
host_put_grant "$STATE" alice "$G/valid"
chown jitw "$STATE/grants/alice"
out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || t_bad "jit-host gc failed: $out"
VALID_SHA=$(sha256sum "$G/valid" | awk '{print $1}')
if [ -f "$REC/$VALID_SHA" ] && [ "$(stat -c '%u %a' "$REC" "$REC/$VALID_SHA" | tr '\n' ' ')" = "0 755 0 644 " ]; then
  t_ok "jit-host gc (root) records the verified grant, root-owned, named by its SHA-256"
else t_bad "no root record for g-valid: $(ls -la "$REC" 2>&1) / $out"; fi
expect "a recorded grant allows" allow "" -- alice alice sudo
sys_wait_log "$W/log/auth.log" "grant=g-valid session=- serial=- reason=\"grant g-valid covers alice on db-1 (signature verified earlier by root, per its record)\"" \
  && t_ok "the allow came through root's record (logged)" || t_bad "no record allow in syslog: $(grep result=allow "$W/log/auth.log" | tail -1)"
expect "a recorded grant allows sudo-i too" allow "" -- alice alice sudo-i
# Everything but the signature still applies on a hit: revocation.
host_sign_revocations "$K/grant" "$W/rev-r" 20 "$NOW" "g-valid" ""
install -m 0644 "$W/rev-r" "$STATE/revocations"
expect "a recorded grant that is revoked denies" deny "grant g-valid was revoked" -- alice alice sudo
host_fresh_revocations "$K/grant" "$STATE" 21

# The hostile grant writer forges a grant for alice (untrusted key) in the directory it owns.
host_sign_grant "$K/other" "$G/w-forged" g-wforged alice dba 'db-*' $((NOW - 60)) $((NOW + 600))
AS_W="setpriv --reuid=2003 --regid=2003 --clear-groups"
$AS_W cp "$G/w-forged" "$STATE/grants/alice/g-wforged.grant"
rm -f "$STATE/grants/alice/g-valid.grant"
FORGED_SHA=$(sha256sum "$G/w-forged" | awk '{print $1}')
KEYRING=$(awk '/^keyring /{print $2}' "$REC/$VALID_SHA")
FP=$(host_fingerprint "$K/other.pub")
printf 'jit-verified v1\nkind grant\nsha256 %s\nkeyring %s\nring grant\nsigner %s\n' "$FORGED_SHA" "$KEYRING" "$FP" > "$W/forged-record"
chmod 0644 "$W/forged-record"
# It cannot write into root's record directory...
if $AS_W cp "$W/forged-record" "$REC/$FORGED_SHA" 2>/dev/null; then t_bad "the grant writer could write into $REC"
else t_ok "the grant writer cannot write into root's record directory"; fi
# ...records it writes next to its grants are not looked at...
$AS_W cp "$W/forged-record" "$STATE/grants/alice/$FORGED_SHA"
expect "a forged grant with the writer's own record (in its directory) denies" deny "not a trusted key" -- alice alice sudo
# ...and even a record file it owns inside the record directory is ignored.
install -m 0644 -o jitw "$W/forged-record" "$REC/$FORGED_SHA"
expect "a forged grant with a writer-owned record in verified/ denies" deny "not a trusted key" -- alice alice sudo
chown jitw "$REC"; chown root "$REC/$FORGED_SHA"
expect "a forged grant with a record in a writer-owned verified/ denies" deny "not a trusted key" -- alice alice sudo
chown root "$REC"; chmod 0777 "$REC"
expect "a forged grant with a record in a world-writable verified/ denies" deny "not a trusted key" -- alice alice sudo
chmod 0755 "$REC"; rm -f "$REC/$FORGED_SHA" "$STATE/grants/alice/$FORGED_SHA"
# The writer swaps the bytes of a recorded grant for a forged one under the same name.
sed 's/"role": "dba"/"role": "dbx"/' "$G/valid" > "$W/swapped"; chmod 0644 "$W/swapped"
$AS_W cp "$W/swapped" "$STATE/grants/alice/g-valid.grant"
expect "a recorded grant's file with other bytes denies" deny "altered" -- alice alice sudo
# Root's indexing (gc, like the sync timer) refuses the forgeries and prunes stale records.
gc_rc=0; out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || gc_rc=$?
if [ "$gc_rc" = 0 ] && [ ! -e "$REC/$FORGED_SHA" ] && [ ! -e "$REC/$VALID_SHA" ] && grep -qE "[12] removed, 2 file\(s\) did not verify" <<<"$out"; then
  t_ok "root's indexing writes no record for forged grants and prunes the stale one"
else t_bad "after gc (exit $gc_rc): $(ls -la "$REC") / $out"; fi

# A key change in host.toml invalidates every record (slow path until the next index).
rm -f "$STATE/grants/alice/"*
host_put_grant "$STATE" alice "$G/valid"
gc_rc=0; out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || gc_rc=$?
# The record must exist (under the old keys) before the key change, or "the record is not
# used after a key change" below would pass for want of a record.
if [ "$gc_rc" = 0 ] && [ -f "$REC/$VALID_SHA" ] && [ "$(awk '/^keyring /{print $2}' "$REC/$VALID_SHA")" = "$KEYRING" ]; then
  t_ok "before the key change g-valid has a record under the old keys"
else t_bad "no record for g-valid before the key change (gc exit $gc_rc): $(ls -la "$REC" 2>&1) / $out"; fi
r0=$(grep -c 'grant=g-valid .*per its record' "$W/log/auth.log" || true)
expect "before the key change a recorded grant allows" allow "" -- alice alice sudo
for _ in $(seq 50); do [ "$(grep -c 'grant=g-valid .*per its record' "$W/log/auth.log" || true)" -gt "$r0" ] && break; sleep 0.1; done
if [ "$(grep -c 'grant=g-valid .*per its record' "$W/log/auth.log" || true)" -gt "$r0" ]; then
  t_ok "before the key change the allow came through the record"
else t_bad "before the key change the allow did not use the record: $(grep 'result=allow' "$W/log/auth.log" | tail -1)"; fi
# (break_glass_keys emptied: another keyring digest.)
host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"'

n0=$(grep -c 'result=allow' "$W/log/auth.log" || true)
expect "after a key change a recorded grant is verified again (still allows)" allow "" -- alice alice sudo
for _ in $(seq 50); do [ "$(grep -c 'result=allow' "$W/log/auth.log" || true)" -gt "$n0" ] && break; sleep 0.1; done
last=$(grep 'result=allow' "$W/log/auth.log" | tail -1)
if grep -q 'grant=g-valid' <<<"$last" && ! grep -q 'per its record' <<<"$last"; then t_ok "after a key change the record is not used"
else t_bad "record used after a key change (or no log line): $last"; fi
gc_rc=0; out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || gc_rc=$?
NEW_KEYRING=$(awk '/^keyring /{print $2}' "$REC/$VALID_SHA" 2>/dev/null)
if [ "$gc_rc" = 0 ] && [ -n "$NEW_KEYRING" ] && [ "$NEW_KEYRING" != "$KEYRING" ] && grep -q "written, 0 removed" <<<"$out"; then
  t_ok "re-indexing under the new keys rewrites the record"
else t_bad "re-index (exit $gc_rc): $out"; fi
config
chown root "$STATE/grants"
clear_grants

echo "sample log line: $(grep 'result=deny' "$W/log/auth.log" | tail -1)"

# 10. The log metrics: packaging/prometheus/pam_jit.mtail, run by the real mtail on this
# test's real syslog file (every line above, through libpam and rsyslogd), counts exactly
# the decisions the module logged: the denials, the break-glass uses, each result.
sys_stop_syslog   # every line written and flushed
log=$W/log/auth.log
count() { grep -cE "$1" "$log" || true; }
want_deny=$(count 'pam_jit\([^():]+:account\): result=deny ')
want_glass=$(count 'pam_jit\([^():]+:account\): result=(allow|audit-allow) .* reason="BREAK-GLASS ')
want_allow=$(count 'pam_jit\([^():]+:account\): result=allow ')
if ((want_deny > 5 && want_glass >= 1 && want_allow > want_glass)); then
  mkdir -p "$W/mtail"
  if mtail --one_shot --one_shot_format prometheus --progs "$SYS_ROOT/packaging/prometheus/pam_jit.mtail" \
      --logs "$log" --address 127.0.0.1 --port 0 --log_dir "$W/mtail" --logtostderr=false \
      >"$W/mtail/out" 2>"$W/mtail/err"; then
    got() { awk -v m="$1" '$1 == m {print $2}' "$W/mtail/out"; }
    got_deny=$(got 'pam_jit_sudo_denials_total{prog="pam_jit.mtail"}')
    got_glass=$(got 'pam_jit_break_glass_uses_total{prog="pam_jit.mtail"}')
    got_allow=$(got 'pam_jit_sudo_decisions_total{prog="pam_jit.mtail",result="allow"}')
    got_deny2=$(got 'pam_jit_sudo_decisions_total{prog="pam_jit.mtail",result="deny"}')
    if [ "$got_deny" = "$want_deny" ] && [ "$got_deny2" = "$want_deny" ] && [ "$got_glass" = "$want_glass" ] \
        && [ "$got_allow" = "$want_allow" ]; then
      t_ok "pam_jit.mtail counts the module's real lines ($want_deny denials, $want_glass break-glass uses, $want_allow allowances)"
    else
      t_bad "pam_jit.mtail counted deny=$got_deny/$got_deny2 break-glass=$got_glass allow=$got_allow; the log has $want_deny, $want_glass, $want_allow: $(grep -v '^#' "$W/mtail/out")"
    fi
  else t_bad "mtail failed: $(tail -3 "$W/mtail/err")"; fi
else t_bad "the log lacks the lines to count (deny $want_deny, break-glass $want_glass, allow $want_allow)"; fi
t_summary
