#!/usr/bin/env bash
# README.md's Quick start, run as it is written, so the README cannot drift from the product.
#
# The fenced ```sh blocks after `<!-- quickstart: terminal 1 -->` are terminal 1 (root:
# build, CA, users, host setup, alice's request and login); the one after
# `<!-- quickstart: terminal 2 -->` is bob's terminal. Terminal 1 runs in the background;
# terminal 2 runs once alice's request is pending, as a person would; then terminal 1 must
# finish. Each terminal is one `bash -euo pipefail` script: any failing README command fails
# this test.
#
# Everything happens in private mount/UTS/net/PID namespaces with overlays over /etc, /usr,
# /var and /root and tmpfs /home, /run and /tmp: the users, sudoers, /etc/pam.d, the sshd
# drop-in, /etc/jit, /usr/local and /var/lib/jit that the README changes vanish with the
# namespace. What cannot run in a namespace is stood in for, and only that:
#   cargo      a no-op: the binaries come from JIT_BIN_DIR (target/release -> JIT_BIN_DIR)
#   systemctl  `systemctl reload ssh|sshd` sends SIGHUP to the sshd this test runs as the
#              machine's (the system's own sshd_config, UsePAM as shipped)
# Then, independently of the transcript: sudo went through under the grant (`root` from
# `sudo -n whoami` over ssh) and is refused without one (before the grant and after `jit
# drop` + sync), the certificate no longer logs in, and `jit-host principals` run by hand
# with no syslog daemon says why it refused.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
BIN=${JIT_BIN_DIR:?}
for b in jit-ca jit jit-host libpam_jit.so; do [ -e "$BIN/$b" ] || sys_die "no $b in $BIN"; done
W=$(sys_workdir)
# The checkout and JIT_BIN_DIR may live under /tmp (CI clones there), which the tmpfs below
# hides: take copies of what the test reads first.
mkdir -p "$W/bin"
for b in jit-ca jit jit-host libpam_jit.so; do cp "$BIN/$b" "$W/bin/"; done
BIN=$W/bin
cp "$SYS_ROOT/README.md" "$W/README.md"
README=$W/README.md
# Overlays: the README's useradd, sudoers, PAM, sshd and install lines write here.
mkdir -p "$W/ovl"
mount -t tmpfs -o mode=0755 jit-ovl "$W/ovl"
for d in etc usr var root; do
  mkdir -p "$W/ovl/$d/upper" "$W/ovl/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/ovl/$d/upper,workdir=$W/ovl/$d/work" "/$d" \
    || sys_die "overlay over /$d"
done
mount -t tmpfs -o mode=1777 jit-tmp /tmp
mkdir -p /run/sudo; chmod 0711 /run/sudo
hostname qs-host
grep -q '^127.0.0.1[[:space:]].*localhost' /etc/hosts || echo '127.0.0.1 localhost' >> /etc/hosts
echo '127.0.1.1 qs-host' >> /etc/hosts

# ---- the blocks ---------------------------------------------------------------------------
extract() { # TERMINAL: the ```sh blocks after each `<!-- quickstart: TERMINAL -->`, in order
  awk -v want="<!-- quickstart: $1 -->" '
    $0 == want { armed = 1; next }
    armed && /^```sh$/ { inblock = 1; armed = 0; n++; next }
    armed && NF { print "quickstart marker not followed by a ```sh block: " $0 > "/dev/stderr"; exit 3 }
    inblock && /^```$/ { inblock = 0; print ""; next }
    inblock { print }
    END { if (n == 0) exit 4 }' "$README"
}
# What cannot run in the namespace, stood in for (prepended to each terminal's script).
cat > "$W/shims.sh" <<'SHIMS'
cargo() { echo "(quickstart test: cargo $* skipped: the binaries come from JIT_BIN_DIR)" >&2; }
systemctl() {
  case "$*" in
    "reload ssh" | "reload sshd") kill -HUP "$QS_SSHD_PID" && sleep 1 ;;
    *) echo "quickstart test: unexpected systemctl $*" >&2; return 1 ;;
  esac
}
SHIMS
for t in 1 2; do
  extract "terminal $t" > "$W/blocks-$t.sh" || sys_die "README.md: no quick start block for terminal $t"
  cat "$W/shims.sh" "$W/blocks-$t.sh" > "$W/terminal-$t.sh"
done
t_ok "README.md: $(grep -c . "$W/blocks-1.sh") lines for terminal 1, $(grep -c . "$W/blocks-2.sh") for terminal 2"

# ---- the machine ------------------------------------------------------------------------------
# A checkout whose target/release holds the binaries under test.
CO=$W/checkout
mkdir -p "$CO/target"
ln -s "$BIN" "$CO/target/release"
# The machine's sshd, with the machine's own configuration (as on a fresh install).
ssh-keygen -A >/dev/null
/usr/sbin/sshd -t || sys_die "sshd -t rejects the system configuration"
/usr/sbin/sshd -D -e 2>>"$W/sshd.log" &
export QS_SSHD_PID=$!
sys_wait_tcp 22 || { cat "$W/sshd.log" >&2; sys_die "sshd did not listen on 22"; }

# The person's shell: root, a clean environment, no agent.
run_terminal() { # N: runs terminal-N.sh in the checkout; output in terminal-N.out
  (cd "$CO" && exec env -i HOME=/root USER=root LOGNAME=root TERM=dumb \
     PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QS_SSHD_PID="$QS_SSHD_PID" \
     timeout --kill-after=5 300 bash -euo pipefail "$W/terminal-$1.sh") > "$W/terminal-$1.out" 2>&1
}
show() { sed 's/^/  | /' "$@" >&2; }

# ---- terminal 1 in the background, terminal 2 once alice's request is pending -------------
run_terminal 1 &
T1=$!
pending=0
for i in $(seq 600); do
  if [ -s "$CO/demo/bob" ] && "$BIN/jit" --server http://127.0.0.1:8443 --identity "$CO/demo/bob" \
       list --pending --json 2>/dev/null | jq -e '.requests | length == 1' >/dev/null 2>&1; then
    pending=1; break
  fi
  kill -0 "$T1" 2>/dev/null || break
  sleep 0.2
done
if ((pending)); then
  t_ok "terminal 1: alice's request is pending (bob sees it)"
else
  wait "$T1" || true
  show "$W/terminal-1.out"; tail -20 "$W/sshd.log" >&2
  sys_die "terminal 1 never got to a pending request"
fi

if run_terminal 2; then
  t_ok "terminal 2 (bob): every README command succeeded"
else
  t_bad "terminal 2 failed (exit $?)"; show "$W/terminal-2.out"
fi
if wait "$T1"; then
  t_ok "terminal 1 (root, alice): every README command succeeded"
else
  rc=$?
  t_bad "terminal 1 failed (exit $rc)"; show "$W/terminal-1.out"; tail -20 "$W/sshd.log" >&2
fi

# ---- what the quick start promised ---------------------------------------------------------
if [ -n "${QS_SHOW:-}" ]; then   # QS_SHOW=1: both transcripts, as a person would see them
  for t in 1 2; do echo "--- terminal $t"; cat "$W/terminal-$t.out"; done
fi
T1OUT=$W/terminal-1.out
grep -q '^Approved: request r-' "$W/terminal-2.out" && t_ok "bob's approve answered: $(grep '^Approved' "$W/terminal-2.out")" \
  || t_bad "bob's approve: $(cat "$W/terminal-2.out")"
# Bob picked alice's request by user and role and read it (jit show) before approving it.
if awk '!u && /^user: +alice$/ { u = NR } !r && /^reason: +INC-1234: disk full$/ { r = NR }
        /^Approved: request r-/ { a = NR } END { exit !(u && r && a && u < a && r < a) }' "$W/terminal-2.out"; then
  t_ok "bob read alice's request (jit show: her user and reason) before approving it"
else
  t_bad "bob did not see alice's request before approving"; show "$W/terminal-2.out"
fi
denials=$(grep -c '^jit: sudo denied for alice on qs-host: ' "$T1OUT" || true)
if [ "$denials" = 2 ] && grep -q '^jit: sudo denied for alice on qs-host: no grant' "$T1OUT"; then
  t_ok "the gate: sudo refused before the grant and after jit drop + sync: $(grep -m1 '^jit: sudo denied' "$T1OUT")"
else
  t_bad "expected two sudo denials for alice in terminal 1, saw $denials"; show "$T1OUT"
fi
if grep -qx root "$T1OUT"; then
  t_ok "under the grant: ssh with the certificate, then sudo -n whoami printed root"
else
  t_bad "sudo under the grant did not print root"; show "$T1OUT"
fi
[ -f "$CO/demo/alice-cert.pub" ] && t_ok "jit request wrote demo/alice-cert.pub" || t_bad "no demo/alice-cert.pub"
ls /var/lib/jit/grants/alice/*.grant >/dev/null 2>&1 \
  && t_ok "the login stored alice's grant on the host" || t_bad "no grant stored for alice"

# Independently of the transcript: now (dropped, synced) sudo is refused and says why, and
# the certificate no longer logs in.
set +e
out=$(runuser -u alice -- timeout 30 sudo -n true 2>&1); rc=$?
set -e
if [ "$rc" != 0 ] && grep -q '^jit: sudo denied for alice on qs-host: .*revoked' <<<"$out"; then
  t_ok "after the quick start: sudo refused, the grant is revoked: $(head -1 <<<"$out")"
else
  t_bad "after the quick start: sudo rc $rc: $out"
fi
set +e
out=$(timeout 30 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o IdentitiesOnly=yes -o IdentityAgent=none -i "$CO/demo/alice" alice@127.0.0.1 true 2>&1); rc=$?
set -e
[ "$rc" != 0 ] && t_ok "after jit drop + sync the certificate no longer logs in" || t_bad "the dropped certificate still logs in"

# `jit-host principals` by hand on a terminal, no syslog daemon (private /dev without
# /dev/log): one line on stderr that says why, nothing on stdout, exit 1.
sys_private_dev "$W"
[ ! -e /dev/log ] || sys_die "/dev/log exists in the private /dev"
set +e
out=$(script -qec "/usr/local/sbin/jit-host principals alice AAAA; echo rc=\$?" /dev/null 2>&1 | tr -d '\r'); rc=$?
set -e
want='jit-host: principals: refused "alice": not an OpenSSH certificate: '
if grep -q "^rc=1$" <<<"$out" && [ "$(grep -c . <<<"$out")" = 2 ] && grep -q "^${want}.* (not logged: no syslog daemon on /dev/log)$" <<<"$out"; then
  t_ok "jit-host principals on a terminal without syslog: $(head -1 <<<"$out")"
else
  t_bad "jit-host principals on a terminal: $out"
fi
err=$(/usr/local/sbin/jit-host principals alice AAAA 2>&1 >/dev/null || true)
outp=$(/usr/local/sbin/jit-host principals alice AAAA 2>/dev/null || true)
[ -z "$outp" ] && [ "$(grep -c . <<<"$err")" = 1 ] \
  && t_ok "jit-host principals: the reason goes to stderr only (sshd reads stdout)" || t_bad "principals stdout: '$outp' stderr: '$err'"

t_summary
