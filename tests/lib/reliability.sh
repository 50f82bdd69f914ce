# shellcheck shell=bash
# Helpers for the reliability system tests (tests/system/5x-*.sh, tests/load/run.sh).
#
#   rel_bins                    sets JIT_CA, JIT, JIT_HOST (JIT_BIN_DIR or a release build)
#   rel_enter_netns "$@"        re-exec the calling script in a private network + mount
#                               namespace with loopback up (ports and processes stay private)
#   rel_ca_dir DIR POLICY       jit-ca init + the given policy.toml
#   rel_user_add DIR NAME GROUP KEYPATH   a new ed25519 key and `jit-ca user add`
#   rel_serve DIR PORT          starts jit-ca serve, waits for /v1/health; sets REL_CA_PID
#   rel_stop                    kill -9 is the test's business; this one is graceful (TERM)

REL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rel_die() { echo "FAIL: $*" >&2; exit 1; }

rel_bins() {
  local bin=${JIT_BIN_DIR:-}
  if [ -z "$bin" ] || [ ! -x "$bin/jit-ca" ] || [ ! -x "$bin/jit" ] || [ ! -x "$bin/jit-host" ]; then
    (cd "$REL_ROOT" && cargo build --release --locked -p jit-ca -p jit -p jit-host -p pam_jit) >&2 \
      || rel_die "release build failed"
    bin=${CARGO_TARGET_DIR:-$REL_ROOT/target}/release
  fi
  JIT_CA=$bin/jit-ca JIT=$bin/jit JIT_HOST=$bin/jit-host
  [ -x "$JIT_CA" ] && [ -x "$JIT" ] && [ -x "$JIT_HOST" ] || rel_die "binaries missing in $bin"
}

rel_enter_netns() {
  [ "$(id -u)" = 0 ] || rel_die "must run as root (private namespaces)"
  if [ -z "${JIT_REL_NS:-}" ]; then
    export JIT_REL_NS=1
    exec unshare --net --mount --propagation private --fork -- bash "$0" "$@"
  fi
  ip link set lo up
}

rel_ca_dir() { # DIR POLICY_TEXT
  "$JIT_CA" init --dir "$1" >/dev/null || rel_die "jit-ca init failed"
  printf '%s\n' "$2" > "$1/policy.toml"
  chmod 0600 "$1/policy.toml"
}

rel_user_add() { # DIR NAME GROUP KEYPATH
  rm -f "$4" "$4.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$4"
  "$JIT_CA" user add "$2" --key "$4.pub" --group "$3" --dir "$1" >/dev/null || rel_die "user add $2 failed"
}

rel_serve() { # DIR PORT [LOGFILE]
  local dir=$1 port=$2 log=${3:-/dev/null} i
  "$JIT_CA" serve --dir "$dir" --listen "127.0.0.1:$port" >>"$log" 2>&1 &
  REL_CA_PID=$!
  for i in $(seq 200); do
    curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && return 0
    kill -0 "$REL_CA_PID" 2>/dev/null || { tail -5 "$log" >&2; rel_die "jit-ca exited at start"; }
    sleep 0.05
  done
  rel_die "jit-ca did not answer /v1/health within 10 s"
}

rel_stop() {
  if [ -n "${REL_CA_PID:-}" ]; then kill "$REL_CA_PID" 2>/dev/null || true; wait "$REL_CA_PID" 2>/dev/null || true; fi
  REL_CA_PID=
}

# Peak RSS (kB) and current RSS of a pid.
rel_rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
