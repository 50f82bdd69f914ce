# shellcheck shell=bash
# Helpers for the host-side system tests (pam_jit.so, jit-host). Source it; it never changes
# the host: everything happens inside a private mount + UTS namespace entered with
# host_enter_namespace, on tmpfs mounts that vanish with it.
#
#   host_enter_namespace "$@"      re-exec the calling script in the namespace (first line)
#   host_enter_namespace_net "$@"  same plus private net + PID namespaces, /run and /home
#   host_workdir                   a root-owned 0755 tmpfs scratch dir (prints its path)
#   host_isolate_users DIR         private copies of passwd/group/shadow, bind-mounted
#   host_add_user NAME UID [HASH]  add a user (and its group) to those copies
#   host_private_dev DIR           a private /dev (so a test can own /dev/log)
#   host_start_syslog DIR          rsyslogd on /dev/log writing authpriv to DIR/auth.log
#   host_keygen PATH               a new ed25519 key (PATH, PATH.pub)
#   host_sign_grant KEY OUT ID USER ROLE HOSTS NB NA [SUDO] [SERIAL]
#   host_sign_revocations KEY OUT SEQ ISSUED_AT GRANT_IDS SERIALS   (comma lists)
#   host_state_dir DIR             root 0755 state dir with grants/
#   host_fresh_revocations KEY STATE [SEQ] [GRANT_IDS] [SERIALS]
#                                  a list signed now by KEY, installed as STATE/revocations
#                                  (hosts deny every non-break-glass grant without one)
#   host_config PATH STATE GRANT_PUB [TOML...]
#   host_bins                      sets JIT_HOST, PAM_JIT_SO (builds if needed)

HOST_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

host_die() { echo "FAIL: $*" >&2; exit 1; }

host_enter_namespace() {
  [ "$(id -u)" = 0 ] || { echo "SKIP-FAIL: must run as root" >&2; exit 1; }
  if [ -z "${JIT_HOST_NS:-}" ]; then
    export JIT_HOST_NS=1
    exec unshare --mount --propagation private --uts --fork -- bash "$0" "$@"
  fi
}

# Same, plus a private network (loopback only) and PID namespace (every process started
# dies with the script), a private /run (with /run/sshd) and /home: for tests with sshd.
host_enter_namespace_net() {
  [ "$(id -u)" = 0 ] || { echo "SKIP-FAIL: must run as root" >&2; exit 1; }
  if [ -z "${JIT_HOST_NS:-}" ]; then
    export JIT_HOST_NS=1
    exec unshare --mount --propagation private --uts --net --pid --fork --kill-child --mount-proc \
      -- bash "$0" "$@"
  fi
  ip link set lo up
  mount -t tmpfs -o mode=0755 jit-run /run
  mkdir -p /run/sshd; chmod 0755 /run/sshd
  mount -t tmpfs -o mode=0755 jit-home /home
}

host_workdir() { # a tmpfs over /mnt (an existing root-owned dir: nothing is created on the host)
  mount -t tmpfs -o mode=0755 jit-host-test /mnt
  echo /mnt
}

host_isolate_users() {
  local dir=$1
  mkdir -p "$dir/etc-users"
  local f
  for f in passwd group shadow gshadow; do
    [ -e /etc/$f ] || continue
    cp -p /etc/$f "$dir/etc-users/$f"
    mount --bind "$dir/etc-users/$f" /etc/$f
  done
}

host_add_user() { # NAME UID [SHADOW_HASH]
  local name=$1 uid=$2 hash=${3:-'*'}
  echo "$name:x:$uid:$uid:jit test user:/run/jit-home/$name:/bin/bash" >> /etc/passwd
  echo "$name:x:$uid:" >> /etc/group
  echo "$name:$hash:19000:0:99999:7:::" >> /etc/shadow
  [ -e /etc/gshadow ] && echo "$name:!::" >> /etc/gshadow
  return 0
}

host_private_dev() { # DIR: a tmpfs /dev with the usual nodes bind-mounted from the real one
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

host_start_syslog() { # DIR -> sets HOST_SYSLOG_PID, log in DIR/auth.log
  local dir=$1
  cat > "$dir/rsyslog.conf" <<CONF
module(load="imuxsock" SysSock.Name="/dev/log")
global(workDirectory="$dir")
authpriv.*  $dir/auth.log
CONF
  rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" >/dev/null 2>&1 &
  HOST_SYSLOG_PID=$!
  local i
  for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
  [ -S /dev/log ] || host_die "rsyslogd did not create /dev/log"
}

host_stop_syslog() {
  if [ -n "${HOST_SYSLOG_PID:-}" ]; then kill "$HOST_SYSLOG_PID" 2>/dev/null || true; wait "$HOST_SYSLOG_PID" 2>/dev/null || true; fi
  HOST_SYSLOG_PID=
}

host_wait_log() { # FILE NEEDLE: waits up to 5 s for a line
  local i
  for i in $(seq 50); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

host_keygen() { rm -f "$1" "$1.pub"; ssh-keygen -q -t ed25519 -N '' -C "$(basename "$1")" -f "$1"; }

host_fingerprint() { ssh-keygen -l -E sha256 -f "$1" | awk '{print $2}'; }

# A grant document exactly as common::grant writes it: JSON body, then an SSHSIG by
# `ssh-keygen -Y sign` (the same format ssh-key produces; see docs/grant-format.md).
host_sign_grant() { # KEY OUT ID USER ROLE HOSTS NB NA [SUDO=true] [SERIAL]
  local key=$1 out=$2 id=$3 user=$4 role=$5 hosts=$6 nb=$7 na=$8 sudo=${9:-true} serial=${10:-}
  local body=$out.body
  jq -n --arg id "$id" --arg user "$user" --arg role "$role" --arg hosts "$hosts" \
    --argjson nb "$nb" --argjson na "$na" --argjson sudo "$sudo" --arg serial "$serial" \
    --arg kid "$(host_fingerprint "$key.pub")" '
    {version: 1, id: $id, user: $user, role: $role, hosts: ($hosts | split(",")),
     sudo: $sudo, not_before: $nb, not_after: $na, issued_at: $nb, request_id: ("r-" + $id),
     reason: "system test", approvers: [{user: "carol", at: $nb}]}
    + (if $serial == "" then {} else {cert_serial: ($serial | tonumber)} end)
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

host_bins() {
  local bin=${JIT_BIN_DIR:-$HOST_LIB_ROOT/target/release}
  if [ ! -x "$bin/jit-host" ] || [ ! -f "$bin/libpam_jit.so" ]; then
    (cd "$HOST_LIB_ROOT" && cargo build --release --locked -p pam_jit -p jit-host) >&2
    bin=${CARGO_TARGET_DIR:-$HOST_LIB_ROOT/target}/release
  fi
  [ -x "$bin/jit-host" ] && [ -f "$bin/libpam_jit.so" ] || host_die "no jit-host/libpam_jit.so in $bin"
  JIT_HOST=$bin/jit-host
  PAM_JIT_SO=$bin/libpam_jit.so
  # sshd runs AuthorizedPrincipalsCommand only from a root-owned path with no
  # group/world-writable directory above it, and jit-host checks the same. A checkout may
  # live anywhere (under /tmp, say), so inside the namespace stage copies on a private
  # root-owned tmpfs over /usr/local/sbin (empty on Debian; the host's stays untouched).
  if [ -n "${JIT_HOST_NS:-}" ] && [ -z "${HOST_BINS_STAGED:-}" ]; then
    mount -t tmpfs -o mode=0755 jit-bins /usr/local/sbin
    install -o root -g root -m 0755 "$bin/jit-host" /usr/local/sbin/jit-host
    install -o root -g root -m 0644 "$bin/libpam_jit.so" /usr/local/sbin/libpam_jit.so
    JIT_HOST=/usr/local/sbin/jit-host
    PAM_JIT_SO=/usr/local/sbin/libpam_jit.so
    HOST_BINS_STAGED=1
  fi
}

# Test bookkeeping.
HOST_PASS=0 HOST_FAIL=0
host_ok() { HOST_PASS=$((HOST_PASS + 1)); echo "ok   - $*"; }
host_bad() { HOST_FAIL=$((HOST_FAIL + 1)); echo "FAIL - $*"; }
host_summary() {
  echo "$HOST_PASS passed, $HOST_FAIL failed"
  [ "$HOST_FAIL" = 0 ]
}
