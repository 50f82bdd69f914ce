#!/usr/bin/env bash
# Regenerates the committed seed corpus in fuzz/corpus/ from common's grant test vectors,
# static inputs, and (for everything that needs keys or signatures) the test kit's
# `fuzz_seeds` example; stock `ssh-keygen -Y check-novalidate` then verifies the kit-signed
# revocation lists (an interop check).
# Run on purpose only (when the formats change): bash fuzz/seeds/make-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
V=../common/tests/vectors
C=corpus
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

mkdir -p "$C"/{grant_parse_verify,grant_signed_body,revocation_parse,revocation_signed_body,host_match}
for f in "$V"/*.grant; do
  n=$(basename "$f" .grant)
  [ "$n" = oversized ] && continue          # 17 KiB; the size check is a unit test
  cp "$f" "$C/grant_parse_verify/$n"
  # The body (everything before the signature block) with a host-name line in front.
  { printf 'db-1\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$f"; } > "$C/grant_signed_body/$n"
done

# Host selectors: SELECTOR\nHOST.
hm() { printf '%s\n%s' "$1" "$2" > "$C/host_match/$3"; }
hm 'db-*' 'db-10' star
hm 'web-[0-9]?' 'web-7a' class
hm 'web-[!0-9]' 'WEB-a' negated
hm '*.prod.example.com' 'db1.prod.example.com' suffix
hm '*a*a*a*b' 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' backtrack
hm '[a-]x' '-x' dash-literal
hm '[]' 'a' empty-class
mkdir -p "$C"/{host_toml,policy_toml,principals_cert,principals_signed_cert,api_request}

# policy.toml: every key of a role, an auto-approval rule, a broken role.
cat > "$C/policy_toml/full" <<'TOML'
[roles.db-admin]
principals = ["dbadmin"]
hosts = ["db-*", "backup-[0-9]"]
sudo = true
max_duration = "1h"
requesters = ["group:dev", "alice"]
approvers = ["group:dba"]
approvals = 2
auto_approve = false
require_reason = true
extensions = ["permit-pty"]
critical_options = { "source-address" = "10.0.0.0/8", "force-command" = "/bin/true" }

[roles.quick]
hosts = ["web-*"]
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
users = ["bob"]
max_duration = "15m"
TOML
printf '[roles.x]\nhosts = []\nmax_duration = "0s"\napprovals = 0\n' > "$C/policy_toml/broken"

# PRINCIPAL\nSERIAL\nFLAGS\nGRANT BODY (the grant vectors' bodies).
for n in valid expired no-sudo unknown-field; do
  { printf 'alice\n7\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/$n.grant"; } > "$C/principals_signed_cert/$n"
done
{ printf 'bob\n7\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/valid.grant"; } > "$C/principals_signed_cert/other-user"
{ printf 'alice\n8\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/valid.grant"; } > "$C/principals_signed_cert/serial-mismatch"
printf 'alice\n7\n8\n' > "$C/principals_signed_cert/no-grant"

# Everything that needs keys or signatures, from the test kit (tests/kit: revocation lists
# signed as RevocationList::sign signs them, host.toml, user and host certificates, API
# request bodies with a user's key).
(cd .. && cargo run -q --locked -p jit-test-kit --example fuzz_seeds -- "$OLDPWD/$C")

# Interop: stock ssh-keygen must verify what jit-common signed.
fp=$(ssh-keygen -lf "$V/test-grant-key.pub" | awk '{print $2}')
for f in "$C"/revocation_parse/*; do
  sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$f" > "$work/body"
  sed -n '/^-----BEGIN SSH SIGNATURE-----$/,$p' "$f" > "$work/sig"
  ssh-keygen -q -Y check-novalidate -n jit-revocations@jit -s "$work/sig" < "$work/body" >/dev/null \
    || { echo "ssh-keygen does not verify $f" >&2; exit 1; }
  grep -q "\"key_id\": \"$fp\"" "$work/body" || { echo "$f: key_id is not $fp" >&2; exit 1; }
done
echo "seeds written under fuzz/$C/"
