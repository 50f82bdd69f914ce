#!/usr/bin/env bash
# Signed repository test: builds the APT and dnf repositories with packaging/repo.sh from the
# packages in target/packages (signed with throwaway test keys made here), then proves that
# clients accept them, install from them, and refuse them once tampered with:
#
#   bash packaging/repo-test.sh          (as root, on Debian 12 after tests/install-deps.sh)
#
#   repo.sh   layout, SHA256-only Release with SOURCE_DATE_EPOCH's Date (the same on a rerun
#             and with --key instead of --key-file), signatures verify with the published key;
#             refuses: no key, a public key only, a key that cannot sign, no packages, two
#             different builds of one version, replacing a directory it did not write; takes
#             two package directories (N and N+1, both kept) and a signing subkey exported
#             alone (the primary key offline); build.sh --repo checks its arguments first
#   apt       in a private mount namespace (overlays over /etc /usr /var, no network): only
#             our repository (DIR/jit.sources with a file:// URI, the keyring at Signed-By),
#             apt-get update verifies InRelease, apt-get install jit-ca jit jit-host from it,
#             the binaries run; refused: Packages altered after signing, Release signed by
#             another key (NO_PUBKEY), no InRelease/Release.gpg (unsigned), a .deb altered
#             in the pool
#   rpm       rpmkeys --checksig with the published key in a scratch database: every .rpm
#             passes; a payload altered, or no key imported: fails. repodata: repomd.xml's
#             checksums match primary/filelists/other, primary lists the three packages at
#             the packages' versions, repomd.xml.asc verifies and fails once repomd.xml is
#             altered or signed by another key
#   dnf       (Debian's dnf, in the namespace, private config/cache dirs) DIR/jit.repo with a
#             file:// baseurl: makecache with repo_gpgcheck=1, repoquery lists the three
#             packages at their versions; makecache fails on an altered repomd.xml and on a
#             repomd.xml.asc made by another key; a package fetched through dnf passes
#             dnf's own signature check (gpgcheck=1) and rpm -K
#   host      the host's dpkg database, apt sources and lists, keyrings, rpm database and
#             root's GnuPG keyring unchanged
#
# Exits non-zero if any check fails. A check that cannot run counts as a failure unless
# JIT_PACKAGING_STRICT=0 (then it prints SKIP).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export LC_ALL=C

failures=0 skips=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() {
  echo "SKIP: $*"
  skips=$((skips + 1))
  if [ "${JIT_PACKAGING_STRICT:-1}" = 1 ]; then failures=$((failures + 1)); fi
}
check() { # description command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}
section() { echo; echo "--- $*"; }
indent() { sed 's/^/  | /'; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
OUT=${JIT_PACKAGES_DIR:-$TARGET_DIR/packages}

# =============================================================================================
# Inside the namespace: apt and dnf as clients (re-executed by the outer part below).
# =============================================================================================
apt_only_source() { # URI-of-the-apt-dir: our jit.sources, nothing else, no lists
  rm -f /etc/apt/sources.list
  rm -rf /etc/apt/sources.list.d /var/lib/apt/lists
  mkdir -p /etc/apt/sources.list.d /var/lib/apt/lists/partial
  sed "s|^URIs: .*|URIs: $1|" "$T/repo/jit.sources" > /etc/apt/sources.list.d/jit.sources
}
apt_update() { # log
  apt-get update > "$1" 2>&1
}
apt_refused() { # case-name uri expect-regex
  local name=$1 uri=$2 want=$3 log=$T/apt-$1.log
  apt_only_source "$uri"
  if apt_update "$log"; then
    fail "apt-get update accepted the repository with $name"; indent < "$log"; return
  fi
  if grep -Eq "$want" "$log"; then
    pass "apt-get update refuses the repository with $name: $(grep -Em1 "$want" "$log" | cut -c1-160)"
  else
    fail "apt-get update failed with $name, but not with /$want/"; indent < "$log"
  fi
  if apt-get install -s jit-host > "$T/apt-$name-install.log" 2>&1; then
    fail "with $name, jit-host is still installable"; indent < "$T/apt-$name-install.log"
  else
    pass "with $name, apt has no jit-host to install"
  fi
}

inner() {
  local T=$1 d
  # --- isolation --------------------------------------------------------------------------
  mount -t tmpfs -o mode=0755 tmpfs "$T/ovl" || { fail "tmpfs for overlay upper dirs"; return; }
  for d in etc usr var; do
    mkdir -p "$T/ovl/$d/upper" "$T/ovl/$d/work"
    if ! mount -t overlay overlay \
      -o "lowerdir=/$d,upperdir=$T/ovl/$d/upper,workdir=$T/ovl/$d/work" "/$d"; then
      fail "overlay over /$d"; return
    fi
  done
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/lock
  export HOME=$T/roothome; mkdir -p "$HOME"; chmod 0700 "$HOME"
  hostname jit-repo-test
  pass "namespace: overlays over /etc /usr /var, private /run, no network"
  export DEBIAN_FRONTEND=noninteractive
  # The published key where jit.sources' Signed-By expects it (for every case below: the
  # refusals are not for want of a key).
  install -D -m 0644 "$T/repo/jit-archive-keyring.gpg" /usr/share/keyrings/jit-archive-keyring.gpg

  # --- apt: refused ------------------------------------------------------------------------
  section "apt: tampered and unsigned repositories are refused"
  apt_refused "Packages altered after signing" "file://$T/neg-packages/apt" \
    'Hash Sum mismatch|[Hh]ashes do not match|unexpected size|File has unexpected size'
  apt_refused "Release signed by another key" "file://$T/neg-otherkey/apt" \
    'NO_PUBKEY|not signed|signature.*(could not|couldn.t) be verified'
  apt_refused "no InRelease and no Release.gpg (unsigned)" "file://$T/neg-unsigned/apt" \
    'is not signed|does not have a Release file|[Nn]o Release file'

  # A .deb changed in the pool (Release and Packages intact): the download is refused.
  apt_only_source "file://$T/neg-deb/apt"
  if ! apt_update "$T/apt-neg-deb-update.log"; then
    fail "apt-get update of the repository with an altered .deb (its metadata is intact)"; indent < "$T/apt-neg-deb-update.log"
  elif apt-get install -y jit > "$T/apt-neg-deb.log" 2>&1; then
    fail "apt-get install of a .deb altered in the pool succeeded"; indent < "$T/apt-neg-deb.log"
  elif grep -Eq 'Hash Sum mismatch|[Hh]ashes do not match|unexpected size' "$T/apt-neg-deb.log"; then
    pass "apt-get install refuses a .deb altered in the pool: $(grep -Em1 'Hash Sum mismatch|[Hh]ashes do not match|unexpected size' "$T/apt-neg-deb.log")"
  else
    fail "apt-get install of an altered .deb failed, but not on its hash"; indent < "$T/apt-neg-deb.log"
  fi
  check "nothing of jit was installed from the refused repositories" \
    sh -c "! dpkg-query -W -f='\${Status}\n' jit jit-ca jit-host 2>/dev/null | grep -q 'install ok installed'"

  # --- apt: install from the repository ---------------------------------------------------
  section "apt: install jit-ca, jit and jit-host from the signed repository"
  local uri=file://$T/repo/apt
  apt_only_source "$uri"
  check "jit.sources names Signed-By: /usr/share/keyrings/jit-archive-keyring.gpg" \
    grep -qx 'Signed-By: /usr/share/keyrings/jit-archive-keyring.gpg' /etc/apt/sources.list.d/jit.sources
  if apt_update "$T/apt-update.log"; then
    pass "apt-get update: only our repository, no error"
  else
    fail "apt-get update of the signed repository"; indent < "$T/apt-update.log"; return
  fi
  if grep -Eq '^(W|E): ' "$T/apt-update.log"; then
    fail "apt-get update warned"; grep -E '^(W|E): ' "$T/apt-update.log" | indent
  else
    pass "apt-get update: no warning (signature verified with the Signed-By keyring)"
  fi
  if ls /var/lib/apt/lists/ | grep -q '_dists_.*_InRelease$'; then
    pass "apt kept the verified InRelease ($(ls /var/lib/apt/lists/ | grep '_InRelease$'))"
  else
    fail "no InRelease in /var/lib/apt/lists"; ls /var/lib/apt/lists | indent
  fi
  local p want got policy
  for p in jit-ca jit jit-host; do
    want=$(cat "$T/want-deb-$p")
    apt-cache policy "$p" > "$T/policy-$p" 2>&1
    got=$(sed -n 's/^ *Candidate: //p' "$T/policy-$p")
    if [ "$got" = "$want" ] && grep -q "file:$T/repo/apt $SUITE/main" "$T/policy-$p"; then
      pass "apt-cache policy $p: candidate $got from file:$T/repo/apt $SUITE/main"
    else
      fail "apt-cache policy $p: want candidate $want from file:$T/repo/apt"; indent < "$T/policy-$p"
    fi
  done
  if apt-get install -y --no-install-recommends jit-ca jit jit-host > "$T/apt-install.log" 2>&1; then
    pass "apt-get install -y jit-ca jit jit-host"
  else
    fail "apt-get install -y jit-ca jit jit-host"; indent < "$T/apt-install.log"; return
  fi
  if grep -Eq 'WARNING: The following packages cannot be authenticated|unauthenticated' "$T/apt-install.log"; then
    fail "apt-get install mentions unauthenticated packages"; indent < "$T/apt-install.log"
  fi
  for p in jit-ca jit jit-host; do
    want=$(cat "$T/want-deb-$p")
    got=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null)
    if [ "$got" = "install ok installed $want" ]; then
      pass "dpkg -s $p: installed, version $want"
    else
      fail "dpkg -s $p: '$got' (want 'install ok installed $want')"
    fi
    policy=$(apt-cache policy "$p")
    if printf '%s\n' "$policy" | grep -A1 -E "^ \*\*\* $want " | grep -q "file:$T/repo/apt"; then
      pass "apt-cache policy $p: the installed $want comes from file:$T/repo/apt"
    else
      fail "apt-cache policy $p: the installed version is not the repository's"; printf '%s\n' "$policy" | indent
    fi
  done
  local b up=${want%-*}
  for b in jit-ca jit jit-host; do
    if command -v "$b" >/dev/null && "$b" --version > "$T/version-$b" 2>&1 && grep -q "$up" "$T/version-$b"; then
      pass "$b --version (installed from the repository): $(head -1 "$T/version-$b")"
    else
      fail "$b --version (want $up)"; indent < "$T/version-$b" 2>/dev/null
    fi
  done

  # --- dnf ----------------------------------------------------------------------------------
  section "dnf: repo_gpgcheck=1 with DIR/jit.repo (file://)"
  if ! command -v dnf >/dev/null; then
    skip "dnf is not installed (apt-get install dnf): the dnf client checks cannot run"
    return
  fi
  dnf_run() { # repo-dir log dnf-args...: a private dnf (own config, repos, cache, installroot)
    local repo=$1 log=$2 root; shift 2
    root=$(mktemp -d "$T/dnf.XXXXXX")
    mkdir -p "$root/repos.d"
    sed -e "s|^baseurl=.*|baseurl=file://$repo/rpm|" \
        -e "s|^gpgkey=.*|gpgkey=file://$T/repo/jit-archive-keyring.asc|" \
        "$T/repo/jit.repo" > "$root/repos.d/jit.repo"
    printf '[main]\ngpgcheck=1\nskip_if_unavailable=False\nreposdir=%s\ncachedir=/cache\npersistdir=/persist\nlogdir=/log\ninstallroot=%s\nplugins=0\n' \
      "$root/repos.d" "$root/root" > "$root/dnf.conf"
    echo "$root" > "$T/dnf.last"
    dnf -c "$root/dnf.conf" --releasever=1 --assumeyes "$@" > "$log" 2>&1
  }
  if dnf_run "$T/repo" "$T/dnf-makecache.log" makecache; then
    pass "dnf makecache with repo_gpgcheck=1 and gpgcheck=1 (the key from gpgkey=file://.../jit-archive-keyring.asc)"
  else
    fail "dnf makecache"; indent < "$T/dnf-makecache.log"
  fi
  check "jit.repo has repo_gpgcheck=1 and gpgcheck=1" sh -c "grep -qx repo_gpgcheck=1 '$T/repo/jit.repo' && grep -qx gpgcheck=1 '$T/repo/jit.repo'"
  if grep -q "Fingerprint: $(sed 's/\(....\)/\1 /g; s/ $//' "$T/fpr1" | cut -c1-24)" "$T/dnf-makecache.log"; then
    pass "dnf imported our key for the repository metadata (fingerprint $(cat "$T/fpr1"))"
  else
    fail "dnf did not say it imported key $(cat "$T/fpr1")"; indent < "$T/dnf-makecache.log"
  fi
  local droot; droot=$(cat "$T/dnf.last")
  if dnf -c "$droot/dnf.conf" --releasever=1 --assumeyes --cacheonly repoquery --repo jit \
       --qf '%{name} %{version}-%{release}' > "$T/dnf-repoquery.log" 2>&1; then
    for p in jit-ca jit jit-host; do
      want=$(cat "$T/want-rpm-$p")
      check "dnf repoquery: $p $want" grep -qx "$p $want" "$T/dnf-repoquery.log"
    done
  else
    fail "dnf repoquery"; indent < "$T/dnf-repoquery.log"
  fi
  # A package through dnf: downloaded and checked against the key dnf imported (gpgcheck=1).
  cat > "$T/dnf-get.py" <<'EOF'
import sys, dnf
base = dnf.Base()
base.conf.read(sys.argv[1])
root = base.conf.installroot  # the CLI puts these under the installroot; the API does not
base.conf.logdir = root + "/log"
base.conf.cachedir = root + "/cache"
base.conf.persistdir = root + "/persist"
base.conf.releasever = "1"
base.conf.assumeyes = True
base.read_all_repos()
base.fill_sack(load_system_repo=False)
pkgs = list(base.sack.query().available().filter(name="jit-host").latest())
if not pkgs:
    sys.exit("jit-host not in the repository")
base.download_packages(pkgs)
pkg = pkgs[0]
code, msg = base.package_signature_check(pkg)
if code == 1:  # key not yet in the installroot's rpm database: import it as dnf install does
    try:
        base._get_key_for_package(pkg, lambda *a: True, lambda *a: True)
    except dnf.exceptions.Error as e:  # the configured key is not the one that signed it
        sys.exit("signature check: 1 %s" % " ".join(str(e).split()))
    code, msg = base.package_signature_check(pkg)
print(pkg.localPkg())
sys.exit(0 if code == 0 else "signature check: %d %s" % (code, msg))
EOF
  # dnf's own interpreter (a python3 earlier in PATH may not have the dnf module).
  local py; py=$(sed -n '1s/^#! *//p' "$(command -v dnf)"); py=${py:-python3}
  if $py -c 'import dnf' 2>/dev/null; then
    local got_rpm
    if got_rpm=$($py "$T/dnf-get.py" "$droot/dnf.conf" 2>"$T/dnf-get.log") && [ -f "$got_rpm" ]; then
      pass "dnf downloaded jit-host and its signature checks (gpgcheck=1, key imported from gpgkey=)"
      if rpmkeys --dbpath "$T/rpmdb-key" --checksig "$got_rpm" > "$T/dnf-rpmk.log" 2>&1; then
        pass "rpm -K of the package dnf downloaded: $(cut -d: -f2- "$T/dnf-rpmk.log")"
      else
        fail "rpm -K of the package dnf downloaded"; indent < "$T/dnf-rpmk.log"
      fi
    else
      fail "dnf download of jit-host with its signature check"; indent < "$T/dnf-get.log"
    fi
    dnf_run "$T/neg-rpmkey" "$T/dnf-neg-rpmkey-makecache.log" makecache
    droot=$(cat "$T/dnf.last")
    if $py "$T/dnf-get.py" "$droot/dnf.conf" > "$T/dnf-neg-rpmkey.log" 2>&1; then
      fail "dnf accepted a jit-host signed by another key (gpgcheck=1)"; indent < "$T/dnf-neg-rpmkey.log"
    elif grep -q '^signature check: [1-9]' "$T/dnf-neg-rpmkey.log"; then
      pass "dnf refuses a jit-host signed by another key, in metadata signed by ours: $(grep -m1 -i 'not correct\|failed\|signature check' "$T/dnf-neg-rpmkey.log" | cut -c1-150)"
    else
      fail "dnf failed on a jit-host signed by another key, but not on its signature"; indent < "$T/dnf-neg-rpmkey.log"
    fi
  else
    skip "python3-dnf missing: no download through dnf"
  fi
  local neg
  for neg in "repomd-altered:repomd.xml altered after signing" "repomd-otherkey:repomd.xml.asc made by another key"; do
    if dnf_run "$T/neg-${neg%%:*}" "$T/dnf-${neg%%:*}.log" makecache; then
      fail "dnf makecache accepted the repository with ${neg#*:}"; indent < "$T/dnf-${neg%%:*}.log"
    elif grep -q 'GPG signature verification error\|Bad GPG signature\|signature' "$T/dnf-${neg%%:*}.log"; then
      pass "dnf makecache refuses ${neg#*:}: $(grep -m1 'Error:' "$T/dnf-${neg%%:*}.log")"
    else
      fail "dnf makecache failed with ${neg#*:}, but not on the signature"; indent < "$T/dnf-${neg%%:*}.log"
    fi
  done
}

if [ "${1:-}" = --inside ]; then
  T=$2 SUITE=$3
  inner "$T"
  echo "inside: $failures failure(s), $skips skip(s)"
  exit $((failures > 0 ? 1 : 0))
fi

# =============================================================================================
# Outside: packages, keys, repositories (good and tampered), rpm checks; then the namespace.
# =============================================================================================
[ "$(id -u)" = 0 ] || { echo "packaging/repo-test.sh must run as root (it uses mount namespaces)"; exit 1; }
START=$SECONDS
T=$(mktemp -d /tmp/jit-repo-test.XXXXXX)
chmod 0755 "$T" # apt's _apt sandbox user reads the file:// repositories
cleanup() {
  local h
  for h in "$T"/k1/gnupg "$T"/k2/gnupg "$T"/k3 "$T"/k4 "$T"/gnupg-scratch; do
    [ -d "$h" ] && gpgconf --homedir "$h" --kill gpg-agent >/dev/null 2>&1
  done
  if [ "${JIT_REPO_TEST_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
mkdir -p "$T/ovl"
SUITE=stable
# This script's own gpg calls that need no key (--show-keys, reading InRelease): a scratch
# home, so the caller's ~/.gnupg is never created or changed (checked below).
G0=$T/gnupg-scratch
mkdir -m 0700 "$G0"

section "tools"
tools_ok=1
for t in apt-ftparchive:apt-utils gpg:gnupg gpgv:gpgv rpmsign:rpm rpmkeys:rpm createrepo_c:createrepo-c \
         unshare:util-linux apt-get:apt; do
  if command -v "${t%%:*}" >/dev/null; then :; else fail "${t%%:*} is missing (apt-get install ${t#*:})"; tools_ok=0; fi
done
((tools_ok)) && pass "apt-ftparchive, gpg, gpgv, rpmsign, rpmkeys, createrepo_c, unshare present"
((tools_ok)) || { echo "packaging/repo-test.sh: $failures failure(s)"; exit 1; }

section "packages"
RELEASE=$TARGET_DIR/release
fresh() { # dir: three .deb and three .rpm, newer than the release binaries
  local oldest
  oldest=$(ls -tr "$1"/*.deb "$1"/*.rpm 2>/dev/null | head -1)
  [ -n "$oldest" ] || return 1
  [ "$(ls "$1"/*.deb "$1"/*.rpm | wc -l)" -eq 6 ] || return 1
  [ -z "$(find "$RELEASE"/jit-ca "$RELEASE"/jit "$RELEASE"/jit-host "$RELEASE"/libpam_jit.so \
           -newer "$oldest" -print -quit 2>/dev/null)" ]
}
if fresh "$OUT"; then
  pass "reusing the packages in $OUT (newer than the release binaries)"
elif JIT_SKIP_BUILD=1 bash packaging/build.sh > "$T/build.log" 2>&1; then
  pass "JIT_SKIP_BUILD=1 packaging/build.sh (packages were missing or older than the binaries)"
else
  fail "JIT_SKIP_BUILD=1 packaging/build.sh"; tail -30 "$T/build.log" | indent; exit 1
fi
for p in jit-ca jit jit-host; do
  deb=$(ls "$OUT"/"${p}"_*.deb 2>/dev/null | head -1)
  rpmf=$(ls "$OUT"/"$p"-[0-9]*.rpm 2>/dev/null | head -1)
  if [ -n "$deb" ] && [ -n "$rpmf" ]; then
    dpkg-deb -f "$deb" Version > "$T/want-deb-$p"
    rpm -qp --nosignature --qf '%{VERSION}-%{RELEASE}' "$rpmf" > "$T/want-rpm-$p" 2>/dev/null
    pass "$p: $(basename "$deb") ($(cat "$T/want-deb-$p")), $(basename "$rpmf") ($(cat "$T/want-rpm-$p"))"
  else
    fail "$OUT has no .deb and .rpm of $p"; exit 1
  fi
done

section "keys (throwaway, made now)"
if bash packaging/lib/testkey.sh "$T/k1" > "$T/fpr1" 2>"$T/k1.log" \
   && bash packaging/lib/testkey.sh "$T/k2" "jit OTHER test key" > "$T/fpr2" 2>"$T/k2.log"; then
  pass "packaging/lib/testkey.sh: two signing keys $(cat "$T/fpr1") and $(cat "$T/fpr2")"
else
  fail "packaging/lib/testkey.sh"; cat "$T/k1.log" "$T/k2.log" | indent; exit 1
fi
FPR1=$(cat "$T/fpr1") FPR2=$(cat "$T/fpr2")
check "testkey.sh: key.asc is a secret key, mode 0600" \
  sh -c "grep -q 'BEGIN PGP PRIVATE KEY BLOCK' '$T/k1/key.asc' && [ \$(stat -c %a '$T/k1/key.asc') = 600 ]"
check "testkey.sh: RSA 3072, usable for signing, expires" \
  sh -c "gpg --homedir '$T/k1/gnupg' --batch --with-colons --list-keys $FPR1 | awk -F: '\$1 == \"pub\" && \$3 == 3072 && \$4 == 1 && \$12 ~ /S/ && \$7 != \"\" { ok = 1 } END { exit !ok }'"

section "repo.sh"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
GNUPG_ROOT_BEFORE=$(find "${GNUPGHOME:-/root/.gnupg}" -type f -not -name 'S.*' -not -name '*.lock' -not -name random_seed -print0 2>/dev/null \
  | sort -z | xargs -0 -r sha256sum)
if bash packaging/repo.sh --out "$T/repo" --key-file "$T/k1/key.asc" --suite "$SUITE" \
     "$OUT" > "$T/repo.log" 2>&1; then
  pass "repo.sh --out DIR --key-file key.asc $OUT"
else
  fail "repo.sh --key-file"; indent < "$T/repo.log"; exit 1
fi
check "repo.sh warns when --base-url is not given" grep -q 'no --base-url' "$T/repo.log"
R=$T/repo
missing=""
for f in apt/dists/$SUITE/Release apt/dists/$SUITE/InRelease apt/dists/$SUITE/Release.gpg \
         apt/dists/$SUITE/main/binary-amd64/Packages apt/dists/$SUITE/main/binary-amd64/Packages.gz \
         rpm/repodata/repomd.xml rpm/repodata/repomd.xml.asc \
         jit-archive-keyring.gpg jit-archive-keyring.asc jit.sources jit.repo; do
  [ -s "$R/$f" ] || missing+=" $f"
done
if [ -z "$missing" ]; then pass "repo.sh wrote apt/dists/$SUITE/{Release,InRelease,Release.gpg,Packages{,.gz}}, rpm/repodata/repomd.xml{,.asc}, the keys and snippets"
else fail "repo.sh did not write:$missing"; fi
for p in jit-ca jit jit-host; do
  check "apt pool: pool/main/j/$p/${p}_$(cat "$T/want-deb-$p")_amd64.deb" test -f "$R/apt/pool/main/j/$p/${p}_$(cat "$T/want-deb-$p")_amd64.deb"
  check "rpm: $p-$(cat "$T/want-rpm-$p").x86_64.rpm" test -f "$R/rpm/$p-$(cat "$T/want-rpm-$p").x86_64.rpm"
done
REL=$R/apt/dists/$SUITE/Release
want_date=$(date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')
check "Release: Date is SOURCE_DATE_EPOCH's ($want_date)" grep -qx "Date: $want_date" "$REL"
for f in "Origin: jit" "Label: jit" "Suite: $SUITE" "Codename: $SUITE" "Architectures: amd64" "Components: main"; do
  check "Release: $f" grep -qx "$f" "$REL"
done
check "Release: SHA256 sums of Packages and Packages.gz, no MD5Sum/SHA1" \
  sh -c "grep -qx 'SHA256:' '$REL' && grep -q ' main/binary-amd64/Packages.gz$' '$REL' && ! grep -Eq '^(MD5Sum|SHA1):' '$REL'"
check "Packages: SHA256 per package, no MD5sum/SHA1" \
  sh -c "[ \$(grep -c '^SHA256: ' '$R/apt/dists/$SUITE/main/binary-amd64/Packages') = 3 ] && ! grep -Eq '^(MD5sum|SHA1):' '$R/apt/dists/$SUITE/main/binary-amd64/Packages'"
check "InRelease verifies with jit-archive-keyring.gpg (gpgv)" gpgv --keyring "$R/jit-archive-keyring.gpg" "$R/apt/dists/$SUITE/InRelease"
check "Release.gpg verifies Release with jit-archive-keyring.gpg (gpgv)" gpgv --keyring "$R/jit-archive-keyring.gpg" "$R/apt/dists/$SUITE/Release.gpg" "$REL"
check "InRelease's text is Release" sh -c "gpg --batch --homedir '$G0' --decrypt '$R/apt/dists/$SUITE/InRelease' 2>/dev/null | cmp -s - '$REL'"
check "jit-archive-keyring.gpg is binary, holds $FPR1 only" \
  sh -c "! grep -q 'BEGIN PGP' '$R/jit-archive-keyring.gpg' && [ \"\$(gpg --homedir '$G0' --batch --with-colons --show-keys '$R/jit-archive-keyring.gpg' 2>/dev/null | awk -F: '\$1 == \"fpr\" { print \$10; exit }')\" = $FPR1 ] && [ \$(gpg --homedir '$G0' --batch --with-colons --show-keys '$R/jit-archive-keyring.gpg' 2>/dev/null | grep -c '^pub:') = 1 ]"
check "jit-archive-keyring.asc is the same key, armoured" \
  sh -c "grep -q 'BEGIN PGP PUBLIC KEY BLOCK' '$R/jit-archive-keyring.asc' && gpg --homedir '$G0' --batch --with-colons --show-keys '$R/jit-archive-keyring.asc' 2>/dev/null | grep -q ':$FPR1:'"
check "jit.sources: deb822, URIs BASE/apt, Suites, Components, Signed-By" \
  sh -c "grep -qx 'Types: deb' '$R/jit.sources' && grep -qx 'URIs: https://packages.example.invalid/jit/apt' '$R/jit.sources' && grep -qx 'Suites: $SUITE' '$R/jit.sources' && grep -qx 'Components: main' '$R/jit.sources' && grep -qx 'Signed-By: /usr/share/keyrings/jit-archive-keyring.gpg' '$R/jit.sources'"
check "jit.repo: baseurl BASE/rpm, gpgcheck=1, repo_gpgcheck=1, gpgkey BASE/jit-archive-keyring.asc" \
  sh -c "grep -qx 'baseurl=https://packages.example.invalid/jit/rpm' '$R/jit.repo' && grep -qx gpgcheck=1 '$R/jit.repo' && grep -qx repo_gpgcheck=1 '$R/jit.repo' && grep -qx 'gpgkey=https://packages.example.invalid/jit/jit-archive-keyring.asc' '$R/jit.repo'"

# --key FPR from a GNUPGHOME; regenerating an existing repository; the same Release.
if bash packaging/repo.sh --out "$T/repo2" --key "$FPR1" --gnupghome "$T/k1/gnupg" --base-url https://example.invalid/x/ \
     "$OUT" > "$T/repo2.log" 2>&1 \
   && bash packaging/repo.sh --out "$T/repo2" --key "$FPR1" --gnupghome "$T/k1/gnupg" --base-url https://example.invalid/x/ \
     "$OUT" >> "$T/repo2.log" 2>&1; then
  pass "repo.sh --key FPR --gnupghome DIR, twice on the same --out (regenerated)"
  check "regenerated in place: no DIR.new.*/DIR.old.* left behind" sh -c "! ls -d '$T'/repo2.new.* '$T'/repo2.old.* 2>/dev/null | grep -q ."
  check "Release is the same on a rerun and with --key instead of --key-file (SOURCE_DATE_EPOCH)" \
    cmp "$REL" "$T/repo2/apt/dists/$SUITE/Release"
  check "Packages.gz is the same on a rerun" cmp "$R/apt/dists/$SUITE/main/binary-amd64/Packages.gz" "$T/repo2/apt/dists/$SUITE/main/binary-amd64/Packages.gz"
  check "--base-url goes into jit.sources and jit.repo" \
    sh -c "grep -qx 'URIs: https://example.invalid/x/apt' '$T/repo2/jit.sources' && grep -qx 'baseurl=https://example.invalid/x/rpm' '$T/repo2/jit.repo'"
else
  fail "repo.sh --key FPR --gnupghome DIR (twice)"; indent < "$T/repo2.log"
fi
GNUPG_ROOT_AFTER=$(find "${GNUPGHOME:-/root/.gnupg}" -type f -not -name 'S.*' -not -name '*.lock' -not -name random_seed -print0 2>/dev/null \
  | sort -z | xargs -0 -r sha256sum)
check "repo.sh --key-file imported nothing into the caller's keyring (${GNUPGHOME:-/root/.gnupg})" \
  test "$GNUPG_ROOT_BEFORE" = "$GNUPG_ROOT_AFTER"

refuses() { # description expect-regex repo.sh-args...
  local what=$1 want=$2 log; shift 2
  log=$T/refuse.$RANDOM.log
  if bash packaging/repo.sh "$@" > "$log" 2>&1; then
    fail "repo.sh accepted $what"; indent < "$log"
  elif grep -Eq "$want" "$log"; then
    pass "repo.sh refuses $what: $(grep -Em1 "$want" "$log" | cut -c1-170)"
  else
    fail "repo.sh refused $what without saying /$want/"; indent < "$log"
  fi
}
refuses "no key (and says how to make a test key)" 'testkey\.sh' --out "$T/x1" "$OUT"
gpg --homedir "$T/k1/gnupg" --batch --armor --export "$FPR1" > "$T/k1/public-only.asc"
refuses "a key file holding only a public key" 'no secret key' --out "$T/x2" --key-file "$T/k1/public-only.asc" "$OUT"
mkdir -m 0700 "$T/k3"
# A certify-only key (no signing capability): instant with ed25519.
if gpg --homedir "$T/k3" --batch --passphrase '' --pinentry-mode loopback --quick-gen-key \
     "jit cert-only test key <cert-only@jit.invalid>" ed25519 cert 1d > "$T/k3.log" 2>&1; then
  FPR3=$(gpg --homedir "$T/k3" --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')
  refuses "a key that cannot sign (certify-only)" 'cannot make signatures' --out "$T/x3" --key "$FPR3" --gnupghome "$T/k3" "$OUT"
  gpgconf --homedir "$T/k3" --kill gpg-agent >/dev/null 2>&1
else
  fail "gpg --quick-gen-key (certify-only key)"; indent < "$T/k3.log"
fi
mkdir -p "$T/empty"
refuses "a directory without packages" 'no \.deb or \.rpm' --out "$T/x4" --key-file "$T/k1/key.asc" "$T/empty"
# Two different builds with one name+version: the smallest .deb repacked (same control, gzip).
small=$(ls -S "$OUT"/*.deb | tail -1)
mkdir -p "$T/dup/x" "$T/dup2"
dpkg-deb -R "$small" "$T/dup/x" && mkdir -p "$T/dup/x/usr/share/doc/$(dpkg-deb -f "$small" Package)" \
  && echo "rebuilt" > "$T/dup/x/usr/share/doc/$(dpkg-deb -f "$small" Package)/rebuilt" \
  && dpkg-deb --root-owner-group -Zgzip -z1 -b "$T/dup/x" "$T/dup2/$(basename "$small")" >/dev/null 2>&1
cp "$OUT"/*.rpm "$T/dup2/" 2>/dev/null
refuses "two different builds of the same package and version" 'two different builds' \
  --out "$T/x5" --key-file "$T/k1/key.asc" "$OUT" "$T/dup2"
mkdir -p "$T/notrepo"; echo precious > "$T/notrepo/file"
refuses "to replace a non-empty directory it did not write" 'not a repository written by repo.sh' \
  --out "$T/notrepo" --key-file "$T/k1/key.asc" "$OUT"
check "... and left that directory alone" grep -qx precious "$T/notrepo/file"
# The same build twice (one copy already signed): accepted, one entry.
mkdir -p "$T/same"
cp "$R"/rpm/*.rpm "$T/same/" && cp "$OUT"/*.deb "$T/same/"
if bash packaging/repo.sh --out "$T/x6" --key-file "$T/k1/key.asc" "$OUT" "$T/same" > "$T/x6.log" 2>&1 \
   && [ "$(ls "$T"/x6/rpm/*.rpm | wc -l)" = 3 ] \
   && [ "$(grep -c '^Package: ' "$T/x6/apt/dists/$SUITE/main/binary-amd64/Packages")" = 3 ]; then
  pass "repo.sh takes the same build twice (an .rpm already signed) once"
else
  fail "repo.sh with the same build in two directories"; indent < "$T/x6.log"
fi
# The release set-up of docs/packaging.md: primary key offline (certify only), a signing
# subkey exported with --export-secret-subkeys is all the build host has.
mkdir -m 0700 "$T/k4"
k4() { gpg --homedir "$T/k4" --batch --passphrase '' --pinentry-mode loopback "$@"; }
if k4 --quick-gen-key "jit offline primary test key <offline@jit.invalid>" rsa3072 cert 1d > "$T/k4.log" 2>&1 \
   && FPR4=$(k4 --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }') \
   && k4 --quick-add-key "$FPR4" rsa3072 sign 1d >> "$T/k4.log" 2>&1 \
   && k4 --armor --export-secret-subkeys "$FPR4" > "$T/k4/subkeys.asc" 2>>"$T/k4.log"; then
  gpgconf --homedir "$T/k4" --kill gpg-agent >/dev/null 2>&1
  if bash packaging/repo.sh --out "$T/x8" --key-file "$T/k4/subkeys.asc" --key "${FPR4:0:4} ${FPR4:4}" "$OUT" > "$T/x8.log" 2>&1 \
     && gpgv --keyring "$T/x8/jit-archive-keyring.gpg" "$T/x8/apt/dists/$SUITE/InRelease" >/dev/null 2>&1 \
     && rpmkeys --dbpath "$T/k4/rpmdb" --import "$T/x8/jit-archive-keyring.asc" \
     && rpmkeys --dbpath "$T/k4/rpmdb" --checksig "$T"/x8/rpm/*.rpm > "$T/x8-k.log" 2>&1; then
    pass "repo.sh with only a signing subkey (--export-secret-subkeys, primary offline): gpgv and rpmkeys verify with the published key"
  else
    fail "repo.sh with a signing subkey only"; cat "$T/x8.log" "$T/x8-k.log" 2>/dev/null | indent
  fi
else
  fail "gpg: a certify-only primary with a signing subkey"; indent < "$T/k4.log"
fi

# Two directories, two versions (release N and N+1): both in one repository.
mkdir -p "$T/next/x" "$T/next2"
small_pkg=$(dpkg-deb -f "$small" Package) small_ver=$(dpkg-deb -f "$small" Version)
dpkg-deb -R "$small" "$T/next/x" && sed -i "s/^Version: .*/Version: $small_ver+repotest1/" "$T/next/x/DEBIAN/control" \
  && dpkg-deb --root-owner-group -Zgzip -z1 -b "$T/next/x" "$T/next2/${small_pkg}_$small_ver+repotest1_amd64.deb" >/dev/null 2>&1
if bash packaging/repo.sh --out "$T/x7" --key-file "$T/k1/key.asc" "$OUT" "$T/next2" > "$T/x7.log" 2>&1 \
   && [ "$(grep -c "^Package: $small_pkg\$" "$T/x7/apt/dists/$SUITE/main/binary-amd64/Packages")" = 2 ] \
   && grep -qx "Version: $small_ver+repotest1" "$T/x7/apt/dists/$SUITE/main/binary-amd64/Packages" \
   && grep -qx "Version: $small_ver" "$T/x7/apt/dists/$SUITE/main/binary-amd64/Packages"; then
  pass "repo.sh with two package directories keeps both versions ($small_pkg $small_ver and $small_ver+repotest1)"
else
  fail "repo.sh with two package directories (N and N+1)"; indent < "$T/x7.log"
fi
# build.sh --repo: its arguments are checked before anything is built.
if bash packaging/build.sh --repo "$T/x9" > "$T/x9.log" 2>&1; then
  fail "build.sh --repo without a key went on"
elif grep -q 'packaging/lib/testkey.sh' "$T/x9.log" && [ ! -e "$T/x9" ]; then
  pass "build.sh --repo without --key/--key-file: refused at once, says how to make a test key"
else
  fail "build.sh --repo without a key: no hint at packaging/lib/testkey.sh"; indent < "$T/x9.log"
fi
bash packaging/build.sh --no-such-option > "$T/x9.log" 2>&1
rc=$?
check "build.sh refuses an unknown argument (exit 2, usage)" sh -c "[ $rc = 2 ] && grep -q 'usage: packaging/build.sh' '$T/x9.log'"
rm -rf "$T"/x[1-8] "$T/dup" "$T/dup2" "$T/same" "$T/next" "$T/next2"

section "tampered copies (for the clients)"
# Hard-linked copies; a file is copied before it is changed (never through the link).
copy_repo() { cp -al "$R" "$T/$1"; }
own() { local f; for f in "$@"; do cp --remove-destination "$(readlink -f "$f")" "$f.tmp" && mv "$f.tmp" "$f"; done; }
ok=1
D=apt/dists/$SUITE
copy_repo neg-packages
own "$T/neg-packages/$D/main/binary-amd64/Packages" "$T/neg-packages/$D/main/binary-amd64/Packages.gz"
# An attacker's swap: jit-host's SHA256 in Packages replaced (as if pointing at another .deb).
sed -i '/^Package: jit-host$/,/^$/ s/^SHA256: .*/SHA256: '"$(echo evil | sha256sum | cut -d' ' -f1)"'/' \
  "$T/neg-packages/$D/main/binary-amd64/Packages" || ok=0
gzip -9n < "$T/neg-packages/$D/main/binary-amd64/Packages" > "$T/neg-packages/$D/main/binary-amd64/Packages.gz" || ok=0
copy_repo neg-otherkey
own "$T/neg-otherkey/$D/InRelease" "$T/neg-otherkey/$D/Release.gpg"
gpg --homedir "$T/k2/gnupg" --batch --yes --quiet -u "$FPR2" --clearsign -o "$T/neg-otherkey/$D/InRelease" "$T/neg-otherkey/$D/Release" || ok=0
gpg --homedir "$T/k2/gnupg" --batch --yes --quiet -u "$FPR2" -a --detach-sign -o "$T/neg-otherkey/$D/Release.gpg" "$T/neg-otherkey/$D/Release" || ok=0
copy_repo neg-unsigned
rm -f "$T/neg-unsigned/$D/InRelease" "$T/neg-unsigned/$D/Release.gpg"
copy_repo neg-deb
victim=$T/neg-deb/apt/pool/main/j/jit/jit_$(cat "$T/want-deb-jit")_amd64.deb
own "$victim"
size=$(stat -c %s "$victim")
# One byte flipped in the middle (same size: only the hash can tell).
printf '\x5a' | dd of="$victim" bs=1 seek=$((size / 2)) conv=notrunc status=none || ok=0
cmp -s "$victim" "$R/apt/pool/main/j/jit/jit_$(cat "$T/want-deb-jit")_amd64.deb" && ok=0
copy_repo neg-repomd-altered
own "$T/neg-repomd-altered/rpm/repodata/repomd.xml"
sed -i 's|<revision>\([0-9]*\)</revision>|<revision>\11</revision>|' "$T/neg-repomd-altered/rpm/repodata/repomd.xml" || ok=0
copy_repo neg-repomd-otherkey
own "$T/neg-repomd-otherkey/rpm/repodata/repomd.xml.asc"
gpg --homedir "$T/k2/gnupg" --batch --yes --quiet -u "$FPR2" -a --detach-sign \
  -o "$T/neg-repomd-otherkey/rpm/repodata/repomd.xml.asc" "$T/neg-repomd-otherkey/rpm/repodata/repomd.xml" || ok=0
# jit-host signed by another key, the metadata (regenerated) signed by ours: dnf's gpgcheck=1
# must refuse the package even though repo_gpgcheck passes.
copy_repo neg-rpmkey
rh=$T/neg-rpmkey/rpm/jit-host-$(cat "$T/want-rpm-jit-host").x86_64.rpm
own "$rh"
rpmsign --addsign --define "__gpg $(command -v gpg)" --define "_gpg_name $FPR2" --define "_gpg_path $T/k2/gnupg" \
  --define "_gpg_digest_algo sha256" "$rh" > "$T/neg-rpmkey.log" 2>&1 || ok=0
rm -rf "$T/neg-rpmkey/rpm/repodata"
createrepo_c --quiet --no-database "$T/neg-rpmkey/rpm" >> "$T/neg-rpmkey.log" 2>&1 || ok=0
gpg --homedir "$T/k1/gnupg" --batch --yes --quiet -u "$FPR1" -a --detach-sign \
  -o "$T/neg-rpmkey/rpm/repodata/repomd.xml.asc" "$T/neg-rpmkey/rpm/repodata/repomd.xml" >> "$T/neg-rpmkey.log" 2>&1 || ok=0
check "the original repository is unchanged by the tampered copies" \
  sh -c "gpgv --keyring '$R/jit-archive-keyring.gpg' '$R/$D/InRelease' && gpgv --keyring '$R/jit-archive-keyring.gpg' '$R/rpm/repodata/repomd.xml.asc' '$R/rpm/repodata/repomd.xml' && apt_sum=\$(sed -n 's/^ \([0-9a-f]\{64\}\) .* main\/binary-amd64\/Packages\$/\1/p' '$R/$D/Release') && [ \"\$apt_sum\" = \"\$(sha256sum < '$R/$D/main/binary-amd64/Packages' | cut -d' ' -f1)\" ]"
if ((ok)); then pass "tampered copies: Packages, Release by another key, unsigned, a .deb, repomd.xml, repomd.xml.asc by another key, an .rpm by another key"
else fail "making the tampered copies"; indent < "$T/neg-rpmkey.log"; fi

section "rpm: package signatures (rpmkeys --checksig, scratch database)"
KEYDB=$T/rpmdb-key NOKEYDB=$T/rpmdb-nokey
mkdir -p "$KEYDB" "$NOKEYDB"
if rpmkeys --dbpath "$KEYDB" --import "$R/jit-archive-keyring.asc" 2>"$T/rpm-import.log"; then
  pass "rpmkeys --import jit-archive-keyring.asc (private --dbpath)"
else
  fail "rpmkeys --import jit-archive-keyring.asc"; indent < "$T/rpm-import.log"
fi
keyid=$(echo "$FPR1" | tail -c 17 | tr 'A-F' 'a-f')
for f in "$R"/rpm/*.rpm; do
  out=$(rpmkeys --dbpath "$KEYDB" --checksig -v "$f" 2>&1); rc=$?
  if [ $rc = 0 ] && echo "$out" | grep -qi "Header V4 RSA/SHA256 Signature, key ID ${keyid: -8}: OK"; then
    pass "rpmkeys --checksig $(basename "$f"): RSA/SHA256 signature by ${keyid: -8} OK"
  else
    fail "rpmkeys --checksig $(basename "$f") (rc $rc)"; echo "$out" | indent
  fi
  out=$(rpmkeys --dbpath "$NOKEYDB" --checksig "$f" 2>&1)
  if [ $? != 0 ] && echo "$out" | grep -q 'SIGNATURES NOT OK\|NOKEY'; then
    pass "rpmkeys --checksig $(basename "$f") without the key imported: refused ($(echo "$out" | cut -d: -f2- | xargs))"
  else
    fail "rpmkeys --checksig $(basename "$f") without the key passed"; echo "$out" | indent
  fi
done
bad=$T/altered.rpm
cp "$R/rpm/jit-$(cat "$T/want-rpm-jit").x86_64.rpm" "$bad"
size=$(stat -c %s "$bad")
printf '\x5a\xa5' | dd of="$bad" bs=1 seek=$((size - 100)) conv=notrunc status=none
out=$(rpmkeys --dbpath "$KEYDB" --checksig "$bad" 2>&1)
if [ $? != 0 ]; then
  pass "rpmkeys --checksig of an .rpm whose payload was altered: refused ($(echo "$out" | cut -d: -f2- | xargs))"
else
  fail "rpmkeys --checksig passed an altered .rpm"; echo "$out" | indent
fi

section "rpm: createrepo_c metadata"
MD=$R/rpm/repodata
for type in primary filelists other; do
  block=$(sed -n "/<data type=\"$type\">/,/<\/data>/p" "$MD/repomd.xml")
  sum=$(echo "$block" | sed -n 's/.*<checksum type="sha256">\([0-9a-f]*\)<.*/\1/p')
  osum=$(echo "$block" | sed -n 's/.*<open-checksum type="sha256">\([0-9a-f]*\)<.*/\1/p')
  href=$(echo "$block" | sed -n 's/.*<location href="\([^"]*\)".*/\1/p')
  if [ -n "$sum" ] && [ -f "$R/rpm/$href" ] && [ "$(sha256sum < "$R/rpm/$href" | cut -d' ' -f1)" = "$sum" ] \
     && [ "$(zcat "$R/rpm/$href" | sha256sum | cut -d' ' -f1)" = "$osum" ]; then
    pass "repomd.xml: $type ($href) checksum and open-checksum match the file (sha256sum)"
  else
    fail "repomd.xml: $type checksum '$sum' / '$osum' does not match $href"
  fi
done
check "repomd.xml: revision is SOURCE_DATE_EPOCH" grep -q "<revision>$SOURCE_DATE_EPOCH</revision>" "$MD/repomd.xml"
prim=$(sed -n 's/.*<location href="\([^"]*primary[^"]*\)".*/\1/p' "$MD/repomd.xml")
zcat "$R/rpm/$prim" > "$T/primary.xml" 2>/dev/null
check "primary: packages=\"3\"" grep -q 'packages="3"' "$T/primary.xml"
for p in jit-ca jit jit-host; do
  want=$(cat "$T/want-rpm-$p")
  if awk -v n="$p" -v v="${want%-*}" -v r="${want##*-}" '
       /<name>/ { gsub(/.*<name>|<\/name>.*/, ""); name = $0 }
       /<version / && name == n && index($0, "ver=\"" v "\"") && index($0, "rel=\"" r "\"") { ok = 1 }
       END { exit !ok }' "$T/primary.xml"; then
    pass "primary: $p $want"
  else
    fail "primary.xml has no $p $want"
  fi
done
check "primary: every package's checksum is the signed .rpm's" sh -c "
  for f in '$R'/rpm/*.rpm; do grep -q \"pkgid=\\\"YES\\\">\$(sha256sum < \"\$f\" | cut -d' ' -f1)<\" '$T/primary.xml' || exit 1; done"
check "gpg --verify repomd.xml.asc repomd.xml (the published key only)" \
  gpgv --keyring "$R/jit-archive-keyring.gpg" "$MD/repomd.xml.asc" "$MD/repomd.xml"
if gpgv --keyring "$R/jit-archive-keyring.gpg" "$T/neg-repomd-altered/rpm/repodata/repomd.xml.asc" \
     "$T/neg-repomd-altered/rpm/repodata/repomd.xml" > "$T/gpgv-bad.log" 2>&1; then
  fail "repomd.xml.asc verified an altered repomd.xml"
else
  pass "repomd.xml.asc does not verify an altered repomd.xml: $(grep -m1 'BAD' "$T/gpgv-bad.log")"
fi
if gpgv --keyring "$R/jit-archive-keyring.gpg" "$T/neg-repomd-otherkey/rpm/repodata/repomd.xml.asc" \
     "$T/neg-repomd-otherkey/rpm/repodata/repomd.xml" > "$T/gpgv-other.log" 2>&1; then
  fail "a repomd.xml.asc made by another key verified"
else
  pass "a repomd.xml.asc made by another key does not verify: $(grep -m1 -i 'no public key\|BAD' "$T/gpgv-other.log")"
fi

section "namespace (apt and dnf as clients)"
HOST_BEFORE=$T/host.before
host_snapshot() {
  { sha256sum /var/lib/dpkg/status
    find /etc/apt /usr/share/keyrings -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
    ls -la /var/lib/apt/lists/ 2>/dev/null
    ls -laR /etc/yum.repos.d /var/lib/dnf /var/cache/dnf /etc/pki/rpm-gpg 2>/dev/null
    rpm -qa 2>/dev/null | sort
    ls -d /usr/bin/jit-ca /usr/bin/jit /usr/sbin/jit-host 2>/dev/null || true; } > "$1"
}
host_snapshot "$HOST_BEFORE"
unshare --mount --propagation private --net --uts --pid --fork --mount-proc \
  bash "$ROOT/packaging/repo-test.sh" --inside "$T" "$SUITE" 2>&1 | tee "$T/inner.log"
inner_rc=${PIPESTATUS[0]}
failures=$((failures + $(grep -c '^FAIL: ' "$T/inner.log")))
inner_skips=$(grep -c '^SKIP: ' "$T/inner.log")
skips=$((skips + inner_skips))
if [ "${JIT_PACKAGING_STRICT:-1}" = 1 ]; then failures=$((failures + inner_skips)); fi
if [ "$inner_rc" != 0 ] && ! grep -q -e '^FAIL: ' -e '^SKIP: ' "$T/inner.log"; then fail "namespace run exited $inner_rc"; fi

section "host untouched"
host_snapshot "$T/host.after"
if cmp -s "$HOST_BEFORE" "$T/host.after"; then
  pass "host dpkg database, apt sources and lists, keyrings, rpm database and dnf state unchanged"
else
  fail "the host changed"; diff "$HOST_BEFORE" "$T/host.after" | indent
fi

echo
echo "packaging/repo-test.sh: $failures failure(s), $skips skip(s) in $((SECONDS - START)) s"
((failures == 0))
