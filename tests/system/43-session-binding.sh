#!/usr/bin/env bash
# Issue 14, session-bound elevation, against the real programs: sshd with `UsePAM yes`
# (pam_jit.so in its session stack right after pam_loginuid), real sudo AND sudo-rs with
# pam_jit.so in their account stacks, a host prepared by `jit-host setup --sudo --sshd
# --session`, certificates made by stock `ssh-keygen -s` carrying a session-bound grant.
# Everything runs in private namespaces (mount, UTS, net, PID): /etc/pam.d, /etc/ssh, users,
# sudoers, /run, /home, /tmp, /dev (syslog) are private; the host is untouched.
#
# What it shows: sudo works inside the connection that presented the certificate; loops
# left behind in it (nohup, a tmux pane) are denied within a second of the disconnect, and
# after kill -9 of the connection's privileged sshd process (no close_session); a second
# connection with another key has no binding, one with the same certificate gets its own;
# multiplexed sessions share the master's binding; a host without pam_loginuid denies with
# the fix-it message; a grant that is not session-bound behaves as before; `jit-host
# sessions` / `end-session` and the syslog lines.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
SUDO_RS_SRC=${JIT_SUDO_RS:-/opt/jit-test-tools/bin/sudo}
[ -x "$SUDO_RS_SRC" ] || sys_die "sudo-rs not found at $SUDO_RS_SRC (run tests/install-deps.sh)"
command -v sudo >/dev/null || sys_die "sudo is not installed (run tests/install-deps.sh)"
command -v tmux >/dev/null || sys_die "tmux is not installed (run tests/install-deps.sh)"
hostname db-1

W=$(sys_workdir)
mount -t tmpfs -o mode=1777 jit-tmp /tmp   # tmux sockets and the loops' logs
sys_isolate_users "$W"
sys_add_user --login alice 2001
sys_add_user jitw 2003
sys_private_dev "$W"
# Panes (tmux) need ptys: sys_private_dev links /dev/ptmx to pts/ptmx, which a devpts
# mounted with ptmxmode=000 (the usual default) opens for root only; a ptmx node in the
# private /dev opens the devpts beside it (/dev/pts) for everyone, as the real one does.
rm -f /dev/ptmx; mknod -m 0666 /dev/ptmx c 5 2
mkdir -p "$W/log"; sys_start_syslog "$W/log"
LOG=$W/log/auth.log
cleanup() {
  local p
  for p in "$W"/pids/*; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null
  [ -n "${SSHD2_PID:-}" ] && kill "$SSHD2_PID" 2>/dev/null
  sys_stop_syslog
  return 0
}
trap cleanup EXIT
mkdir -p "$W/pids"; chmod 0777 "$W/pids"

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d" "$W/ssh"
cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d
cp -a /etc/ssh/. "$W/ssh/"; mount --bind "$W/ssh" /etc/ssh
for k in /etc/ssh/ssh_host_*_key; do [ -e "$k" ] && chmod 0600 "$k"; done
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
grep -q '^session *required *pam_loginuid.so' /etc/pam.d/sshd || sys_die "this distribution's /etc/pam.d/sshd has no pam_loginuid line"
mkdir -p "$W/bin"; install -o root -g root -m 4755 "$SUDO_RS_SRC" "$W/bin/sudo-rs"
SUDO=/usr/bin/sudo SUDO_RS=$W/bin/sudo-rs

K=$W/keys; mkdir -p "$K"; chmod 0755 "$K"
host_keygen "$K/userca"; host_keygen "$K/grant"
host_keygen "$K/alice"; host_keygen "$K/alice-plain"
chown 2001 "$K/alice" "$K/alice.pub" "$K/alice-plain" "$K/alice-plain.pub"
# The plain key is an ordinary authorized key (no certificate, no grant).
install -d -o 2001 -g 2001 -m 0700 /home/alice/.ssh
install -o 2001 -g 2001 -m 0600 "$K/alice-plain.pub" /home/alice/.ssh/authorized_keys
STATE=$W/state
CONF=$W/etc/host.toml
# session_dir is the default (/run/jit/sessions, on the namespace's private /run).
host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"' 'clock_skew_secs = 0' \
  "user_ca_keys = [\"$(cat "$K/userca.pub")\"]"
mkdir -p "$STATE"; chmod 0755 "$STATE"
host_fresh_revocations "$K/grant" "$STATE"
SDIR=/run/jit/sessions

# ---- 1. setup ----------------------------------------------------------------------------
cp /etc/pam.d/sshd "$W/sshd.pam.orig"
if "$JIT_HOST" setup --help 2>&1 | grep -q -- '--session'; then
  out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --session --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
else
  # jit-host without --session (before helper S2's work lands): the line by hand.
  out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
  awk -v l="session optional $PAM_JIT_SO config=$CONF" '{ print } /^session *required *pam_loginuid.so/ { print l }' \
    "$W/sshd.pam.orig" > /etc/pam.d/sshd
  t_bad "jit-host setup has no --session: the session line was added by hand"
fi
# The session line comes right after pam_loginuid and before any pam_env.
order=$(grep -nE '^session.*(pam_loginuid|pam_jit|pam_env)' /etc/pam.d/sshd | sed -E 's/^([0-9]+):session.*(pam_loginuid|libpam_jit|pam_jit|pam_env).*/\2/' | tr '\n' ' ' || true)
case "$order" in
  "pam_loginuid libpam_jit pam_env"*|"pam_loginuid pam_jit pam_env"*) t_ok "setup: /etc/pam.d/sshd runs pam_jit.so right after pam_loginuid, before pam_env ($order)" ;;
  *) t_bad "setup: session order in /etc/pam.d/sshd: $order"; grep -n session /etc/pam.d/sshd ;;
esac
cp /etc/pam.d/sshd "$W/sshd.pam.jit"

SSHD_LOG=$W/sshd.log
/usr/sbin/sshd -t -o UsePAM=yes || sys_die "sshd -t failed"
/usr/sbin/sshd -D -e -o UsePAM=yes -o PidFile=none -o LogLevel=VERBOSE -o ListenAddress=127.0.0.1 \
  >/dev/null 2>>"$SSHD_LOG" </dev/null &
SSHD_PID=$!
sys_wait_tcp 22 || { cat "$SSHD_LOG" >&2; sys_die "sshd did not listen"; }

NOW=$(date +%s)
# cert NAME SERIAL GRANT_FILE: alice's key signed by the user CA with the grant inside.
cert() {
  local name=$1 serial=$2 grant=$3 doc
  cp "$K/alice.pub" "$W/$name.pub"
  doc=$(cat "$grant"; echo x); doc=${doc%x}   # keep the final newline
  ssh-keygen -q -s "$K/userca" -I "jit:r-$serial:alice" -n alice -z "$serial" -V -1m:+30m \
    -O "extension:jit-grant@jit=$doc" "$W/$name.pub"
  install -o 2001 -m 0644 "$W/$name-cert.pub" "$K/$name-cert.pub"
}
SSHO=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=no
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 -o ServerAliveInterval=5)
# ssh_cert CERTNAME CMD -> RC, OUT ; ssh_plain CMD -> RC, OUT
ssh_as() { # IDENTITY-ARGS... -- CMD
  local a=()
  while [ "$1" != -- ]; do a+=("$1"); shift; done; shift
  set +e
  OUT=$(sys_as alice timeout --kill-after=5 40 ssh "${SSHO[@]}" "${a[@]}" alice@127.0.0.1 "$@" 2>&1 </dev/null)
  RC=$?
  set -e
}
ssh_cert() { local c=$1; shift; ssh_as -i "$K/alice" -o CertificateFile="$K/$c-cert.pub" -- "$@"; }
ssh_plain() { ssh_as -i "$K/alice-plain" -- "$@"; }
# bg_cert CERTNAME OUTFILE CMD: a connection in the background; sets BG
bg_cert() {
  local c=$1 o=$2; shift 2
  sys_as alice timeout --kill-after=5 40 ssh "${SSHO[@]}" -i "$K/alice" -o CertificateFile="$K/$c-cert.pub" \
    alice@127.0.0.1 "$@" >"$o" 2>&1 </dev/null &
  BG=$!
}
wait_file() { # FILE [SECS=10]
  local i
  for ((i = 0; i < ${2:-10} * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}
now_ns() { date +%s.%N; }
# The session's privileged sshd process: from `jit-host sessions --json` (leader pid), or
# else the `sshd: alice [priv]` process whose audit session id is SID.
leader_of() { # SID
  local sid=$1 p
  p=$("$JIT_HOST" --config "$CONF" sessions --json 2>/dev/null |
    jq -r --argjson s "$sid" '(if type == "array" then . else (.sessions // []) end)[] | select(.session_id == $s) | .leader_pid' 2>/dev/null | head -1)
  if [ -n "$p" ] && [ "$p" != null ]; then echo "$p"; return; fi
  for p in $(pgrep -f '^sshd: alice \[priv\]'); do
    [ "$(cat "/proc/$p/sessionid" 2>/dev/null)" = "$sid" ] && { echo "$p"; return; }
  done
}

# The loop left behind in a session: every half second `sudo -n true`, one line per try:
# "START_TIME allow|deny MESSAGE" (the time is taken before sudo starts).
cat > "$W/loop.sh" <<'LOOP'
#!/bin/bash
sudo=$1 log=$2
echo $$ > "/mnt/pids/$(basename "$log")"
while :; do
  t=$(date +%s.%N)
  if out=$("$sudo" -n true 2>&1 </dev/null); then r=allow; else r=deny; fi
  printf '%s %s %s\n' "$t" "$r" "$(printf %s "$out" | tr '\n' ' ')" >> "$log"
  sleep 0.5
done
LOOP
chmod 0755 "$W/loop.sh"
[ "$W" = /mnt ] || sys_die "the loop script expects the work dir at /mnt"
stop_loops() { local p; for p in "$W"/pids/*; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null; rm -f "$p"; done; return 0; }
# judge NAME LOGFILE T_END [NEEDLE...]: allowed while the connection lived, first denial
# at most 1 s after T_END, never allowed again, and the denial says NEEDLEs.
judge() {
  local name=$1 log=$2 t=$3 res first line
  shift 3
  [ -s "$log" ] || { t_bad "$name: the loop logged nothing ($log)"; return; }
  res=$(awk -v t="$t" '
    $2 == "allow" && $1 < t { before++ }
    $2 == "deny" && first == "" { first = $1 }
    first != "" && $2 == "allow" && $1 > first { late++ }
    END { printf "%d %s %d", before, (first == "" ? "none" : first), late }' "$log")
  read -r before first late <<<"$res"
  if [ "$before" -lt 2 ]; then t_bad "$name: the loop was not allowed while the connection lived: $(head -3 "$log")"; return; fi
  if [ "$first" = none ]; then t_bad "$name: never denied after the end: $(tail -3 "$log")"; return; fi
  # The end is measured when the client has exited, a little after sshd saw it close.
  if awk -v f="$first" -v t="$t" 'BEGIN { exit !(f < t - 0.3) }'; then
    t_bad "$name: denied while the connection lived: $(cat "$log")"; return
  fi
  if ! awk -v f="$first" -v t="$t" 'BEGIN { exit !(f - t <= 1.0) }'; then
    t_bad "$name: first denial $(awk -v f="$first" -v t="$t" 'BEGIN { printf "%.2f", f - t }') s after the end"; return
  fi
  if [ "$late" != 0 ]; then t_bad "$name: allowed again after the first denial: $(cat "$log")"; return; fi
  line=$(awk -v f="$first" '$1 == f' "$log")
  local n
  for n in "$@"; do
    grep -qiF -- "$n" <<<"$line" || { t_bad "$name: the denial does not say \"$n\": $line"; return; }
  done
  t_ok "$name (allowed $before times, denied $(awk -v f="$first" -v t="$t" 'BEGIN { printf "%.2f", f - t }') s after the end, never again)"
}
binding_field() { # SID JQ-FILTER: from the binding file itself
  jq -r "$2" "$SDIR/$1.binding" 2>/dev/null
}

# Grants: g-1 session-bound (certificate 101), g-2 not (certificate 102).
host_sign_grant "$K/grant" "$W/g1" g-1 alice dba 'db-*' $((NOW - 60)) $((NOW + 1800)) true 101 true
grep -q '"session_bound": true' "$W/g1" || sys_die "host_sign_grant did not mark g-1 session-bound"
cert c1 101 "$W/g1"
host_sign_grant "$K/grant" "$W/g2" g-2 alice dba 'db-*' $((NOW - 60)) $((NOW + 1800)) true 102
cert c2 102 "$W/g2"
reset_grants() { rm -rf "$STATE/grants/alice"; }

# ---- 2. sudo inside the session; the binding; sessions; syslog ------------------------------
reset_grants
ssh_cert c1 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n id -u; echo RC1=\$?; $SUDO_RS -n id -u; echo RC2=\$?"
SID=$(sed -n 's/^SID=//p' <<<"$OUT")
if grep -qx 'RC1=0' <<<"$OUT" && grep -qx 'RC2=0' <<<"$OUT" && [ "$(grep -cx 0 <<<"$OUT")" = 2 ]; then
  t_ok "sudo and sudo-rs run as root inside the connection that presented the session-bound certificate"
else t_bad "sudo in the session: rc $RC: $OUT"; fi
case "$SID" in ''|4294967295) t_bad "the session has no audit session id: $OUT" ;; esac
if sys_wait_log "$LOG" "result=bind" && grep 'result=bind' "$LOG" | grep "session=$SID " | grep -q 'serial=101' \
  && grep 'result=bind' "$LOG" | grep "session=$SID " | grep -q 'client=127.0.0.1' \
  && grep 'result=bind' "$LOG" | grep "session=$SID " | grep -qE 'leader=[0-9]+'; then
  t_ok "syslog: the bind line carries session=$SID serial=101 client=127.0.0.1 leader=PID"
else t_bad "syslog bind line: $(grep pam_jit "$LOG" | tail -3)"; fi
if grep 'pam_jit(sudo' "$LOG" | grep 'result=allow' | grep "session=$SID" | grep -q 'serial=101'; then
  t_ok "syslog: the sudo allow line carries session=$SID serial=101"
else t_bad "syslog sudo line: $(grep 'pam_jit(sudo' "$LOG" | tail -2)"; fi
# The binding after a normal logout: a tombstone (ended_by logout), still listed, not alive.
if [ "$(binding_field "$SID" .ended_by)" = logout ] && [ "$(binding_field "$SID" .serial)" = 101 ] \
  && [ "$(binding_field "$SID" .grant_id)" = g-1 ] && [ "$(stat -c '%U %a' "$SDIR/$SID.binding")" = "root 600" ] \
  && [ "$(stat -c '%U %a' "$SDIR")" = "root 700" ]; then
  t_ok "logout left a root 0600 tombstone (ended_by logout) in a root 0700 $SDIR"
else t_bad "binding after logout: $(ls -la "$SDIR" 2>&1) $(cat "$SDIR/$SID.binding" 2>&1)"; fi

# ---- 3. a nohup loop left behind: denied within a second of the disconnect ------------------
reset_grants
rm -f /tmp/nohup-*.log
bg_cert c1 "$W/s3.out" "echo SID=\$(cat /proc/self/sessionid);
  nohup $W/loop.sh $SUDO /tmp/nohup-sudo.log >/dev/null 2>&1 &
  nohup $W/loop.sh $SUDO_RS /tmp/nohup-sudo-rs.log >/dev/null 2>&1 &
  setsid -f $W/loop.sh $SUDO /tmp/nohup-setsid.log >/dev/null 2>&1 </dev/null
  sleep 2.2; echo bye"
wait_file "$W/s3.out"; SID=$(sed -n 's/^SID=//p' "$W/s3.out")
sleep 1
out=$("$JIT_HOST" --config "$CONF" sessions 2>&1) || true
if grep -E "(^|[^0-9])$SID([^0-9]|$)" <<<"$out" | grep -q alice && grep -E "(^|[^0-9])$SID([^0-9]|$)" <<<"$out" | grep -q g-1 \
  && grep -E "(^|[^0-9])$SID([^0-9]|$)" <<<"$out" | grep -qw yes; then
  t_ok "jit-host sessions lists session $SID (alice, g-1) as alive"
else t_bad "jit-host sessions while alive: $out"; fi
json=$("$JIT_HOST" --config "$CONF" sessions --json 2>&1) || true
sel=$(jq -c --argjson s "$SID" '(if type == "array" then . else (.sessions // []) end)[] | select(.session_id == $s)' <<<"$json" 2>/dev/null || true)
if [ "$(jq -r .serial <<<"$sel" 2>/dev/null)" = 101 ] && [ "$(jq -r .alive <<<"$sel" 2>/dev/null)" = true ]; then
  t_ok "jit-host sessions --json: session $SID, serial 101, alive"
else t_bad "jit-host sessions --json: $json"; fi
wait "$BG" || true
T_END=$(now_ns)
sleep 2.5
judge "nohup loop with sudo after disconnect" /tmp/nohup-sudo.log "$T_END" "session $SID" ended "log in again"
judge "nohup loop with sudo-rs after disconnect" /tmp/nohup-sudo-rs.log "$T_END"
judge "setsid loop with sudo after disconnect" /tmp/nohup-setsid.log "$T_END" "session $SID" ended
out=$("$JIT_HOST" --config "$CONF" sessions 2>&1) || true
if grep -E "(^|[^0-9])$SID([^0-9]|$)" <<<"$out" | grep -qw no; then t_ok "jit-host sessions shows session $SID as not alive"
else t_bad "jit-host sessions after logout: $out"; fi
if grep 'pam_jit(sudo' "$LOG" | grep 'result=deny' | grep "session=$SID" | grep -q 'serial=101'; then
  t_ok "syslog: the sudo deny line carries session=$SID serial=101"
else t_bad "syslog deny line: $(grep 'pam_jit(sudo' "$LOG" | grep result=deny | tail -2)"; fi
stop_loops

# ---- 4. the same with a tmux pane --------------------------------------------------------
reset_grants
rm -f /tmp/tmux-*.log
bg_cert c1 "$W/s4.out" "echo SID=\$(cat /proc/self/sessionid);
  tmux -S /tmp/tmux-a new-session -d '$W/loop.sh $SUDO /tmp/tmux-sudo.log';
  tmux -S /tmp/tmux-a new-window -d '$W/loop.sh $SUDO_RS /tmp/tmux-sudo-rs.log';
  sleep 2.2; echo bye"
wait "$BG" || true
T_END=$(now_ns)
sleep 2.5
SID=$(sed -n 's/^SID=//p' "$W/s4.out")
pane=$(cat "/mnt/pids/tmux-sudo.log" 2>/dev/null || true)
[ -n "$pane" ] && [ "$(cat "/proc/$pane/sessionid")" = "$SID" ] && t_ok "the tmux pane runs in audit session $SID" \
  || t_bad "tmux pane session id: $(cat "/proc/$pane/sessionid" 2>&1) vs $SID ($(cat "$W/s4.out"))"
# On a terminal (the pane's), sudo tells the user on the tty, not stderr: the reason is read
# from syslog instead.
judge "tmux pane loop with sudo after disconnect" /tmp/tmux-sudo.log "$T_END"
grep 'result=deny' "$LOG" | grep "session=$SID " | grep -q 'ended' \
  && t_ok "syslog: the pane's denial says session $SID ended" || t_bad "pane denial in syslog: $(grep "session=$SID " "$LOG" | tail -2)"
judge "tmux pane loop with sudo-rs after disconnect" /tmp/tmux-sudo-rs.log "$T_END"
stop_loops
sys_as alice tmux -S /tmp/tmux-a kill-server 2>/dev/null || true

# ---- 5. kill -9 of the session's privileged sshd process (no close_session) ----------------
reset_grants
rm -f /tmp/k9-*.log
bg_cert c1 "$W/s5.out" "echo SID=\$(cat /proc/self/sessionid);
  nohup $W/loop.sh $SUDO /tmp/k9-sudo.log >/dev/null 2>&1 &
  nohup $W/loop.sh $SUDO_RS /tmp/k9-sudo-rs.log >/dev/null 2>&1 &
  sleep 4; $SUDO -n true; echo LIVE-RC=\$?"
wait_file "$W/s5.out"; SID=$(sed -n 's/^SID=//p' "$W/s5.out")
sleep 1.5
LEADER=$(leader_of "$SID")
if [ -n "$LEADER" ] && grep -q '\[priv\]' "/proc/$LEADER/cmdline"; then
  t_ok "the binding's leader is the connection's privileged sshd process ($LEADER)"
else t_bad "leader of session $SID: '$LEADER' $(tr '\0' ' ' <"/proc/$LEADER/cmdline" 2>&1)"; fi
kill -9 "$LEADER"
T_END=$(now_ns)
wait "$BG" || true
sleep 1
judge "nohup loop with sudo after kill -9 of the sshd leader" /tmp/k9-sudo.log "$T_END" "session $SID" ended "log in again"
judge "nohup loop with sudo-rs after kill -9 of the sshd leader" /tmp/k9-sudo-rs.log "$T_END"
# OpenSSH keeps the connection after kill -9 of [priv] (its unprivileged child holds it): sudo
# in that still-open connection is denied too.
if grep -q 'LIVE-RC=1' "$W/s5.out" && grep -q "bound to SSH session $SID" "$W/s5.out"; then
  t_ok "sudo in the still-open connection whose leader was killed is denied"
elif ! grep -q LIVE-RC "$W/s5.out"; then t_ok "the connection ended with its leader"
else t_bad "sudo after kill -9 in the live connection: $(cat "$W/s5.out")"; fi
[ "$(binding_field "$SID" .ended_at)" = null ] && t_ok "no close_session ran: the binding was not tombstoned, its dead leader denies" \
  || t_bad "binding after kill -9: $(cat "$SDIR/$SID.binding" 2>&1)"
stop_loops

# ---- 6. a second connection: another key has no binding; the same certificate has its own ---
reset_grants
bg_cert c1 "$W/s6a.out" "echo SID=\$(cat /proc/self/sessionid); sleep 3"
wait_file "$W/s6a.out"; SID_A=$(sed -n 's/^SID=//p' "$W/s6a.out")
ssh_plain "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC=\$?"
SID_P=$(sed -n 's/^SID=//p' <<<"$OUT")
if grep -qx 'RC=1' <<<"$OUT" && grep -q "SSH session $SID_P has no binding" <<<"$OUT" && grep -q "grant g-1" <<<"$OUT" \
  && [ "$SID_P" != "$SID_A" ]; then
  t_ok "a second connection with a plain key (session $SID_P) is denied: no binding"
else t_bad "plain-key connection while $SID_A lives: $OUT"; fi
ssh_plain "$SUDO_RS -S -n true </dev/null; echo RC=\$?"
if grep -q 'RC=1' <<<"$OUT" && grep -q "has no binding" <<<"$OUT"; then t_ok "sudo-rs: the plain-key connection is denied: no binding"
else t_bad "sudo-rs in the plain-key connection: $OUT"; fi
bg_cert c1 "$W/s6b.out" "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo R1=\$?; sleep 4; $SUDO -n true; echo R2=\$?; $SUDO_RS -n true; echo R3=\$?"
wait "$BG" || true
SID_B=$(sed -n 's/^SID=//p' "$W/s6b.out")
if grep -qx R1=0 "$W/s6b.out" && grep -qx R2=0 "$W/s6b.out" && grep -qx R3=0 "$W/s6b.out" && [ "$SID_B" != "$SID_A" ] \
  && [ -e "$SDIR/$SID_B.binding" ]; then
  t_ok "a second connection with the same certificate gets its own binding (session $SID_B) and keeps sudo after the first ($SID_A) ends"
else t_bad "second connection, same certificate: $(cat "$W/s6b.out") (bindings: $(ls "$SDIR"))"; fi
[ "$(binding_field "$SID_A" .ended_by)" = logout ] && [ "$(binding_field "$SID_B" .ended_by)" = logout ] \
  && t_ok "each connection's logout ended only its own binding" || t_bad "bindings: $(cat "$SDIR/$SID_A.binding" "$SDIR/$SID_B.binding" 2>&1)"

# ---- 7. multiplexing: the binding lives as long as the master connection -------------------
reset_grants
rm -f /tmp/mux-*.log /tmp/cm
set +e
sys_as alice timeout 20 ssh "${SSHO[@]}" -i "$K/alice" -o CertificateFile="$K/c1-cert.pub" -o ControlMaster=yes \
  -o ControlPath=/tmp/cm -o ControlPersist=yes -fN alice@127.0.0.1 >/dev/null 2>&1 </dev/null
mux() { OUT=$(sys_as alice timeout 20 ssh "${SSHO[@]}" -o ControlPath=/tmp/cm alice@127.0.0.1 "$@" 2>&1 </dev/null); RC=$?; }
mux "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC=\$?"; M1=$OUT
mux "echo SID=\$(cat /proc/self/sessionid); $SUDO_RS -n true; echo RC=\$?;
  nohup $W/loop.sh $SUDO /tmp/mux-sudo.log >/dev/null 2>&1 &"; M2=$OUT
set -e
S1=$(sed -n 's/^SID=//p' <<<"$M1") S2=$(sed -n 's/^SID=//p' <<<"$M2")
if grep -qx RC=0 <<<"$M1" && grep -qx RC=0 <<<"$M2" && [ -n "$S1" ] && [ "$S1" = "$S2" ]; then
  t_ok "multiplexed sessions share the master's audit session ($S1) and its binding: sudo works in each"
else t_bad "multiplexed sessions: $M1 / $M2"; fi
sleep 1.2
sys_as alice timeout 20 ssh "${SSHO[@]}" -o ControlPath=/tmp/cm -O exit alice@127.0.0.1 >/dev/null 2>&1 || true
T_END=$(now_ns)
sleep 2
judge "loop from a multiplexed session after \`ssh -O exit\` of the master" /tmp/mux-sudo.log "$T_END" "session $S1" ended
stop_loops

# ---- 8. a grant that is not session-bound behaves as before ---------------------------------
reset_grants
ssh_cert c2 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC1=\$?; $SUDO_RS -n true; echo RC2=\$?"
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

# ---- 9. jit-host end-session ---------------------------------------------------------------
reset_grants
bg_cert c1 "$W/s9.out" "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo R1=\$?; sleep 2.5; $SUDO -n true; echo R2=\$?"
wait_file "$W/s9.out"; sleep 0.8
SID=$(sed -n 's/^SID=//p' "$W/s9.out")
out=$("$JIT_HOST" --config "$CONF" end-session "$SID" 2>&1) && ok=1 || ok=0
wait "$BG" || true
if [ $ok = 1 ] && grep -qx R1=0 "$W/s9.out" && grep -qx R2=1 "$W/s9.out" && grep -q "session $SID, which ended at" "$W/s9.out"; then
  t_ok "jit-host end-session $SID: the next sudo in that live connection is denied (\"which ended at\")"
else t_bad "end-session: $ok: $out / $(cat "$W/s9.out")"; fi
[ "$(binding_field "$SID" .ended_by)" = "jit-host end-session" ] && t_ok "the binding says ended_by \"jit-host end-session\"" \
  || t_bad "binding after end-session: $(cat "$SDIR/$SID.binding" 2>&1)"
sys_wait_log "$LOG" "end-session" && grep -i 'end-session' "$LOG" | grep -q "$SID" \
  && t_ok "end-session is audited to syslog" || t_bad "no end-session line in syslog: $(tail -3 "$LOG")"
if out=$("$JIT_HOST" --config "$CONF" end-session 3999999999 2>&1); then t_bad "end-session of an unknown id succeeded: $out"
else grep -q 3999999999 <<<"$out" && t_ok "end-session of an unknown id fails naming it: $out" || t_bad "unknown id: $out"; fi

# ---- 10. a host without pam_loginuid --------------------------------------------------------
reset_grants
grep -v 'pam_loginuid' "$W/sshd.pam.jit" > /etc/pam.d/sshd
ssh_cert c1 "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC=\$?"
if grep -qx RC=1 <<<"$OUT" && grep -q "pam_loginuid" <<<"$OUT"; then
  t_ok "without pam_loginuid: login works, sudo denied with the fix-it message naming pam_loginuid"
else t_bad "no pam_loginuid: rc $RC: $OUT"; fi
out=$("$JIT_HOST" --config "$CONF" check alice 2>&1) || true
grep -q pam_loginuid <<<"$out" && t_ok "jit-host check reports the missing pam_loginuid" || t_bad "jit-host check: $out"
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
  "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC=\$?" 2>&1 </dev/null)
set -e
if grep -q "SID=$LSID" <<<"$OUT" && grep -qx RC=1 <<<"$OUT" && [ ! -e "$SDIR/$LSID.binding" ]; then
  t_ok "listener with its own audit session ($LSID) and no pam_loginuid: nothing bound, sudo denied"
else t_bad "inherited listener session $LSID: $OUT (binding: $(cat "$SDIR/$LSID.binding" 2>&1))"; fi
kill "$SSHD2_PID" 2>/dev/null; SSHD2_PID=
cp "$W/sshd.pam.jit" /etc/pam.d/sshd

# ---- 11. ~/.pam_environment cannot feed pam_jit a certificate the connection did not present ---
# Debian's sshd stack reads ~/.pam_environment (pam_env user_readenv=1) after pam_jit: a
# plain-key login that "sets" SSH_AUTH_INFO_0 to alice's session-bound certificate binds
# nothing.
reset_grants
ssh_cert c1 true                     # the grant is on the host
printf 'SSH_AUTH_INFO_0 DEFAULT="publickey %s" OVERRIDE="publickey %s"\n' "$(awk '{print $1, $2}' "$K/c1-cert.pub")" \
  "$(awk '{print $1, $2}' "$K/c1-cert.pub")" > /home/alice/.pam_environment
chown 2001:2001 /home/alice/.pam_environment
ssh_plain "echo SID=\$(cat /proc/self/sessionid); $SUDO -n true; echo RC=\$?"
SID=$(sed -n 's/^SID=//p' <<<"$OUT")
if grep -qx RC=1 <<<"$OUT" && grep -q "has no binding" <<<"$OUT" && [ ! -e "$SDIR/$SID.binding" ]; then
  t_ok "a plain-key login cannot forge SSH_AUTH_INFO_0 through ~/.pam_environment: nothing bound, sudo denied"
else t_bad "forged SSH_AUTH_INFO_0: $OUT $(cat "$SDIR/$SID.binding" 2>&1)"; fi
rm -f /home/alice/.pam_environment

# ---- 12. a binding that does not match the running system: another boot, a reused pid ------
reset_grants
rm -f /tmp/go-*
bg_cert c1 "$W/s12.out" "echo SID=\$(cat /proc/self/sessionid); for i in 0 1 2 3; do
  while [ ! -e /tmp/go-\$i ]; do sleep 0.05; done; $SUDO -n true; echo R\$i=\$?; done"
wait_line() { local i; for ((i = 0; i < 100; i++)); do grep -q "^$1" "$2" && return 0; sleep 0.1; done; return 1; }
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

# ---- 13. a session-bound grant still ends with its window, inside the live connection -------
reset_grants
END=$(( $(date +%s) + 4 ))
host_sign_grant "$K/grant" "$W/g5" g-5 alice dba 'db-*' $((NOW - 60)) "$END" true 105 true
cert c5 105 "$W/g5"
ssh_cert c5 "$SUDO -n true && echo FIRST-OK; while [ \$(date +%s) -lt $END ]; do sleep 0.2; done; $SUDO -n true; echo SECOND-RC=\$?"
if grep -q FIRST-OK <<<"$OUT" && grep -q 'SECOND-RC=1' <<<"$OUT" && grep -q "grant g-5 expired at" <<<"$OUT"; then
  t_ok "a session-bound grant is denied once its window ends, in the live connection"
else t_bad "bound grant expiry: $OUT"; fi

# ---- 14. jit-host gc: tombstones and dead bindings go, a live binding stays ------------------
reset_grants
bg_cert c1 "$W/s14.out" "echo SID=\$(cat /proc/self/sessionid); sleep 3"
wait_line SID= "$W/s14.out"; SID=$(sed -n 's/^SID=//p' "$W/s14.out"); sleep 0.5
before=$(find "$SDIR" -name '*.binding' | wc -l); list=$(ls "$SDIR" | tr '\n' ' ')
out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || true
left=$(find "$SDIR" -name '*.binding' -printf '%f\n')
if [ "$before" -gt 1 ] && [ "$left" = "$SID.binding" ]; then
  t_ok "jit-host gc removed the $((before - 1)) ended or dead bindings and kept the live one ($SID)"
else t_bad "gc: before $before ($list), left: $(tr '\n' ' ' <<<"$left"); $out"; fi
wait "$BG" || true

# SSH_AUTH_INFO_0 never reaches the user's environment.
ssh_cert c1 'env | grep -c SSH_AUTH_INFO || true'
[ "$(tail -1 <<<"$OUT")" = 0 ] && t_ok "SSH_AUTH_INFO_0 is not in the user's shell environment" || t_bad "SSH_AUTH_INFO in env: $OUT"

t_summary
