# shellcheck shell=bash
# The one library of the system tests (tests/system/*.sh, tests/load/run.sh). Source it; it
# never changes the host: the calling script re-executes itself in private namespaces
# (sys_enter), everything it mounts is a tmpfs or a bind mount that vanishes with them, and
# with --net every process it starts dies with the PID namespace.
#
# Namespaces, users, programs
#   sys_enter [--net] "$@"         first line: build what is missing (outside), then re-exec
#                                  the script in private mount + UTS namespaces; --net adds a
#                                  private network (loopback up) and PID namespace, and
#                                  private /run (with /run/sshd) and /home
#   sys_workdir                    a root-owned 0755 tmpfs scratch dir on /mnt (prints it)
#   sys_isolate_users DIR          private copies of passwd/group/shadow(/gshadow), bind-mounted
#   sys_add_user [--login] [--hash H] NAME UID [GROUP...]
#                                  a user with its own group (+ extra groups); --login: home
#                                  /home/NAME (0700) and a shadow entry sshd accepts
#   sys_as USER CMD...             run CMD as USER (setpriv, clean env: HOME, USER, PATH)
#   sys_bins                       sets JIT_CA, JIT, JIT_HOST, PAM_JIT_SO (jit-host and the
#                                  module staged on a root-owned path inside the namespace)
#   sys_private_dev DIR            a private /dev (so a test can own /dev/log)
#   sys_start_syslog DIR           rsyslogd on /dev/log writing authpriv to DIR/auth.log
#   sys_stop_syslog; sys_wait_log FILE NEEDLE (up to 5 s)
#   sys_wait_tcp PORT [SECS]       until 127.0.0.1:PORT accepts connections
#   sys_rss PID                    resident set (kB)
# The CA
#   sys_ca_dir DIR POLICY          jit-ca init + the given policy.toml
#   sys_ca_user DIR NAME GROUP KEYPATH   a new ed25519 key and `jit-ca user add`
#   sys_start_ca DIR PORT [LOG]    jit-ca serve, waits for /v1/health; sets SYS_CA_PID
#   sys_stop_ca                    graceful (TERM); kill -9 is the test's business
# PAM, sudo and ssh runs: never unbounded
#   sys_pamtester SVC_DIR USER RUSER [SERVICE]   pamtester acct_mgmt through pam_wrapper
#                                  (bounded); sets RC, OUT
#   sys_timeout PROGRAM ARGS...    under `timeout` (SYS_PAM_TIMEOUT s, default 30): every
#                                  pamtester, sudo and ssh run goes through it, so a hang is
#                                  a failure (exit 124/137) instead of a stuck suite
# Host documents (the formats jit-common writes, signed with stock ssh-keygen -Y sign)
#   host_keygen PATH; host_fingerprint PUB
#   host_sign_grant KEY OUT ID USER ROLE HOSTS NB NA [SUDO] [SERIAL] [SESSION_BOUND]
#                                  SESSION_BOUND=true adds "session_bound": true (issue 14;
#                                  needs SERIAL, as jit-common's validate() does)
#   host_sign_revocations KEY OUT SEQ ISSUED_AT GRANT_IDS SERIALS   (comma lists)
#   host_state_dir DIR; host_fresh_revocations KEY STATE [SEQ] [GRANT_IDS] [SERIALS]
#   host_put_grant STATE USER FILE; host_config PATH STATE GRANT_PUB [TOML...]
# sshd
#   sshd_start DIR PORT [LINE...]  /usr/sbin/sshd -D -e with a minimal config; SSHD_PID, SSHD_LOG
#   sshd_stop; ssh_try USER KEY PORT [CMD]  (sets SSH_RC, SSH_OUT); ssh_log_has NEEDLE
# Bookkeeping
#   t_ok MSG; t_bad MSG; t_summary (fails if any t_bad)
#
# Requirements: root, util-linux (unshare, setpriv), iproute2, openssh, rsyslog, jq, curl.

SYS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SYS_PAM_TIMEOUT=${SYS_PAM_TIMEOUT:-30}

sys_die() { echo "FAIL: $*" >&2; exit 1; }

# ---- namespaces -------------------------------------------------------------------------

# Outside the namespaces: make sure JIT_BIN_DIR holds the four programs (a release build
# when it does not), so the namespaced part stays short and offline.
sys_build() {
  local bin=${JIT_BIN_DIR:-$SYS_ROOT/target/release} b
  for b in jit-ca jit jit-host libpam_jit.so; do
    if [ ! -e "$bin/$b" ]; then
      # The release build of packaging/build.sh and tests/run.sh (packaging/release-env.sh).
      (cd "$SYS_ROOT" && source packaging/release-env.sh &&
        jit_release_build --workspace --bin jit-ca --bin jit --bin jit-host &&
        bash tests/build-module.sh) >&2 || sys_die "release build failed"
      bin=${CARGO_TARGET_DIR:-$SYS_ROOT/target}/release
      break
    fi
  done
  export JIT_BIN_DIR=$bin
}

sys_enter() { # [--net] "$@"
  local net=0
  if [ "${1:-}" = --net ]; then net=1; shift; fi
  if [ -z "${JIT_SYS_NS:-}" ]; then
    [ "$(id -u)" = 0 ] || sys_die "must run as root (private namespaces; the host is not changed)"
    sys_build
    export JIT_SYS_NS=$net
    if ((net)); then
      # --pid --kill-child: when the script ends, every process it started ends with it.
      # PID 1 of the namespace is a plain bash that only waits for the script (and reaps
      # orphans): the script itself is not PID 1, so orphans it leaves (a killed
      # subshell's children) are not adopted into its own job table.
      exec unshare --mount --propagation private --uts --net --pid --fork --kill-child --mount-proc \
        -- bash -c '"$@"; exit $?' sys-init bash "$0" "$@"
    fi
    exec unshare --mount --propagation private --uts --fork -- bash "$0" "$@"
  fi
  if [ "$JIT_SYS_NS" = 1 ]; then
    ip link set lo up
    # sshd needs /run/sshd (privilege separation); keep it off the host's /run.
    mount -t tmpfs -o mode=0755 jit-run /run
    mkdir -p /run/sshd; chmod 0755 /run/sshd
    mount -t tmpfs -o mode=0755 jit-home /home
  fi
}

sys_workdir() { # a tmpfs over /mnt (an existing root-owned dir: nothing is created on the host)
  mount -t tmpfs -o mode=0755 jit-test /mnt
  chown root:root /mnt
  echo /mnt
}

sys_isolate_users() { # DIR
  local dir=$1 f
  mkdir -p "$dir/etc-users"
  for f in passwd group shadow gshadow; do
    [ -e /etc/$f ] || continue
    cp -p /etc/$f "$dir/etc-users/$f"
    mount --bind "$dir/etc-users/$f" /etc/$f
  done
}

sys_add_group() { # NAME GID
  grep -q "^$1:" /etc/group && return 0
  echo "$1:x:$2:" >> /etc/group
  if [ -e /etc/gshadow ]; then echo "$1:!::" >> /etc/gshadow; fi
}

sys_add_user() { # [--login] [--hash HASH] NAME UID [GROUP...]
  local login=0 hash='*'
  while :; do
    case "${1:-}" in
      --login) login=1; hash=jit-test-no-password; shift ;;
      --hash) hash=$2; shift 2 ;;
      *) break ;;
    esac
  done
  local name=$1 uid=$2 g gid=$(( $2 + 1000 )) home=/run/jit-home/$1 new
  shift 2
  ((login)) && home=/home/$name
  echo "$name:x:$uid:$uid:jit test user:$home:/bin/bash" >> /etc/passwd
  sys_add_group "$name" "$uid"
  for g in "$@"; do
    sys_add_group "$g" "$gid"; gid=$((gid + 1))
    # Rewrite in place: /etc/group is a bind mount, so no rename (sed -i) is possible.
    new=$(awk -F: -v OFS=: -v g="$g" -v u="$name" \
      '$1 == g { $4 = ($4 == "" ? u : $4 "," u) } { print }' /etc/group)
    printf '%s\n' "$new" > /etc/group
  done
  # --login: not locked ('!'/'*' make sshd refuse the account with UsePAM no), matches no
  # password.
  echo "$name:$hash:19000:0:99999:7:::" >> /etc/shadow
  if ((login)); then
    mkdir -p "$home"; chown "$uid:$uid" "$home"; chmod 0700 "$home"
  fi
  return 0
}

sys_as() { # USER CMD...
  local user=$1 uid gid
  shift
  uid=$(id -u "$user") gid=$(id -g "$user")
  setpriv --reuid="$uid" --regid="$gid" --init-groups \
    env -i HOME="/home/$user" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
    "$@"
}

sys_timeout() { # PROGRAM ARGS...: a PAM, sudo or ssh run, bounded (a program, not a function)
  timeout --kill-after=5 "$SYS_PAM_TIMEOUT" "$@"
}

# pamtester's account check as USER (real uid, clean environment) through pam_wrapper, with
# the service files of SVC_DIR (/etc/pam.d untouched) and pam_syslog passed to syslog(3);
# bounded by sys_timeout. Sets RC and OUT (stdout+stderr, without pam_wrapper's own
# PWRAP_ diagnostics, which appear when another test on the machine uses it at once).
sys_pamtester() { # SVC_DIR USER RUSER [SERVICE]
  local svc=$1 user=$2 ruser=$3 service=${4:-sudo} uid ruser_arg=()
  uid=$(id -u "$user")
  [ -n "$ruser" ] && ruser_arg=(-I "ruser=$ruser")
  set +e
  OUT=$(sys_timeout setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i PATH=/usr/bin:/bin LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_USE_SYSLOG=1 \
    PAM_WRAPPER_SERVICE_DIR="$svc" pamtester "${ruser_arg[@]}" "$service" "$user" acct_mgmt 2>&1)
  RC=$?
  set -e
  OUT=$(grep -v '^PWRAP_' <<<"$OUT" || true)
}

sys_bins() {
  local bin=${JIT_BIN_DIR:-$SYS_ROOT/target/release}
  [ -x "$bin/jit-ca" ] && [ -x "$bin/jit" ] && [ -x "$bin/jit-host" ] && [ -f "$bin/libpam_jit.so" ] \
    || sys_die "no jit-ca/jit/jit-host/libpam_jit.so in $bin (sys_enter builds them)"
  JIT_CA=$bin/jit-ca JIT=$bin/jit JIT_HOST=$bin/jit-host PAM_JIT_SO=$bin/libpam_jit.so
  # sshd runs AuthorizedPrincipalsCommand only from a root-owned path with no
  # group/world-writable directory above it, and jit-host checks the same. A checkout may
  # live anywhere (under /tmp, say), so inside the namespace stage copies on a private
  # root-owned tmpfs over /usr/local/sbin (empty on Debian; the host's stays untouched).
  if [ -n "${JIT_SYS_NS:-}" ] && [ -z "${SYS_BINS_STAGED:-}" ]; then
    mount -t tmpfs -o mode=0755 jit-bins /usr/local/sbin
    install -o root -g root -m 0755 "$bin/jit-host" /usr/local/sbin/jit-host
    install -o root -g root -m 0644 "$bin/libpam_jit.so" /usr/local/sbin/libpam_jit.so
    JIT_HOST=/usr/local/sbin/jit-host
    PAM_JIT_SO=/usr/local/sbin/libpam_jit.so
    SYS_BINS_STAGED=1
  fi
}

sys_private_dev() { # DIR: a tmpfs /dev with the usual nodes bind-mounted from the real one
  local dir=$1 n
  mkdir -p "$dir/realdev"
  mount --rbind /dev "$dir/realdev"
  mount -t tmpfs -o mode=0755 jit-dev /dev
  for n in null zero full random urandom tty; do
    touch "/dev/$n"; mount --bind "$dir/realdev/$n" "/dev/$n"
  done
  mkdir -p /dev/pts /dev/shm
  mount --rbind "$dir/realdev/pts" /dev/pts
  ln -s pts/ptmx /dev/ptmx
  ln -s /proc/self/fd /dev/fd
  ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
}

sys_start_syslog() { # DIR -> sets SYS_SYSLOG_PID, log in DIR/auth.log
  local dir=$1 i
  cat > "$dir/rsyslog.conf" <<CONF
module(load="imuxsock" SysSock.Name="/dev/log")
global(workDirectory="$dir")
authpriv.*  $dir/auth.log
CONF
  rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" >/dev/null 2>&1 &
  SYS_SYSLOG_PID=$!
  for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
  [ -S /dev/log ] || sys_die "rsyslogd did not create /dev/log"
}

sys_stop_syslog() {
  if [ -n "${SYS_SYSLOG_PID:-}" ]; then kill "$SYS_SYSLOG_PID" 2>/dev/null || true; wait "$SYS_SYSLOG_PID" 2>/dev/null || true; fi
  SYS_SYSLOG_PID=
}

sys_wait_log() { # FILE NEEDLE: waits up to 5 s for a line
  local i
  for i in $(seq 50); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

sys_wait_tcp() { # PORT [SECS]
  local port=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

sys_rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- the CA -----------------------------------------------------------------------------

sys_ca_dir() { # DIR POLICY_TEXT
  "$JIT_CA" init --dir "$1" >/dev/null || sys_die "jit-ca init failed"
  printf '%s\n' "$2" > "$1/policy.toml"
  chmod 0600 "$1/policy.toml"
}

sys_ca_user() { # DIR NAME GROUP KEYPATH
  rm -f "$4" "$4.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$4"
  "$JIT_CA" user add "$2" --key "$4.pub" --group "$3" --dir "$1" >/dev/null || sys_die "user add $2 failed"
}

sys_start_ca() { # DIR PORT [LOGFILE]
  local dir=$1 port=$2 log=${3:-/dev/null} i
  "$JIT_CA" serve --dir "$dir" --listen "127.0.0.1:$port" >>"$log" 2>&1 &
  SYS_CA_PID=$!
  for i in $(seq 200); do
    curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && return 0
    kill -0 "$SYS_CA_PID" 2>/dev/null || { tail -5 "$log" >&2; sys_die "jit-ca exited at start"; }
    sleep 0.05
  done
  sys_die "jit-ca did not answer /v1/health within 10 s"
}

sys_stop_ca() {
  if [ -n "${SYS_CA_PID:-}" ]; then kill "$SYS_CA_PID" 2>/dev/null || true; wait "$SYS_CA_PID" 2>/dev/null || true; fi
  SYS_CA_PID=
}

# ---- host documents ---------------------------------------------------------------------

host_keygen() { rm -f "$1" "$1.pub"; ssh-keygen -q -t ed25519 -N '' -C "$(basename "$1")" -f "$1"; }

host_fingerprint() { ssh-keygen -l -E sha256 -f "$1" | awk '{print $2}'; }

# A grant document exactly as common::grant writes it: JSON body, then an SSHSIG by
# `ssh-keygen -Y sign` (the same format ssh-key produces; see docs/grant-format.md).
host_sign_grant() { # KEY OUT ID USER ROLE HOSTS NB NA [SUDO=true] [SERIAL] [SESSION_BOUND=false]
  local key=$1 out=$2 id=$3 user=$4 role=$5 hosts=$6 nb=$7 na=$8 sudo=${9:-true} serial=${10:-}
  local bound=${11:-false}
  local body=$out.body
  jq -n --arg id "$id" --arg user "$user" --arg role "$role" --arg hosts "$hosts" \
    --argjson nb "$nb" --argjson na "$na" --argjson sudo "$sudo" --arg serial "$serial" \
    --argjson bound "$bound" \
    --arg kid "$(host_fingerprint "$key.pub")" '
    {version: 1, id: $id, user: $user, role: $role, hosts: ($hosts | split(",")),
     sudo: $sudo, not_before: $nb, not_after: $na, issued_at: $nb, request_id: ("r-" + $id),
     reason: "system test", approvers: [{user: "carol", at: $nb}]}
    + (if $serial == "" then {} else {cert_serial: ($serial | tonumber)} end)
    + (if $bound then {session_bound: true} else {} end)
    + {key_id: $kid}' > "$body"
  rm -f "$body.sig"
  ssh-keygen -q -Y sign -f "$key" -n jit-grant@jit "$body" >/dev/null 2>&1
  cat "$body" "$body.sig" > "$out"
  rm -f "$body" "$body.sig"
}

host_sign_revocations() { # KEY OUT SEQ ISSUED_AT GRANT_IDS SERIALS
  local key=$1 out=$2 seq=$3 at=$4 ids=$5 serials=$6
  local body=$out.body
  jq -n --argjson seq "$seq" --argjson at "$at" --arg ids "$ids" --arg serials "$serials" \
    --arg kid "$(host_fingerprint "$key.pub")" '
    {version: 1, sequence: $seq, issued_at: $at,
     revoked_grants: ($ids | split(",") | map(select(. != ""))),
     revoked_serials: ($serials | split(",") | map(select(. != "") | tonumber)),
     key_id: $kid}' > "$body"
  rm -f "$body.sig"
  ssh-keygen -q -Y sign -f "$key" -n jit-revocations@jit "$body" >/dev/null 2>&1
  cat "$body" "$body.sig" > "$out"
  rm -f "$body" "$body.sig"
}

host_state_dir() { # DIR
  mkdir -p "$1/grants"
  chown root:root "$1" "$1/grants"
  chmod 0755 "$1" "$1/grants"
}

host_fresh_revocations() { # KEY STATE [SEQ] [GRANT_IDS] [SERIALS]
  local key=$1 state=$2 seq=${3:-1} ids=${4:-} serials=${5:-}
  host_sign_revocations "$key" "$state/revocations.new" "$seq" "$(date +%s)" "$ids" "$serials"
  install -m 0644 -o root -g root "$state/revocations.new" "$state/revocations"
  rm -f "$state/revocations.new"
}

host_put_grant() { # STATE USER FILE: install a grant file as root 0644
  local state=$1 user=$2 file=$3 id
  id=$(jq -r .id < <(sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$file"))
  mkdir -p "$state/grants/$user"; chmod 0755 "$state/grants/$user"
  install -m 0644 -o root -g root "$file" "$state/grants/$user/$id.grant"
}

host_config() { # PATH STATE GRANT_PUB [EXTRA TOML LINES...]
  local path=$1 state=$2 pub=$3; shift 3
  mkdir -p "$(dirname "$path")"
  {
    echo "state_dir = \"$state\""
    echo "grant_keys = [\"$(cat "$pub")\"]"
    local l; for l in "$@"; do echo "$l"; done
  } > "$path"
  chown root:root "$path"; chmod 0644 "$path"
}

# ---- sshd -------------------------------------------------------------------------------

sshd_start() { # DIR PORT [CONFIG LINES...]
  local dir=$1 port=$2 l
  shift 2
  mkdir -p "$dir"
  chmod 0755 "$dir"
  [ -e "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sshd-test -f "$dir/host_ed25519"
  chmod 0600 "$dir/host_ed25519"
  {
    echo "Port $port"
    echo "ListenAddress 127.0.0.1"
    echo "HostKey $dir/host_ed25519"
    echo "PidFile none"
    echo "StrictModes yes"
    echo "UsePAM no"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "PubkeyAuthentication yes"
    echo "AuthorizedKeysFile none"
    echo "LogLevel VERBOSE"
    for l in "$@"; do echo "$l"; done
  } > "$dir/sshd_config"
  chmod 0644 "$dir/sshd_config"
  /usr/sbin/sshd -t -f "$dir/sshd_config" || sys_die "sshd -t rejected $dir/sshd_config"
  SSHD_LOG=$dir/sshd.log
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>>"$SSHD_LOG" &
  SSHD_PID=$!
  sys_wait_tcp "$port" || { cat "$SSHD_LOG" >&2; sys_die "sshd did not listen on $port"; }
}

sshd_stop() {
  if [ -n "${SSHD_PID:-}" ]; then
    kill "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
  fi
  SSHD_PID=
}

ssh_try() { # USER KEY PORT [CMD...]: sets SSH_RC and SSH_OUT
  local user=$1 key=$2 port=$3
  shift 3
  [ $# -gt 0 ] || set -- true
  set +e
  SSH_OUT=$(sys_as "$user" timeout --kill-after=5 "$SYS_PAM_TIMEOUT" ssh -F /dev/null -i "$key" -p "$port" \
    -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=10 "$user@127.0.0.1" "$@" 2>&1)
  SSH_RC=$?
  set -e
}

ssh_log_has() { # NEEDLE
  local i
  for i in $(seq 30); do grep -qF -- "$1" "$SSHD_LOG" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# ---- bookkeeping ------------------------------------------------------------------------

T_PASS=0 T_FAIL=0
t_ok() { T_PASS=$((T_PASS + 1)); echo "ok   - $*"; }
t_bad() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $*"; }
t_summary() {
  echo "$T_PASS passed, $T_FAIL failed"
  [ "$T_FAIL" = 0 ]
}
