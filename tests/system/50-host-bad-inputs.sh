#!/usr/bin/env bash
# Host-side bad-input matrix (issue 7): pam_jit.so through real libpam (pamtester +
# pam_wrapper, run as the test user so the uid cross-check is real) against more than 40
# distinct bad inputs: every byte region of a grant tampered, wrong key and namespace,
# windows and skew, other user and host, revocation, staleness, symlinks, owners, modes,
# sizes, 100,000 files, unreadable store, missing/garbage/unsafe configuration, PAM_RUSER
# missing or lying. For EACH one:
#   * the account check is denied (and pamtester was not killed by a signal: no crash);
#   * exactly one line reaches the user, starting with "jit:";
#   * exactly one pam_jit line reaches syslog (a private rsyslogd on a private /dev/log),
#     and it says result=deny.
# Positive controls (a valid grant, skew just inside) prove the setup can allow at all.
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
sys_private_dev "$W"
mkdir -p "$W/log"
sys_start_syslog "$W/log"
LOG=$W/log/auth.log
trap sys_stop_syslog EXIT

K=$W/keys; mkdir -p "$K"
host_keygen "$K/grant"; host_keygen "$K/other"
STATE=$W/state; host_state_dir "$STATE"
CONF=$W/etc/host.toml
SVC=$W/pam.d; mkdir -p "$SVC"
printf 'account requisite %s config=%s\naccount required pam_permit.so\n' "$PAM_JIT_SO" "$CONF" > "$SVC/sudo"
cp "$SVC/sudo" "$SVC/sudo-i"
printf 'account required pam_deny.so\n' > "$SVC/other"
config() { host_config "$CONF" "$STATE" "$K/grant.pub" "clock_skew_secs = 60" "$@"; }
NOW=$(date +%s)
G=$W/g; mkdir -p "$G"

# Pristine state before each case: no grants, a fresh signed revocation list (a synced host),
# default config, modes.
reset() {
  rm -rf "$STATE" "$W/elsewhere"
  rm -f "$CONF" "$CONF.real"
  chmod 0755 "$(dirname "$CONF")" 2>/dev/null || true
  host_state_dir "$STATE"
  host_fresh_revocations "$K/grant" "$STATE"
  config
  NOW=$(date +%s)   # windows are relative to the moment of each case
}

# run_pam USER RUSER SERVICE -> RC, OUT. A timeout turns a hang into a failure.
run_pam() { sys_pamtester "$SVC" "$@"; }

log_lines() { grep -c 'pam_jit(' "$LOG" 2>/dev/null || true; }

# Waits until the syslog line count passes $1, then a little longer to catch extras.
wait_log_after() {
  local before=$1 i
  for i in $(seq 60); do [ "$(log_lines)" -gt "$before" ] && break; sleep 0.05; done
  sleep 0.15
}

CASES=0
# bad NAME [NEEDLE] [-- USER RUSER SERVICE]
bad() {
  local name=$1 needle=${2:-}; shift 2 || shift $#
  [ "${1:-}" = -- ] && shift
  local user=${1:-alice} ruser=${2-alice} service=${3:-sudo}
  CASES=$((CASES + 1))
  local before; before=$(log_lines)
  run_pam "$user" "$ruser" "$service"
  wait_log_after "$before"
  local problems=() user_lines new_logs
  [ "$RC" -ne 0 ] || problems+=("allowed")
  [ "$RC" -lt 124 ] || problems+=("pamtester exit $RC (hang or signal: a crash)")
  grep -qiE 'panick|segmentation|abort|core dumped' <<<"$OUT" && problems+=("crash text in output")
  user_lines=$(grep -v '^pamtester:' <<<"$OUT" | grep -c . || true)
  [ "$user_lines" = 1 ] || problems+=("$user_lines lines to the user (want 1)")
  grep -v '^pamtester:' <<<"$OUT" | head -1 | grep -q '^jit: ' || problems+=("user line does not start with 'jit: '")
  [ -z "$needle" ] || grep -qF -- "$needle" <<<"$OUT" || problems+=("no \"$needle\" in the message")
  new_logs=$(( $(log_lines) - before ))
  [ "$new_logs" = 1 ] || problems+=("$new_logs syslog lines (want 1)")
  tail -n "$new_logs" "$LOG" | grep -q 'result=deny' || problems+=("syslog line is not result=deny")
  if ((${#problems[@]})); then
    t_bad "$name: $(IFS=';'; echo "${problems[*]}") -- output: $(tr '\n' '|' <<<"$OUT")"
  else
    t_ok "$name"
  fi
}

good() { # NAME [-- USER RUSER SERVICE]: a positive control
  local name=$1; shift; [ "${1:-}" = -- ] && shift
  run_pam "${1:-alice}" "${2-alice}" "${3:-sudo}"
  if [ "$RC" = 0 ]; then t_ok "control: $name"; else t_bad "control: $name denied: $OUT"; fi
}

# A valid grant for alice on db-*, and its body/armour split for tampering.
sign() { host_sign_grant "$K/${8:-grant}" "$G/$1" "$1" "${2:-alice}" dba "${3:-db-*}" "${4:-$((NOW - 60))}" "${5:-$((NOW + 600))}" "${6:-true}" "${7:-}"; }
sign g-valid
put() { host_put_grant "$STATE" "${2:-alice}" "$1"; }
# put_raw FILE [NAME]: install bytes as alice's grant file NAME (default g-valid.grant).
put_raw() { mkdir -p "$STATE/grants/alice"; install -m 0644 -o root -g root "$1" "$STATE/grants/alice/${2:-g-valid.grant}"; }
# tamper SED_EXPR: the valid grant with one edit applied, installed.
tamper() { sed "$1" "$G/g-valid" > "$G/t"; cmp -s "$G/t" "$G/g-valid" && sys_die "tamper '$1' changed nothing"; put_raw "$G/t"; }
# tamper_line N COL: flip one base64 character at line N (1-based, of the file), column COL.
tamper_char() {
  local n=$1 col=$2
  awk -v n="$n" -v c="$col" 'NR==n { ch=substr($0,c,1); r=(ch=="A")?"B":"A"; $0=substr($0,1,c-1) r substr($0,c+1) } {print}' "$G/g-valid" > "$G/t"
  cmp -s "$G/t" "$G/g-valid" && sys_die "tamper_char $n $col changed nothing"
  put_raw "$G/t"
}
BEGIN_LINE=$(grep -n '^-----BEGIN SSH SIGNATURE-----$' "$G/g-valid" | cut -d: -f1)
END_LINE=$(grep -n '^-----END SSH SIGNATURE-----$' "$G/g-valid" | cut -d: -f1)

echo "# controls"
reset; put "$G/g-valid"; good "valid grant allows"
reset; sign g-skew-in alice 'db-*' $((NOW + 30)) $((NOW + 600)); put "$G/g-skew-in"; good "start 30s ahead, inside 60s skew"
reset; sign g-skew-in-end alice 'db-*' $((NOW - 600)) $((NOW - 30)); put "$G/g-skew-in-end"; good "ended 30s ago, inside 60s skew"

echo "# grant bytes: every region of the document tampered"
reset; tamper 's/"system test"/"system tesT"/';                      bad "body: reason text" "altered"
reset; tamper 's/"not_after": \([0-9]*\)/"not_after": 1\1/'; bad "body: window end extended" "altered"
reset; tamper 's/"db-\*"/"*"/';                                         bad "body: host selector widened" "altered"
reset; tamper 's/"user": "alice"/"user":"alice"/';                       bad "body: whitespace only"
reset; tamper 's/"key_id": "SHA256:/"key_id": "SHA256:x/';              bad "body: key_id"
reset; tamper '1s/^{/ {/';                                              bad "body: first byte"
reset; tamper "$((BEGIN_LINE - 1))s/^}/}  /";                           bad "body: last line before the signature"
reset; tamper "${BEGIN_LINE}s/SIGNATURE/SIGNATUR3/";                    bad "armour: BEGIN line"
reset; tamper_char $((BEGIN_LINE + 1)) 1;                               bad "armour: SSHSIG magic"
reset; tamper_char $((BEGIN_LINE + 1)) 45;                              bad "armour: public key bytes"
reset; tamper_char $((BEGIN_LINE + 2)) 10;                              bad "armour: namespace/hash bytes"
reset; tamper_char $((END_LINE - 1)) 8;                                 bad "armour: signature bytes"
reset; tamper "$((BEGIN_LINE + 1))N;s/\n//";                            bad "armour: base64 re-wrapped (non-canonical)"
reset; tamper "${END_LINE}s/END/END /";                                 bad "armour: END line"
reset; { cat "$G/g-valid"; echo "ssh-ed25519 AAAA appended"; } > "$G/t"; put_raw "$G/t"; bad "trailing data after the signature"
reset; sed 's/$/\r/' "$G/g-valid" > "$G/t"; put_raw "$G/t";            bad "CRLF line endings"
reset; head -c $(( $(wc -c < "$G/g-valid") / 2 )) "$G/g-valid" > "$G/t"; put_raw "$G/t"; bad "truncated at half"
reset; head -c -40 "$G/g-valid" > "$G/t"; put_raw "$G/t";               bad "truncated in the signature"
reset; : > "$G/t"; put_raw "$G/t";                                      bad "empty file"
reset; head -c 4096 /dev/urandom > "$G/t"; put_raw "$G/t";             bad "random bytes"
reset; { sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$G/g-valid"; } > "$G/t"; put_raw "$G/t"; bad "no signature block"
# Oversized: a correctly signed grant whose reason makes it larger than 16 KiB.
reset; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$G/g-valid" | jq --arg p "$(head -c 17000 /dev/zero | tr '\0' x)" '.reason = $p' > "$G/big"
rm -f "$G/big.sig"; ssh-keygen -q -Y sign -f "$K/grant" -n jit-grant@jit "$G/big" >/dev/null 2>&1
cat "$G/big" "$G/big.sig" > "$G/t"; put_raw "$G/t";                     bad "oversized (17 KiB, validly signed)"

echo "# keys and namespaces"
reset; sign g-forged alice 'db-*' "" "" true "" other; put "$G/g-forged"; bad "signed by an untrusted key" "not a trusted key"
reset; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$G/g-valid" > "$G/ns"; rm -f "$G/ns.sig"
ssh-keygen -q -Y sign -f "$K/grant" -n file "$G/ns" >/dev/null 2>&1; cat "$G/ns" "$G/ns.sig" > "$G/t"; put_raw "$G/t"; bad "signed in another namespace (file)"

echo "# windows, skew, user, host, sudo"
reset; sign g-exp alice 'db-*' $((NOW - 7200)) $((NOW - 3600)); put "$G/g-exp"; bad "expired" "expired at"
reset; sign g-fut alice 'db-*' $((NOW + 3600)) $((NOW + 7200)); put "$G/g-fut"; bad "not yet valid" "starts at"
reset; sign g-skew-out alice 'db-*' $((NOW + 90)) $((NOW + 600)); put "$G/g-skew-out"; bad "start 90s ahead, outside 60s skew"
reset; sign g-skew-out-end alice 'db-*' $((NOW - 600)) $((NOW - 90)); put "$G/g-skew-out-end"; bad "ended 90s ago, outside 60s skew"
reset; sign g-bob bob; put "$G/g-bob" alice; bad "another user's grant in alice's directory" "is for user bob"
reset; sign g-web alice 'web-*'; put "$G/g-web"; bad "another host's grant" "not this one"
reset; sign g-nosudo alice 'db-*' "" "" false; put "$G/g-nosudo"; bad "grant without sudo" "does not allow sudo"
reset; put "$G/g-valid"; bad "valid grant, but the sudo-i service and PAM_RUSER missing" "" -- alice "" sudo-i

echo "# revocation"
reset; sign g-rev alice 'db-*' "" "" true 77; put "$G/g-rev"
host_sign_revocations "$K/grant" "$STATE/revocations" 1 "$NOW" "g-rev" ""; chmod 0644 "$STATE/revocations"; bad "revoked grant id" "revoked"
reset; sign g-rev alice 'db-*' "" "" true 77; put "$G/g-rev"
host_sign_revocations "$K/grant" "$STATE/revocations" 2 "$NOW" "" "77"; chmod 0644 "$STATE/revocations"; bad "revoked certificate serial" "revoked"
reset; put "$G/g-valid"; config "revocation_max_age_secs = 600"
host_sign_revocations "$K/grant" "$STATE/revocations" 3 $((NOW - 3600)) "" ""; chmod 0644 "$STATE/revocations"; bad "stale revocation list" "older than"
reset; put "$G/g-valid"; config "revocation_max_age_secs = 600"; rm -f "$STATE/revocations"; bad "no revocation list while a bound is set" "no revocation list"
reset; put "$G/g-valid"; rm -f "$STATE/revocations"; bad "no revocation list with the default config (never synced)" "never synced"
reset; put "$G/g-valid"; host_sign_revocations "$K/grant" "$STATE/revocations" 3 $((NOW - 13 * 3600)) "" ""; chmod 0644 "$STATE/revocations"; bad "a 13 h old list with the default bound (12 h)" "stale"
reset; put "$G/g-valid"; config "revocation_max_age_secs = 0"; bad "revocation_max_age_secs = 0 (no bound) refused" "not accepted"
reset; put "$G/g-valid"; host_sign_revocations "$K/other" "$STATE/revocations" 9 "$NOW" "" ""; chmod 0644 "$STATE/revocations"; bad "revocation list signed by another key" "revocation list"
reset; put "$G/g-valid"; head -c 2000 /dev/urandom > "$STATE/revocations"; chmod 0644 "$STATE/revocations"; bad "garbage revocation list" "revocation list"
reset; put "$G/g-valid"; mkdir -p "$W/elsewhere"; host_sign_revocations "$K/grant" "$W/elsewhere/rev" 4 "$NOW" "" ""
rm -f "$STATE/revocations"; ln -s "$W/elsewhere/rev" "$STATE/revocations"; bad "symlinked revocation list" "revocation list"

echo "# the store: symlinks, owners, modes, odd files, sizes"
reset; mkdir -p "$STATE/grants/alice" "$W/elsewhere"; install -m 0644 "$G/g-valid" "$W/elsewhere/g-valid.grant"
ln -s "$W/elsewhere/g-valid.grant" "$STATE/grants/alice/g-valid.grant"; bad "symlinked grant file" "symbolic link"
reset; mkdir -p "$W/elsewhere"; install -m 0644 "$G/g-valid" "$W/elsewhere/g-valid.grant"
ln -s "$W/elsewhere" "$STATE/grants/alice"; bad "symlinked user directory" "symbolic link"
reset; mkdir -p "$W/elsewhere/alice"; install -m 0644 "$G/g-valid" "$W/elsewhere/alice/g-valid.grant"
rmdir "$STATE/grants"; ln -s "$W/elsewhere" "$STATE/grants"; bad "symlinked grants directory"
reset; put "$G/g-valid"; chown 2001 "$STATE/grants/alice/g-valid.grant"; bad "grant file owned by the user"
reset; put "$G/g-valid"; chown 2001 "$STATE/grants/alice"; bad "user directory owned by the user"
reset; put "$G/g-valid"; chown 2002 "$STATE/grants/alice/g-valid.grant"; bad "grant file owned by another user"
reset; put "$G/g-valid"; chmod 0664 "$STATE/grants/alice/g-valid.grant"; bad "group-writable grant file" "writable by group or others"
reset; put "$G/g-valid"; chmod 0646 "$STATE/grants/alice/g-valid.grant"; bad "world-writable grant file" "writable by group or others"
reset; put "$G/g-valid"; chmod 0777 "$STATE/grants/alice"; bad "world-writable user directory" "writable by group or others"
reset; put "$G/g-valid"; chmod 0775 "$STATE"; bad "group-writable state directory"
reset; put "$G/g-valid"; chmod 0600 "$STATE/grants/alice/g-valid.grant"; bad "unreadable grant file"
reset; put "$G/g-valid"; chmod 0700 "$STATE/grants/alice"; bad "unreadable user directory"
reset; put "$G/g-valid"; chmod 0700 "$STATE/grants"; bad "unreadable store (grants directory)"
reset; rm -rf "$STATE"; bad "state directory missing"
reset; mkdir -p "$STATE/grants/alice/g-dir.grant"; bad "a directory named like a grant"
reset; mkdir -p "$STATE/grants/alice"; mkfifo "$STATE/grants/alice/g-fifo.grant"; bad "a FIFO named like a grant (must not block)"
reset; mkdir -p "$STATE/grants/alice"; ln -s /dev/zero "$STATE/grants/alice/g-zero.grant"; bad "a symlink to /dev/zero"
# The denial is asserted here; how long it takes is measured by bench/run.sh (tests do not
# judge timings).
reset; put "$G/g-valid"; ( cd "$STATE/grants/alice" && seq -f 'g-%06.0f.grant' 100000 | xargs touch )
bad "100,000 files in the user directory (with a valid grant among them)"

echo "# configuration"
reset; put "$G/g-valid"; rm -f "$CONF"; bad "missing host.toml" "host configuration"
reset; put "$G/g-valid"; head -c 3000 /dev/urandom > "$CONF"; bad "garbage host.toml (binary)"
reset; put "$G/g-valid"; echo 'state_dir = [' > "$CONF"; bad "host.toml syntax error"
reset; put "$G/g-valid"; echo 'surprise = 1' >> "$CONF"; bad "unknown key in host.toml" "surprise"
reset; put "$G/g-valid"; echo "state_dir = \"$STATE\"" > "$CONF"; bad "host.toml without grant keys" "grant_keys"
reset; put "$G/g-valid"; config 'clock_skew_secs = 99999999'; bad "absurd clock skew in host.toml" "clock_skew_secs"
reset; put "$G/g-valid"; sed -i 's/AAAA/BBBB/' "$CONF"; bad "corrupt grant key line in host.toml" "grant_keys"
reset; put "$G/g-valid"; : > "$CONF"; bad "empty host.toml"
reset; put "$G/g-valid"; chmod 0666 "$CONF"; bad "world-writable host.toml" "writable by group or others"
reset; put "$G/g-valid"; chmod 0664 "$CONF"; bad "group-writable host.toml" "writable by group or others"
reset; put "$G/g-valid"; chown 2001 "$CONF"; bad "host.toml owned by the user"
reset; put "$G/g-valid"; mv "$CONF" "$CONF.real"; ln -s "$CONF.real" "$CONF"; bad "symlinked host.toml" "symbolic link"
reset; put "$G/g-valid"; head -c 300000 /dev/zero | tr '\0' '#' > "$CONF"; bad "oversized host.toml (300 KB of comments)"
reset; put "$G/g-valid"; chmod 0777 "$(dirname "$CONF")"; bad "world-writable directory above host.toml"

echo "# PAM items"
reset; put "$G/g-valid"; bad "PAM_RUSER missing" "PAM_RUSER" -- alice "" sudo
reset; put "$G/g-valid"; bad "PAM_RUSER names another user than the uid" "" -- bob alice sudo
reset; put "$G/g-valid"; bad "PAM_RUSER root from an unprivileged uid" "" -- alice root sudo
reset; put "$G/g-valid"; bad "PAM_RUSER with a path (../alice)" "" -- alice "../alice" sudo
reset; put "$G/g-valid"; bad "PAM_RUSER of a user that does not exist" "" -- alice "nosuchuser" sudo
reset; put "$G/g-valid"; bad "sudo-i: PAM_RUSER names another user" "" -- bob alice sudo-i

echo "host bad-input matrix: $CASES bad inputs"
[ "$CASES" -ge 40 ] || t_bad "fewer than 40 bad inputs ($CASES)"
t_summary
