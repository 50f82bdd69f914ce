# shellcheck shell=bash
# Helpers for package tests that run inside `unshare --mount --uts --net --pid --fork`
# (sourced by packaging/upgrade-test.sh; same pattern as packaging/test.sh). The caller defines
# pass/fail and sets T (its private temp dir, with T/ovl existing).
#
#   ns_isolate T HOSTNAME   overlays (upper on a tmpfs) over /etc /usr /var, private /run,
#                           /home and root's home, hostname, loopback up. Returns 1 on failure.
#   as_user USER CMD...     run CMD as USER (setpriv, HOME/USER/LOGNAME set)
#   ssh_as USER KEY CMD     ssh to 127.0.0.1:22 as USER with KEY (no prompts, no known_hosts)
#   start_ca / start_sshd   jit-ca serve (as jit-ca.service would run it) on CA_URL / sshd -D
#   stop_daemons            stop both (by PID)
#   snapshot_pam            sha256 of every file under /etc/pam.d

ns_isolate() { # T hostname
  local t=$1 name=$2 d
  mount -t tmpfs -o mode=0755 tmpfs "$t/ovl" || return 1
  for d in etc usr var; do
    mkdir -p "$t/ovl/$d/upper" "$t/ovl/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$t/ovl/$d/upper,workdir=$t/ovl/$d/work" "/$d" || return 1
  done
  mount -t tmpfs -o mode=0755 tmpfs /run || return 1
  mkdir -p /run/sshd /run/sudo /run/lock
  chmod 0711 /run/sudo
  mount -t tmpfs -o mode=0755 tmpfs /home || return 1
  export HOME=$t/roothome; mkdir -p "$HOME"; chmod 0700 "$HOME"
  hostname "$name"
  echo "127.0.1.1 $name" >> /etc/hosts
  ip link set lo up
}

snapshot_pam() { (cd /etc/pam.d && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

CA_URL=${CA_URL:-http://127.0.0.1:8443}
CA_PID= SSHD_PID=
stop_daemons() {
  if [ -n "$CA_PID" ]; then kill "$CA_PID" 2>/dev/null; wait "$CA_PID" 2>/dev/null; CA_PID=; fi
  if [ -n "$SSHD_PID" ]; then kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null; SSHD_PID=; fi
}

as_user() {
  local u=$1; shift
  setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups \
    env HOME="$(getent passwd "$u" | cut -d: -f6)" USER="$u" LOGNAME="$u" "$@"
}
ssh_as() { # user key command
  as_user "$1" ssh -F none -i "$2" -p 22 -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 "$1@127.0.0.1" "$3"
}

start_ca() {
  # As jit-ca.service runs it, emulated without systemd: the jit-ca user, no capabilities,
  # no_new_privs, read-only but its StateDirectory, a private /tmp. $! is the CA's own PID.
  unshare --mount --propagation private sh -c '
      mount --bind /var/lib/jit-ca /var/lib/jit-ca
      for m in / /etc /usr /var /run /home; do mount -o remount,bind,ro "$m" || exit 90; done
      mount -t tmpfs tmpfs /tmp
      exec setpriv --reuid=jit-ca --regid=jit-ca --init-groups --no-new-privs --bounding-set=-all \
        /usr/bin/jit-ca serve --dir /var/lib/jit-ca --listen 127.0.0.1:8443' >> "$T/ca.log" 2>&1 &
  CA_PID=$!
  local i
  for i in $(seq 1 300); do
    curl -fsS "$CA_URL/v1/ca.pub" >/dev/null 2>&1 && return 0
    kill -0 "$CA_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

start_sshd() {
  /usr/sbin/sshd -D -e -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no >> "$T/sshd.log" 2>&1 &
  SSHD_PID=$!
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
