#!/usr/bin/env bash
# Issue 14, session-bound elevation, part 2 (the host of tests/lib/session.sh: real sshd with
# `UsePAM yes`, sudo and sudo-rs, `jit-host setup --sudo --sshd --session`, in namespaces):
# a grant that is not session-bound behaves as before (inside and outside the session); the
# session-bound grant outside any session; `jit-host end-session`; a host without
# pam_loginuid (and an sshd that inherited an audit session) denies with the fix-it message
# and `jit-host check` says so (the denial pinned to the runner's audit session; no-bind lines
# in syslog with session= serial=); ~/.pam_environment cannot forge SSH_AUTH_INFO_0, not even
# through a second pam_jit line after pam_env user_readenv=1; a binding
# from another boot or with another leader start time denies; the grant's window still
# ends it; `jit-host gc` (a binding goes once its grant has ended); SSH_AUTH_INFO_0 never reaches the user's environment; `setup --session
# --undo` restores /etc/pam.d/sshd byte for byte.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
. "$HERE/../lib/session.sh"
sys_enter --net "$@"
session_host

# ---- 1. a grant that is not session-bound behaves as before ---------------------------------
reset_grants
ssh_cert c2 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo RC1=\$?; $SUDO_RS -n true 2>&1; echo RC2=\$?"
SID=$(sed -n 's/^SID=//p' <<<"$OUT")
grep -qx RC1=0 <<<"$OUT" && grep -qx RC2=0 <<<"$OUT" && t_ok "an unbound grant allows sudo and sudo-rs inside the session" \
  || t_bad "unbound grant in the session: $OUT"
[ ! -e "$SDIR/$SID.binding" ] && t_ok "an unbound grant's login writes no binding" || t_bad "binding for an unbound grant: $(cat "$SDIR/$SID.binding")"
outside() { # SUDO -> RC, OUT: alice outside any SSH session (the test's own audit session)
  set +e
  OUT=$(sys_timeout setsid -w setpriv --reuid=2001 --regid=2001 --clear-groups env -i PATH=/usr/bin:/bin HOME=/ LANG=C "$1" -n true 2>&1 </dev/null)
  RC=$?
  set -e
}
outside "$SUDO"; r1=$RC; outside "$SUDO_RS"; r2=$RC
[ "$r1" = 0 ] && [ "$r2" = 0 ] && t_ok "an unbound grant allows sudo and sudo-rs from outside the session, as before" \
  || t_bad "unbound grant outside: $r1 $r2 $OUT"
# The session-bound grant from outside any SSH session: denied, saying why.
reset_grants
ssh_cert c1 true
outside "$SUDO"
MY_SID=$(cat /proc/self/sessionid)
if [ "$MY_SID" = 4294967295 ]; then want="no login session (no audit session id)"; else want="SSH session $MY_SID has no binding"; fi
[ "$RC" = 1 ] && grep -qF "$want" <<<"$OUT" && t_ok "the session-bound grant is denied outside its session: \"$want\"" \
  || t_bad "bound grant outside the session: rc $RC: $OUT"

# ---- 2. jit-host end-session ---------------------------------------------------------------
reset_grants
bg_cert c1 "$W/s9.out" "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo R1=\$?; sleep 2.5; $SUDO -n true 2>&1; echo R2=\$?"
wait_file "$W/s9.out"; sleep 0.8
SID=$(sed -n 's/^SID=//p' "$W/s9.out")
if out=$("$JIT_HOST" --config "$CONF" check alice --session "$SID" 2>&1); then
  t_ok "jit-host check alice --session $SID allows while the connection lives"
else t_bad "check --session while alive: $out"; fi
out=$("$JIT_HOST" --config "$CONF" end-session "$SID" 2>&1) && ok=1 || ok=0
wait "$BG" || true
if out2=$("$JIT_HOST" --config "$CONF" check alice --session "$SID" 2>&1); then t_bad "check --session after end-session allowed: $out2"
else grep -q "session $SID, which ended at" <<<"$out2" && t_ok "jit-host check --session $SID denies after end-session, saying when it ended" \
  || t_bad "check --session after end-session: $out2"; fi
if [ $ok = 1 ] && grep -qx R1=0 "$W/s9.out" && grep -qx R2=1 "$W/s9.out" && grep -q "session $SID, which ended at" "$W/s9.out"; then
  t_ok "jit-host end-session $SID: the next sudo in that live connection is denied (\"which ended at\")"
else t_bad "end-session: $ok: $out / $(cat "$W/s9.out")"; fi
[ "$(binding_field "$SID" .ended_by)" = "jit-host end-session" ] && t_ok "the binding says ended_by \"jit-host end-session\"" \
  || t_bad "binding after end-session: $(cat "$SDIR/$SID.binding" 2>&1)"
sys_wait_log "$LOG" "end-session" && grep -i 'end-session' "$LOG" | grep -q "$SID" \
  && t_ok "end-session is audited to syslog" || t_bad "no end-session line in syslog: $(tail -3 "$LOG")"
if out=$("$JIT_HOST" --config "$CONF" end-session 3999999999 2>&1); then t_bad "end-session of an unknown id succeeded: $out"
else grep -q 3999999999 <<<"$out" && t_ok "end-session of an unknown id fails naming it: $out" || t_bad "unknown id: $out"; fi

# ---- 3. a host without pam_loginuid --------------------------------------------------------
reset_grants
[ "$("$JIT_HOST" --config "$CONF" check alice --json 2>/dev/null | jq -r .session_binding.ready 2>/dev/null)" = true ] \
  && t_ok "jit-host check --json: session_binding.ready on the prepared host" \
  || t_bad "check --json on the prepared host: $("$JIT_HOST" --config "$CONF" check alice --json 2>&1)"
grep -v 'pam_loginuid' "$W/sshd.pam.jit" > /etc/pam.d/sshd
ssh_cert c1 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo RC=\$?"
# The connection inherits the runner's audit session (sshd was started from it): unset, the
# denial is "no audit session id"; set, it is that session's "has no binding". Both name
# pam_loginuid, so that alone would not tell them apart.
RUN_SID=$(cat /proc/self/sessionid)
if [ "$RUN_SID" = 4294967295 ]; then want="no audit session id"; else want="SSH session $RUN_SID has no binding"; fi
if grep -qx RC=1 <<<"$OUT" && grep -qF "$want" <<<"$OUT" && grep -q "pam_loginuid" <<<"$OUT"; then
  t_ok "without pam_loginuid: login works, sudo denied with the fix-it message: \"$want\", naming pam_loginuid"
else t_bad "no pam_loginuid (want \"$want\"): rc $RC: $OUT"; fi
if [ "$RUN_SID" = 4294967295 ]; then nb="session=- serial=101 grant=g-1"; else nb="session=$RUN_SID serial=101 grant=g-1"; fi
if sys_wait_log "$LOG" "result=no-bind" && grep 'result=no-bind' "$LOG" | grep -qF "$nb"; then
  t_ok "syslog: the no-bind line without pam_loginuid carries $nb"
else t_bad "syslog no-bind line (want $nb): $(grep 'result=no-bind' "$LOG" | tail -2)"; fi
out=$("$JIT_HOST" --config "$CONF" check alice 2>&1) || true
# The host's own report (not only the denial the user would see, which names it too).
grep -i 'session-bound grants:' <<<"$out" | grep -q pam_loginuid && t_ok "jit-host check reports that this host cannot bind: pam_loginuid" \
  || t_bad "jit-host check: $out"
[ "$("$JIT_HOST" --config "$CONF" check alice --json 2>/dev/null | jq -r .session_binding.ready 2>/dev/null)" = false ] \
  && t_ok "jit-host check --json: session_binding.ready is false without pam_loginuid" || t_bad "check --json without pam_loginuid"
# The same host, with sshd started from a process that has an audit session (an admin's
# shell): every connection inherits the listener's id, which must not be taken for a login
# session of its own.
sh -c 'echo 0 > /proc/self/loginuid && exec "$@"' sshd /usr/sbin/sshd -D -e -o UsePAM=yes -o PidFile=none \
  -o ListenAddress=127.0.0.1 -o Port=2222 >/dev/null 2>>"$W/sshd2.log" </dev/null &
SSHD2_PID=$!
sys_wait_tcp 2222 || sys_die "second sshd did not listen"
LSID=$(cat "/proc/$SSHD2_PID/sessionid")
set +e
OUT=$(sys_as alice timeout 20 ssh "${SSHO[@]}" -p 2222 -i "$K/alice" -o CertificateFile="$K/c1-cert.pub" alice@127.0.0.1 \
  "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo RC=\$?" 2>&1 </dev/null)
set -e
if grep -q "SID=$LSID" <<<"$OUT" && grep -qx RC=1 <<<"$OUT" && [ ! -e "$SDIR/$LSID.binding" ]; then
  t_ok "listener with its own audit session ($LSID) and no pam_loginuid: nothing bound, sudo denied"
else t_bad "inherited listener session $LSID: $OUT (binding: $(cat "$SDIR/$LSID.binding" 2>&1))"; fi
sleep 0.3
if grep 'result=no-bind' "$LOG" | grep -qF "session=$LSID serial=101 grant=g-1"; then
  t_ok "syslog: the no-bind line for the inherited session carries session=$LSID serial=101"
else t_bad "syslog no-bind line for session $LSID: $(grep 'result=no-bind' "$LOG" | tail -2)"; fi
kill "$SSHD2_PID" 2>/dev/null; SSHD2_PID=
cp "$W/sshd.pam.jit" /etc/pam.d/sshd

# ---- 4. ~/.pam_environment cannot feed pam_jit a certificate the connection did not present ---
# Debian's sshd stack reads ~/.pam_environment (pam_env user_readenv=1) after pam_jit: a
# plain-key login that "sets" SSH_AUTH_INFO_0 to alice's session-bound certificate binds
# nothing.
reset_grants
ssh_cert c1 true                     # the grant is on the host
printf 'SSH_AUTH_INFO_0 DEFAULT="publickey %s" OVERRIDE="publickey %s"\n' "$(awk '{print $1, $2}' "$K/c1-cert.pub")" \
  "$(awk '{print $1, $2}' "$K/c1-cert.pub")" > /home/alice/.pam_environment
chown 2001:2001 /home/alice/.pam_environment
ssh_plain "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo RC=\$?"
SID=$(sed -n 's/^SID=//p' <<<"$OUT")
if grep -qx RC=1 <<<"$OUT" && grep -q "has no binding" <<<"$OUT" && [ ! -e "$SDIR/$SID.binding" ]; then
  t_ok "a plain-key login cannot forge SSH_AUTH_INFO_0 through ~/.pam_environment: nothing bound, sudo denied"
else t_bad "forged SSH_AUTH_INFO_0: $OUT $(cat "$SDIR/$SID.binding" 2>&1)"; fi
# The same with a second pam_jit session line placed after `pam_env user_readenv=1` (by
# hand: setup and check refuse such a stack): the hook runs once per PAM handle, so the
# second line never reads the user's SSH_AUTH_INFO_0.
# The very line setup wrote (with its config=), so that the duplicate reads this host.toml.
JIT_LINE=$(grep -E '^session[[:space:]]+optional[[:space:]].*pam_jit' "$W/sshd.pam.jit" | head -1)
DUP=$JIT_LINE awk '{ print } /^session.*pam_env\.so.*user_readenv=1/ { print ENVIRON["DUP"] }' "$W/sshd.pam.jit" > /etc/pam.d/sshd
if [ -n "$JIT_LINE" ] && grep -q 'config=' <<<"$JIT_LINE" && [ "$(grep -cF "$JIT_LINE" /etc/pam.d/sshd)" = 2 ] \
  && grep -A1 'user_readenv=1' /etc/pam.d/sshd | grep -qF "$JIT_LINE"; then
  ssh_plain "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1; echo RC=\$?"
  SID=$(sed -n 's/^SID=//p' <<<"$OUT")
  if [ -n "$SID" ] && grep -qx RC=1 <<<"$OUT" && grep -q "has no binding" <<<"$OUT" && [ ! -e "$SDIR/$SID.binding" ]; then
    t_ok "a duplicate pam_jit line after pam_env user_readenv=1 binds nothing from ~/.pam_environment (session $SID)"
  else t_bad "duplicate pam_jit line after pam_env: $OUT $(cat "$SDIR/$SID.binding" 2>&1)"; fi
  # The positive control: the second line did run (so pam_env had fed it the certificate)
  # and was stopped by the once-per-login rule, not by something else.
  if [ -n "$SID" ] && sys_wait_log "$LOG" "already ran for this login" \
    && grep 'result=no-bind' "$LOG" | grep 'already ran for this login' | grep -q "session=$SID "; then
    t_ok "syslog: the second pam_jit line ran and did nothing (already ran for this login, session $SID)"
  else t_bad "no 'already ran for this login' no-bind line for session $SID: $(grep 'result=no-bind' "$LOG" | tail -2)"; fi
else t_bad "could not place a pam_jit line after pam_env user_readenv=1: $(grep -n session /etc/pam.d/sshd)"; fi
cp "$W/sshd.pam.jit" /etc/pam.d/sshd
rm -f /home/alice/.pam_environment

# ---- 5. a binding that does not match the running system: another boot, a reused pid ------
reset_grants
rm -f /tmp/go-*
bg_cert c1 "$W/s12.out" "echo SID=\$(cat /proc/self/sessionid); for i in 0 1 2 3; do
  while [ ! -e /tmp/go-\$i ]; do sleep 0.05; done; $SUDO -n true 2>&1; echo R\$i=\$?; done"
wait_line SID= "$W/s12.out"; SID=$(sed -n 's/^SID=//p' "$W/s12.out")
forge() { # JQ-FILTER: rewrite the binding as root would (atomically)
  jq -c "$1" "$W/b12.orig" > "$SDIR/.forge" && chmod 0600 "$SDIR/.forge" && mv "$SDIR/.forge" "$SDIR/$SID.binding"
}
touch /tmp/go-0; wait_line R0= "$W/s12.out"
cp "$SDIR/$SID.binding" "$W/b12.orig"
forge '.boot_id = "00000000-0000-4000-8000-000000000000"'
touch /tmp/go-1; wait_line R1= "$W/s12.out"
forge '.leader_start = (.leader_start + 1)'
touch /tmp/go-2; wait_line R2= "$W/s12.out"
forge '.'
touch /tmp/go-3; wait "$BG" || true
if grep -qx R0=0 "$W/s12.out" && grep -qx R1=1 "$W/s12.out" && grep -q "rebooted" "$W/s12.out" \
  && grep -qx R2=1 "$W/s12.out" && grep -qx R3=0 "$W/s12.out"; then
  t_ok "a binding from another boot or whose leader has another start time (pid reuse) denies; the true one allows"
else t_bad "binding vs running system: $(cat "$W/s12.out")"; fi

# ---- 6. a session-bound grant still ends with its window, inside the live connection -------
reset_grants
END=$(( $(date +%s) + 4 ))
host_sign_grant "$K/grant" "$W/g5" g-5 alice dba 'db-*' $((NOW - 60)) "$END" true 105 true
cert c5 105 "$W/g5"
ssh_cert c5 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true 2>&1 && echo FIRST-OK; while [ \$(date +%s) -lt $END ]; do sleep 0.2; done; $SUDO -n true 2>&1; echo SECOND-RC=\$?"
if grep -q FIRST-OK <<<"$OUT" && grep -q 'SECOND-RC=1' <<<"$OUT" && grep -q "grant g-5 expired at" <<<"$OUT"; then
  t_ok "a session-bound grant is denied once its window ends, in the live connection"
else t_bad "bound grant expiry: $OUT"; fi
SID5=$(sed -n 's/^SID=//p' <<<"$OUT")

# ---- 7. jit-host gc: a binding goes once its grant has ended; a live one stays -------------
# Tombstones and dead bindings stay until their grant's not_after (+ clock skew, 0 here), so
# that a denial can still say the session ended: g-1's (valid 30 min) stay, g-5's (ended in
# section 6) goes, the live one stays.
reset_grants
bg_cert c1 "$W/s14.out" "echo SID=\$(cat /proc/self/sessionid); sleep 6"
wait_line SID= "$W/s14.out"; SID=$(sed -n 's/^SID=//p' "$W/s14.out"); sleep 0.5
while [ "$(date +%s)" -le "$END" ]; do sleep 0.1; done   # g-5's not_after has passed
kept_before=$(for f in "$SDIR"/*.binding; do jq -r 'select(.grant_id == "g-1" and .ended_at != null) | .session_id' "$f" 2>/dev/null; done | sort -n | tr '\n' ' ')
list=$(ls "$SDIR" | tr '\n' ' ')
out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || true
kept_after=$(for f in "$SDIR"/*.binding; do jq -r 'select(.grant_id == "g-1" and .ended_at != null) | .session_id' "$f" 2>/dev/null; done | sort -n | tr '\n' ' ')
if [ -n "$SID5" ] && [ ! -e "$SDIR/$SID5.binding" ] && [ -e "$SDIR/$SID.binding" ] && [ -n "$kept_before" ] \
  && [ "$kept_before" = "$kept_after" ]; then
  t_ok "jit-host gc removed g-5's binding (grant ended), kept g-1's tombstones ($kept_after) and the live one ($SID)"
else t_bad "gc: before ($list), g-1 tombstones $kept_before -> $kept_after, g-5 ($SID5) $( [ -e "$SDIR/$SID5.binding" ] && echo kept || echo gone), live $SID $( [ -e "$SDIR/$SID.binding" ] && echo kept || echo gone); $out"; fi
wait "$BG" || true

# SSH_AUTH_INFO_0 never reaches the user's environment.
ssh_cert c1 'env | grep -c SSH_AUTH_INFO || true'
[ "$(tail -1 <<<"$OUT")" = 0 ] && t_ok "SSH_AUTH_INFO_0 is not in the user's shell environment" || t_bad "SSH_AUTH_INFO in env: $OUT"

# ---- 9. setup --session --undo: /etc/pam.d/sshd byte for byte -------------------------------
cp "$W/sshd.pam.jit" /etc/pam.d/sshd
if out=$("$JIT_HOST" --config "$CONF" setup --session --undo 2>&1) && cmp -s /etc/pam.d/sshd "$W/sshd.pam.orig"; then
  t_ok "jit-host setup --session --undo restores /etc/pam.d/sshd byte for byte"
else t_bad "setup --session --undo: $out; $(diff "$W/sshd.pam.orig" /etc/pam.d/sshd)"; fi
t_summary
