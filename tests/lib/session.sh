# shellcheck shell=bash
# The host of the session-binding system tests (tests/system/43-*.sh, 44-*.sh; issue 14).
# Source it after tests/lib/sys.sh and call session_host right after `sys_enter --net`:
#
#   session_host   a host named db-1 in the private namespaces: users alice (a login, uid
#                  2001) and jitw (the grant writer); private /tmp, /dev (rsyslogd on
#                  /dev/log writing authpriv to $LOG; a /dev/ptmx that opens for users),
#                  sudoers (alice NOPASSWD), /etc/pam.d and /etc/ssh; host.toml with
#                  user_ca_keys and grant_keys, a fresh revocation list; `jit-host setup
#                  --sudo --sshd --session` (checked: pam_jit.so right after pam_loginuid,
#                  before pam_env); sshd -o UsePAM=yes on 127.0.0.1:22; grants g-1
#                  (session-bound, certificate c1, serial 101) and g-2 (not bound, c2, 102).
#   Sets W, K, STATE, CONF, LOG, SDIR (/run/jit/sessions, the default session_dir),
#   SUDO, SUDO_RS, NOW, SSHD_PID.
#   cert NAME SERIAL GRANT_FILE     alice's key certified by the user CA with the grant inside
#   ssh_cert CERT CMD | ssh_plain CMD   one connection as alice, bounded -> RC, OUT
#   bg_cert CERT OUTFILE CMD        a connection in the background -> BG (its pid)
#   wait_file FILE [SECS]; wait_line PREFIX FILE; now_ns
#   leader_of SID                   the binding's leader pid (jit-host sessions --json, or
#                                   the `sshd: alice [priv]` process of that audit session)
#   $W/loop.sh SUDO LOG             `SUDO -n true` every half second: "TIME allow|deny MSG"
#   stop_loops; judge NAME LOG T_END [NEEDLE...]   (allowed while the connection lived, first
#                                   denial <= 1 s after T_END, never allowed again)
#   binding_field SID JQ; reset_grants; client_of PID (the ssh client under bg_cert's BG)
# Everything stays inside the namespaces (see tests/lib/sys.sh).

session_host() {
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

  # setup
  cp /etc/pam.d/sshd "$W/sshd.pam.orig"
  out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --session --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
  # The session line comes right after pam_loginuid and before any pam_env.
  order=$(grep -nE '^session.*(pam_loginuid|pam_jit|pam_env)' /etc/pam.d/sshd | sed -E 's/^([0-9]+):session.*(pam_loginuid|libpam_jit|pam_jit|pam_env).*/\2/' | tr '\n' ' ' || true)
  case "$order" in
    "pam_loginuid libpam_jit pam_env"*|"pam_loginuid pam_jit pam_env"*) t_ok "setup: /etc/pam.d/sshd runs pam_jit.so right after pam_loginuid, before pam_env ($order)" ;;
    *) t_bad "setup: session order in /etc/pam.d/sshd: $order"; grep -n session /etc/pam.d/sshd ;;
  esac
  cp /etc/pam.d/sshd "$W/sshd.pam.jit"

  SSHD_LOG=$W/sshd.log
  /usr/sbin/sshd -t -o UsePAM=yes || sys_die "sshd -t failed"
  # ClientAlive*: a client that stops answering (a dropped network) is dropped within ~3 s.
  /usr/sbin/sshd -D -e -o UsePAM=yes -o PidFile=none -o LogLevel=VERBOSE -o ListenAddress=127.0.0.1 \
    -o ClientAliveInterval=1 -o ClientAliveCountMax=2 \
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
  # The rows of `jit-host sessions --json` (an array, or an object with a "sessions" array).
  JQ_ROWS='(if type == "array" then . else (.sessions // []) end)[]'
  # The session's privileged sshd process: from `jit-host sessions --json` (leader pid), or
  # else the `sshd: alice [priv]` process whose audit session id is SID.
  leader_of() { # SID
    local sid=$1 p
    p=$("$JIT_HOST" --config "$CONF" sessions --json 2>/dev/null |
      jq -r --argjson s "$sid" "$JQ_ROWS"' | select((.session // .session_id) == $s) | (.leader // .leader_pid)' 2>/dev/null | head -1)
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
}

wait_line() { # PREFIX FILE: up to 10 s for a line starting with PREFIX
  local i
  for ((i = 0; i < 100; i++)); do grep -q "^$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

client_of() { # PID: the ssh client started under PID (bg_cert's BG), by walking up from each ssh
  local p q i
  for p in $(pgrep -x ssh); do
    q=$p
    for i in 1 2 3 4; do
      q=$(ps -o ppid= -p "$q" 2>/dev/null | tr -d ' ')
      [ -n "$q" ] || break
      [ "$q" = "$1" ] && { echo "$p"; return; }
    done
  done
}
