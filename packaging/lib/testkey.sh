#!/usr/bin/env bash
# Makes a THROWAWAY OpenPGP signing key for tests and CI: never use it for a release.
#
#   packaging/lib/testkey.sh DIR [NAME]
#
# Writes DIR/gnupg (a GNUPGHOME holding the key), DIR/key.asc (the exported SECRET key, for
# `packaging/repo.sh --key-file`) and DIR/key.pub.asc (the public key); prints the key's
# fingerprint on stdout. RSA 3072, no passphrase, usage "sign" only, expires in one day:
# accepted by apt (gpgv/sqv) and by rpm 4.18 / RHEL 9 (which refuse SHA-1 and small keys).
# NAME (default "jit test archive key") goes into the user ID, so two test keys differ.
set -euo pipefail
die() { echo "testkey.sh: ERROR: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: packaging/lib/testkey.sh DIR [NAME]"
command -v gpg >/dev/null || die "gpg is missing (apt-get install gnupg)"
dir=$1 name=${2:-jit test archive key}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
home=$dir/gnupg
rm -rf "$home"
mkdir -m 0700 "$home"
gpgq() { gpg --homedir "$home" --batch --quiet --no-tty "$@"; }
# Digest and cipher preferences that rpm on RHEL 9 and apt accept (no SHA-1 anywhere).
printf 'personal-digest-preferences SHA512 SHA384 SHA256\ncert-digest-algo SHA512\ndefault-preference-list SHA512 SHA384 SHA256 AES256 AES192 AES ZLIB BZIP2 ZIP Uncompressed\n' \
  > "$home/gpg.conf"
uid="$name (THROWAWAY test key, never for a release) <test-archive@jit.invalid>"
gpgq --passphrase '' --pinentry-mode loopback --quick-gen-key "$uid" rsa3072 sign 1d \
  2>"$dir/keygen.log" || { cat "$dir/keygen.log" >&2; die "gpg --quick-gen-key failed"; }
fpr=$(gpgq --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
[ -n "$fpr" ] || die "no secret key in $home after gpg --quick-gen-key"
gpgq --armor --pinentry-mode loopback --passphrase '' --export-secret-keys "$fpr" > "$dir/key.asc"
gpgq --armor --export "$fpr" > "$dir/key.pub.asc"
chmod 0600 "$dir/key.asc"
rm -f "$dir/keygen.log"
# The agent this started is restarted on demand by the next gpg that needs it.
gpgconf --homedir "$home" --kill gpg-agent >/dev/null 2>&1 || true
echo "$fpr"
