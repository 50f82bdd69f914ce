#!/usr/bin/env bash
# Issue 11, item 1: a certificate works only on the hosts of its role, for every principal in
# it. Real jit-ca (roles for web-*, db-*, lab-*; with and without sudo; approved by a person
# and by an auto-approval rule), real `jit request/approve/login`, a real sshd on host `db-1`
# prepared by `jit-host setup --sudo --sshd` (AuthorizedPrincipalsCommand = jit-host
# principals), in private mount/UTS/net/PID namespaces:
#   - a web-* certificate is refused on db-1, as the user and as the shared principal dbadmin;
#   - an auto-approved lab-* certificate likewise;
#   - a db-* role without sudo logs in (as both), and sudo is denied ("does not allow sudo");
#   - an auto-approved db-* role without sudo behaves the same;
#   - a certificate signed by the CA's user key that carries no grant is refused.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user jitw 2003
for u in alice:2001 bob:2002 dbadmin:2004; do
  n=${u%:*} id=${u#*:}
  echo "$n:x:$id:$id:jit test user:/home/$n:/bin/bash" >> /etc/passwd
  echo "$n:x:$id:" >> /etc/group
  echo "$n:jit-test-no-password:19000:0:99999:7:::" >> /etc/shadow
  install -d -o "$id" -g "$id" -m 0700 "/home/$n" "/home/$n/.ssh" "/home/$n/.config" "/home/$n/.config/jit"
done
as() { local u=$1; shift; setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups \
  env -i HOME="/home/$u" USER="$u" PATH=/usr/bin:/bin "$@"; }

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d" "$W/ssh"
cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d
cp -a /etc/ssh/. "$W/ssh/"; mount --bind "$W/ssh" /etc/ssh
for k in /etc/ssh/ssh_host_*_key; do [ -e "$k" ] && chmod 0600 "$k"; done
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key

# 1. The CA: roles for other hosts, roles without sudo, auto-approved roles.
CA=$W/ca; CA_PORT=18443; URL=http://127.0.0.1:$CA_PORT
"$JIT_CA" init --dir "$CA" >/dev/null
cat > "$CA/policy.toml" <<'TOML'
[roles.web]
principals = ["dbadmin"]
hosts = ["web-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
extensions = ["permit-pty"]

[roles.dbread]
principals = ["dbadmin"]
hosts = ["db-*"]
sudo = false
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
extensions = ["permit-pty"]

[roles.lab]
principals = ["dbadmin"]
hosts = ["lab-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
extensions = ["permit-pty"]
[[roles.lab.auto_approve_rules]]
name = "lab-oncall"
groups = ["dev"]
max_duration = "30m"

[roles.dbquick]
principals = ["dbadmin"]
hosts = ["db-*"]
sudo = false
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
extensions = ["permit-pty"]
[[roles.dbquick.auto_approve_rules]]
name = "db-oncall"
groups = ["dev"]
max_duration = "30m"
TOML
"$JIT_CA" policy check --dir "$CA" >/dev/null || sys_die "policy check failed"
for u in alice bob; do as "$u" ssh-keygen -q -t ed25519 -N '' -C "$u" -f "/home/$u/.ssh/id_ed25519"; done
"$JIT_CA" user add alice --key /home/alice/.ssh/id_ed25519.pub --group dev --dir "$CA" >/dev/null
"$JIT_CA" user add bob --key /home/bob/.ssh/id_ed25519.pub --group dba --dir "$CA" >/dev/null
"$JIT_CA" serve --dir "$CA" --listen "127.0.0.1:$CA_PORT" >"$W/ca.log" 2>&1 &
CA_PID=$!
SSHD_PID=
cleanup() { for p in $SSHD_PID $CA_PID; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$CA_PORT) 2>/dev/null && break; sleep 0.1; done
for u in alice bob; do
  echo "server = \"$URL\"" > "/home/$u/.config/jit/config.toml"; chown "$u" "/home/$u/.config/jit/config.toml"
done

# 2. The host db-1: host.toml from the CA, jit-host setup, sshd.
STATE=$W/state
CONF=$W/etc/host.toml; mkdir -p "$W/etc"
"$JIT_CA" host-config --dir "$CA" \
  | sed -e "s|^server = .*|server = \"$URL\"|" -e "s|^state_dir = .*|state_dir = \"$STATE\"|" \
        -e 's|^grant_writer = .*|grant_writer = "jitw"|' -e 's|^clock_skew_secs = .*|clock_skew_secs = 0|' > "$CONF"
chmod 0644 "$CONF"
out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
/usr/sbin/sshd -D -e -o UsePAM=no -o PidFile=none -o LogLevel=VERBOSE -o ListenAddress=127.0.0.1 2>>"$W/sshd.log" &
SSHD_PID=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && break; sleep 0.1; done

jit_alice() { as alice "$JIT" "$@"; }
jit_bob() { as bob "$JIT" "$@"; }
ssh_as() { # LOGIN CMD -> RC, OUT (alice's key and current certificate)
  local login=$1; shift
  set +e
  OUT=$(as alice timeout --kill-after=5 "$SYS_PAM_TIMEOUT" ssh -F /dev/null -i /home/alice/.ssh/id_ed25519 -o BatchMode=yes -o IdentitiesOnly=yes \
    -o IdentityAgent=none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=10 "$login@127.0.0.1" "$@" 2>&1)
  RC=$?
  set -e
}
certify() { # ROLE -> ID (approved by bob unless auto-approved; certificate installed)
  local id state
  id=$(jit_alice request "$1" --duration 10m --reason "scope test" --no-wait --json | jq -r .id)
  [ -n "$id" ] && [ "$id" != null ] || sys_die "request $1 failed"
  state=$(jit_alice show "$id" --json | jq -r .state)
  [ "$state" = approved ] || state=$(jit_bob approve "$id" --json | jq -r .state)
  [ "$state" = approved ] || sys_die "$1 not approved"
  jit_alice login "$id" >/dev/null 2>&1 || sys_die "jit login $1 failed"
  echo "$id"
}
refused_as_both() { # WHAT
  local who
  for who in alice dbadmin; do
    ssh_as "$who" true
    if [ $RC != 0 ]; then t_ok "$1: login as $who on db-1 refused"
    else t_bad "$1: login as $who on db-1 accepted"; fi
  done
}

# 3. web-* (sudo, approved by a person): refused on db-1 as alice and as dbadmin.
certify web >/dev/null
refused_as_both "web-* certificate"
[ ! -e "$STATE/grants/alice" ] && t_ok "nothing stored for the web-* certificate" || t_bad "stored: $(ls -R "$STATE/grants")"

# 4. lab-* approved at once by a rule: the same.
ID=$(certify lab)
[ "$(jit_alice show "$ID" --json | jq -r '.approvals[0].user')" = auto:lab-oncall ] && t_ok "lab request approved by the auto-approval rule" || t_bad "lab not auto-approved"
refused_as_both "auto-approved lab-* certificate"

# 5. db-* without sudo (approved by a person): logs in as both; sudo denied with the reason.
certify dbread >/dev/null
ssh_as alice 'sudo -n true'
if [ $RC != 0 ] && grep -q "does not allow sudo" <<<"$OUT"; then t_ok "db-* role without sudo: login as alice works, sudo denied: $(grep -o 'jit: .*' <<<"$OUT" | head -1)"
else t_bad "dbread as alice: rc $RC: $OUT $(tail -3 "$W/sshd.log")"; fi
ssh_as dbadmin id -un
[ $RC = 0 ] && [ "$OUT" = dbadmin ] && t_ok "db-* role without sudo: login as the shared principal dbadmin works" || t_bad "dbread as dbadmin: rc $RC: $OUT"

# 6. db-* without sudo, approved at once by a rule: the same.
rm -rf "$STATE/grants/alice"
certify dbquick >/dev/null
ssh_as alice 'sudo -n true'
if [ $RC != 0 ] && grep -q "does not allow sudo" <<<"$OUT"; then t_ok "auto-approved db-* role without sudo: login works, sudo denied"
else t_bad "dbquick as alice: rc $RC: $OUT"; fi
ssh_as dbadmin true
[ $RC = 0 ] && t_ok "auto-approved db-* role: login as dbadmin works" || t_bad "dbquick as dbadmin: rc $RC: $OUT"

# 7. Signed by the CA's own user key (as jit-ca does) but without a grant: refused.
cp /home/alice/.ssh/id_ed25519.pub "$W/bare.pub"
ssh-keygen -q -s "$CA/keys/user_ca" -I "jit:r-bare:alice" -n alice,dbadmin -z 999999 -V -1m:+10m "$W/bare.pub"
install -o alice -m 0644 "$W/bare-cert.pub" /home/alice/.ssh/id_ed25519-cert.pub
refused_as_both "CA-signed certificate without a grant"

t_summary
