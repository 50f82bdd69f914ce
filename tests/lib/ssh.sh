# shellcheck shell=bash
# Helpers to run a real OpenSSH sshd, test users and services inside private namespaces.
# Source it. Nothing here changes the host: the calling script re-executes itself in new
# mount + network + PID namespaces (ns_enter), everything it mounts is a tmpfs or a bind
# mount that vanishes with them, and every process it starts dies with the PID namespace.
#
#   ns_enter "$@"                   first line: re-exec the script in private mount/net/pid namespaces
#   ns_workdir                      root-owned 0755 tmpfs (on /mnt) for config sshd reads (StrictModes-safe); prints it
#   ns_isolate_users DIR            private copies of passwd/group/shadow(/gshadow), bind-mounted over /etc
#   ns_add_user NAME UID [GROUP...] a login user (own group + extra groups), home /home/NAME (0700), shell bash
#   ns_as USER CMD...               run CMD as USER (setpriv, clean env: HOME, USER, PATH; SSH_AUTH_SOCK unset)
#   ns_wait_tcp PORT [SECS]         wait until 127.0.0.1:PORT accepts connections
#   sshd_start DIR PORT [LINE...]   /usr/sbin/sshd -D -e with a minimal config (+ LINEs); sets SSHD_PID, SSHD_LOG
#   sshd_stop                       kill our sshd by PID
#   ssh_try USER KEY PORT [CMD]     as USER: `ssh -i KEY USER@127.0.0.1 -p PORT CMD`; sets SSH_RC, SSH_OUT
#   ssh_log_has NEEDLE              sshd's log contains NEEDLE (waits up to 3 s)
#   t_ok / t_bad / t_summary        test bookkeeping (t_summary fails if any t_bad)
#
# Requirements: root, util-linux (unshare, setpriv), iproute2 (ip), openssh-server/-client.

SSH_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

ns_die() { echo "FAIL: $*" >&2; exit 1; }

ns_enter() {
  [ "$(id -u)" = 0 ] || ns_die "must run as root (it uses namespaces; the host is not changed)"
  if [ -z "${JIT_SSH_NS:-}" ]; then
    export JIT_SSH_NS=1
    # --pid --kill-child: when the script ends, every process it started ends with it.
    exec unshare --mount --propagation private --net --pid --fork --kill-child --mount-proc \
      -- bash "$0" "$@"
  fi
  ip link set lo up
  # sshd needs /run/sshd (privilege separation); keep it off the host's /run.
  mount -t tmpfs -o mode=0755 jit-run /run
  mkdir -p /run/sshd
  chmod 0755 /run/sshd
  # Homes of test users.
  mount -t tmpfs -o mode=0755 jit-home /home
}

ns_workdir() {
  mount -t tmpfs -o mode=0755 jit-ssh-test /mnt
  chown root:root /mnt
  echo /mnt
}

ns_isolate_users() { # DIR
  local dir=$1 f
  mkdir -p "$dir/etc-users"
  for f in passwd group shadow gshadow; do
    [ -e /etc/$f ] || continue
    cp -p /etc/$f "$dir/etc-users/$f"
    mount --bind "$dir/etc-users/$f" /etc/$f
  done
}

ns_add_group() { # NAME GID
  grep -q "^$1:" /etc/group && return 0
  echo "$1:x:$2:" >> /etc/group
  if [ -e /etc/gshadow ]; then echo "$1:!::" >> /etc/gshadow; fi
}

ns_add_user() { # NAME UID [GROUP...]
  local name=$1 uid=$2 g gid=$(( $2 + 1000 ))
  shift 2
  echo "$name:x:$uid:$uid:jit test user:/home/$name:/bin/bash" >> /etc/passwd
  ns_add_group "$name" "$uid"
  for g in "$@"; do
    ns_add_group "$g" "$gid"; gid=$((gid + 1))
    # Rewrite in place: /etc/group is a bind mount, so no rename (sed -i) is possible.
    local new
    new=$(awk -F: -v OFS=: -v g="$g" -v u="$name" \
      '$1 == g { $4 = ($4 == "" ? u : $4 "," u) } { print }' /etc/group)
    printf '%s\n' "$new" > /etc/group
  done
  # Not locked ('!'/'*' make sshd refuse the account with UsePAM no), matches no password.
  echo "$name:jit-test-no-password:19000:0:99999:7:::" >> /etc/shadow
  mkdir -p "/home/$name"
  chown "$uid:$uid" "/home/$name"
  chmod 0700 "/home/$name"
}

ns_as() { # USER CMD...
  local user=$1 uid gid
  shift
  uid=$(id -u "$user") gid=$(id -g "$user")
  setpriv --reuid="$uid" --regid="$gid" --init-groups \
    env -i HOME="/home/$user" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
    "$@"
}

ns_wait_tcp() { # PORT [SECS]
  local port=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

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
  /usr/sbin/sshd -t -f "$dir/sshd_config" || ns_die "sshd -t rejected $dir/sshd_config"
  SSHD_LOG=$dir/sshd.log
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>>"$SSHD_LOG" &
  SSHD_PID=$!
  ns_wait_tcp "$port" || { cat "$SSHD_LOG" >&2; ns_die "sshd did not listen on $port"; }
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
  SSH_OUT=$(ns_as "$user" ssh -F /dev/null -i "$key" -p "$port" \
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

T_PASS=0 T_FAIL=0
t_ok() { T_PASS=$((T_PASS + 1)); echo "ok   - $*"; }
t_bad() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $*"; }
t_summary() {
  echo "$T_PASS passed, $T_FAIL failed"
  [ "$T_FAIL" = 0 ]
}
