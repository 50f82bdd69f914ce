#!/usr/bin/env bash
# jit-ca + jit + a real sshd, end to end, in private mount/net/pid namespaces:
# a newcomer's flow (start the CA, register a requester and an approver, request, approve,
# login, plain `ssh -i KEY`), and the refusals: before approval, after the certificate
# expires (sshd checks the window), and after `jit revoke` once the KRL is fetched again;
# a denial while `jit request` waits (exit 3); an agent-only key (SSHSIG made by ssh-agent,
# `ssh -o CertificateFile=...`); and a certificate loaded into the agent by `jit login`.
#
#   bash tests/system/20-ca-sshd.sh        (as root; JIT_BIN_DIR defaults to target/release)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"

# sys_enter builds what is missing first (outside the namespaces, so the namespaced part
# stays short and offline).
sys_enter --net "$@"

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user --login alice 2101 dev
sys_add_user --login bob 2102 dba

# The binaries, where the test users can run them.
mkdir -p "$W/bin"
install -m 0755 "$JIT_BIN_DIR/jit-ca" "$JIT_BIN_DIR/jit" "$W/bin/"
JIT_CA=$W/bin/jit-ca
JIT=$W/bin/jit

CA_PORT=18443
SSH_PORT=2222
CA=$W/ca
URL=http://127.0.0.1:$CA_PORT

# 1. The CA: init, a policy with a short role, two users, serve.
"$JIT_CA" init --dir "$CA" >/dev/null
cat > "$CA/policy.toml" <<'EOF'
[roles.ssh-login]
principals = []
hosts = ["*"]
sudo = false
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]

[roles.ssh-brief]
principals = []
hosts = ["*"]
sudo = false
max_duration = "20s"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]
EOF
"$JIT_CA" policy check --dir "$CA" >/dev/null || sys_die "policy check failed"

for u in alice bob; do
  install -d -o "$u" -g "$u" -m 0700 "/home/$u/.ssh"
  sys_as "$u" ssh-keygen -q -t ed25519 -N '' -C "$u" -f "/home/$u/.ssh/id_ed25519"
done
"$JIT_CA" user add alice --key /home/alice/.ssh/id_ed25519.pub --group dev --dir "$CA" >/dev/null
"$JIT_CA" user add bob --key /home/bob/.ssh/id_ed25519.pub --group dba --dir "$CA" >/dev/null

"$JIT_CA" serve --dir "$CA" --listen "127.0.0.1:$CA_PORT" >"$W/ca.log" 2>&1 &
CA_PID=$!
cleanup() {
  sshd_stop
  if [ -n "${CA_PID:-}" ]; then kill "$CA_PID" 2>/dev/null || true; wait "$CA_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
sys_wait_tcp "$CA_PORT" || { cat "$W/ca.log"; sys_die "jit-ca did not listen"; }
curl -fsS "$URL/v1/health" >/dev/null && t_ok "jit-ca serves /v1/health" || t_bad "health"

# alice finds the server through her config file, bob through JIT_SERVER.
install -d -o alice -g alice /home/alice/.config /home/alice/.config/jit
echo "server = \"$URL\"" > /home/alice/.config/jit/config.toml
chown alice:alice /home/alice/.config/jit/config.toml
jit_alice() { sys_as alice "$JIT" "$@"; }
jit_bob() { sys_as bob env JIT_SERVER="$URL" "$JIT" "$@"; }

# 2. sshd trusting the CA (from /v1/ca.pub), with the CA's KRL (from /v1/krl).
ETC=$W/sshd
mkdir -p "$ETC"
curl -fsS "$URL/v1/ca.pub" -o "$ETC/user_ca.pub"
curl -fsS "$URL/v1/krl" -o "$ETC/revoked.krl"
chmod 0644 "$ETC/user_ca.pub" "$ETC/revoked.krl"
grep -q '^ssh-ed25519 ' "$ETC/user_ca.pub" && t_ok "ca.pub is an OpenSSH key list" || t_bad "ca.pub: $(cat "$ETC/user_ca.pub")"
sshd_start "$ETC" "$SSH_PORT" "TrustedUserCAKeys $ETC/user_ca.pub" "RevokedKeys $ETC/revoked.krl"

KEY=/home/alice/.ssh/id_ed25519
CERT=$KEY-cert.pub

# 3. Before approval: no certificate, no login.
ID=$(jit_alice request ssh-login --duration 30m --reason "system test" --no-wait --json | jq -r .id)
[ -n "$ID" ] && [ "$ID" != null ] && t_ok "alice requested ssh-login ($ID)" || t_bad "request: $ID"
[ "$(jit_alice show "$ID" --json | jq -r .state)" = pending ] && t_ok "request is pending" || t_bad "not pending"
ssh_try alice "$KEY" "$SSH_PORT"
[ "$SSH_RC" != 0 ] && t_ok "ssh refused before approval" || t_bad "ssh accepted before approval"
set +e; out=$(jit_alice login "$ID" 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "still pending" <<<"$out" && [ ! -e "$CERT" ] \
  && t_ok "jit login refuses a pending request" || t_bad "login while pending: rc=$rc $out"

# 4. bob approves, alice logs in, plain ssh works.
[ "$(jit_bob approve "$ID" --json | jq -r .state)" = approved ] && t_ok "bob approved" || t_bad "approve"
jit_alice login "$ID" >"$W/login.out" 2>&1 || { cat "$W/login.out"; t_bad "jit login failed"; }
[ -f "$CERT" ] && [ "$(stat -c '%a %U' "$CERT")" = "644 alice" ] \
  && t_ok "login wrote $CERT (0644, alice)" || t_bad "no certificate file"
ssh-keygen -L -f "$CERT" | grep -q "Key ID: \"jit:$ID:alice\"" && t_ok "certificate key id jit:$ID:alice" || t_bad "key id"
ssh_try alice "$KEY" "$SSH_PORT" id -un
[ "$SSH_RC" = 0 ] && [ "$SSH_OUT" = alice ] && t_ok "plain ssh -i KEY with the certificate logs in" \
  || t_bad "ssh with certificate: rc=$SSH_RC $SSH_OUT $(tail -5 "$SSHD_LOG")"

# 5. Revoke: refused once sshd's KRL is refreshed from the CA.
SERIAL=$(jit_alice show "$ID" --json | jq -r .serial)
[ "$(jit_alice revoke "$ID" --reason "done" --json | jq -r .state)" = revoked ] && t_ok "alice revoked $ID" || t_bad "revoke"
ssh_try alice "$KEY" "$SSH_PORT"
[ "$SSH_RC" = 0 ] && t_ok "still accepted until the KRL is fetched (sshd is offline)" || t_bad "refused before KRL refresh?"
curl -fsS "$URL/v1/krl" -o "$ETC/revoked.krl.new" && mv "$ETC/revoked.krl.new" "$ETC/revoked.krl"
set +e; ssh-keygen -Q -f "$ETC/revoked.krl" "$CERT" >/dev/null 2>&1; q=$?; set -e
[ $q != 0 ] && t_ok "ssh-keygen -Q: serial $SERIAL is in the KRL" || t_bad "KRL does not revoke the certificate"
ssh_try alice "$KEY" "$SSH_PORT"
[ "$SSH_RC" != 0 ] && t_ok "ssh refused after revocation" || t_bad "ssh accepted after revocation"
ssh_log_has "revoked" && t_ok "sshd logged the revoked key" || t_bad "no revocation in sshd log"

# 6. Expiry: a 15 s window; accepted inside it, refused after it (sshd checks validity).
#    This time `jit request` waits for the decision and installs the certificate itself.
rm -f "$CERT"
jit_alice request ssh-brief --duration 15s --reason "brief" --json >"$W/wait.json" 2>"$W/wait.err" &
WAIT_PID=$!
BRIEF=
for _ in $(seq 100); do
  BRIEF=$(jit_bob list --pending --json | jq -r '.requests[] | select(.role == "ssh-brief") | .id' | head -1)
  [ -n "$BRIEF" ] && break
  sleep 0.2
done
[ -n "$BRIEF" ] && t_ok "bob sees the pending ssh-brief request" || t_bad "no pending request"
jit_bob approve "$BRIEF" >/dev/null
set +e; wait "$WAIT_PID"; rc=$?; set -e
[ $rc = 0 ] && [ "$(jq -r .request.state "$W/wait.json")" = approved ] && [ -f "$CERT" ] \
  && t_ok "jit request waited, then wrote the certificate" || t_bad "waiting request: rc=$rc $(cat "$W/wait.err")"
grep -q "waiting for approval" "$W/wait.err" && t_ok "progress shown on stderr" || t_bad "no progress lines"
ssh_try alice "$KEY" "$SSH_PORT"
[ "$SSH_RC" = 0 ] && t_ok "ssh accepted inside the window" || t_bad "ssh inside window: $SSH_OUT"
END=$(jq -r .certificate.valid_before "$W/wait.json")
while [ "$(date +%s)" -le "$END" ]; do sleep 1; done
sleep 1
ssh_try alice "$KEY" "$SSH_PORT"
[ "$SSH_RC" != 0 ] && t_ok "ssh refused after the certificate expired" || t_bad "ssh accepted after expiry"
ssh_log_has "expired" && t_ok "sshd logged the expired certificate" || t_bad "no expiry in sshd log"

# 7. A denied request exits 3 and writes nothing.
rm -f "$CERT"
jit_alice request ssh-login --duration 5m --reason "deny me" >/dev/null 2>"$W/deny.err" &
WAIT_PID=$!
DENY=
for _ in $(seq 100); do
  DENY=$(jit_bob list --pending --json | jq -r '.requests[0].id // empty')
  [ -n "$DENY" ] && break
  sleep 0.2
done
jit_bob deny "$DENY" --reason "not now" >/dev/null
set +e; wait "$WAIT_PID"; rc=$?; set -e
[ $rc = 3 ] && [ ! -e "$CERT" ] && t_ok "denied request: exit 3, no certificate" || t_bad "deny: rc=$rc $(cat "$W/deny.err")"

# 8. An agent-only key: alice's key lives only in her ssh-agent (no key file). jit signs
#    through the agent, writes ~/.ssh/jit-ID-cert.pub, and the documented
#    `ssh -o CertificateFile=...` logs in with the agent's key.
AGENT_SOCK=/home/alice/agent.sock
sys_as alice ssh-agent -D -a "$AGENT_SOCK" >/dev/null 2>&1 &
AGENT_PID=$!
for _ in $(seq 50); do [ -S "$AGENT_SOCK" ] && break; sleep 0.1; done
sys_as alice env SSH_AUTH_SOCK="$AGENT_SOCK" ssh-add -q "$KEY"
mkdir -p "$W/away"; mv "$KEY" "$KEY.pub" "$W/away/"
jit_agent() { sys_as alice env SSH_AUTH_SOCK="$AGENT_SOCK" "$JIT" "$@"; }
[ "$(jit_agent whoami --json | jq -r .user)" = alice ] && t_ok "agent-held key signs API calls" || t_bad "whoami via agent"
AID=$(jit_agent request ssh-login --duration 10m --reason "agent" --no-wait --json | jq -r .id)
jit_bob approve "$AID" >/dev/null
jit_agent login "$AID" --json >"$W/agent-login.json"
ACERT=/home/alice/.ssh/jit-$AID-cert.pub
[ "$(jq -r .certificate_file "$W/agent-login.json")" = "$ACERT" ] && [ -f "$ACERT" ] \
  && t_ok "agent-only login wrote $ACERT" || t_bad "agent-only certificate: $(cat "$W/agent-login.json")"
agent_ssh() {
  set +e
  SSH_OUT=$(sys_as alice env SSH_AUTH_SOCK="$AGENT_SOCK" timeout --kill-after=5 "$SYS_PAM_TIMEOUT" ssh -F /dev/null -p "$SSH_PORT" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@" alice@127.0.0.1 true 2>&1)
  SSH_RC=$?
  set -e
}
agent_ssh
[ "$SSH_RC" != 0 ] && t_ok "the agent's plain key alone is refused" || t_bad "plain agent key accepted"
agent_ssh -o CertificateFile="$ACERT"
[ "$SSH_RC" = 0 ] && t_ok "ssh -o CertificateFile=... logs in with the agent's key" || t_bad "agent + CertificateFile: $SSH_OUT"
mv "$W/away/id_ed25519" "$W/away/id_ed25519.pub" /home/alice/.ssh/

# 9. With the key file, `jit login` loads key + certificate into the running agent: ssh then
#    logs in from the agent alone (no certificate file left on disk).
sys_as alice env SSH_AUTH_SOCK="$AGENT_SOCK" ssh-add -q -D
jit_agent --identity "$KEY" login "$AID" --json >"$W/agent-load.json"
[ "$(jq -r .agent_loaded "$W/agent-load.json")" = true ] && t_ok "login loaded the certificate into the agent" \
  || t_bad "agent load: $(cat "$W/agent-load.json")"
rm -f "$CERT" "$ACERT"
agent_ssh
[ "$SSH_RC" = 0 ] && t_ok "ssh logs in with the agent-loaded certificate" || t_bad "agent certificate: $SSH_OUT"
kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true

t_summary
