#!/usr/bin/env bash
# Builds signed package repositories from built .deb and .rpm files:
#
#   packaging/repo.sh --out DIR (--key-file FILE | --key FINGERPRINT) [--gnupghome DIR]
#                     [--suite stable] [--base-url URL] PACKAGES_DIR...
#
# Writes (DIR is what gets published, as is, at URL):
#   DIR/apt/        APT repository: pool/main/<p>/<package>/*.deb and
#                   dists/SUITE/{Release,InRelease,Release.gpg,main/binary-ARCH/Packages{,.gz}}
#   DIR/rpm/        dnf/yum repository: the .rpm files signed (rpmsign), repodata/ (createrepo_c)
#                   with repomd.xml and its detached armoured signature repomd.xml.asc
#   DIR/jit-archive-keyring.gpg   the public key, binary (apt's Signed-By: file)
#   DIR/jit-archive-keyring.asc   the public key, armoured (rpm --import, dnf gpgkey=)
#   DIR/jit.sources               for /etc/apt/sources.list.d/ (deb822, Signed-By)
#   DIR/jit.repo                  for /etc/yum.repos.d/ (gpgcheck=1, repo_gpgcheck=1)
#
# Keys (nothing is ever imported into the caller's keyring):
#   --key FPR        sign with this key from the keyring in --gnupghome (default: $GNUPGHOME,
#                    else ~/.gnupg). A passphrase or a smartcard is asked by the gpg-agent.
#   --key-file FILE  an exported SECRET key; imported into a private temporary GNUPGHOME that
#                    is deleted afterwards. With --key too, FPR picks the key inside FILE.
#   For tests: packaging/lib/testkey.sh DIR makes a throwaway key (never for a release).
#
# Several PACKAGES_DIRs put every version into one repository (release N and N+1 side by side).
# The same package (name, version, architecture) found twice must be the same build: two
# different builds under one version would silently shadow each other, so that is refused.
#
# Re-running on the same DIR regenerates it: everything is built in a sibling DIR.new.* and
# then swapped in with two renames (DIR -> DIR.old.*, DIR.new.* -> DIR), so DIR is never half
# written; a client that fetches during the swap gets the old or the new tree, or a 404.
# An existing non-empty DIR is only replaced when it is a repository this script wrote.
#
# SOURCE_DATE_EPOCH (when set) fixes the Release Date, createrepo_c's revision/timestamps and
# the files' mtimes: two runs on the same packages give the same Packages and Release. What
# carries an OpenPGP signature differs between runs (a signature records its creation time):
# InRelease, Release.gpg, the signed .rpm files, and so primary.xml's package checksums.
#
# No Valid-Until in Release: the repository is signed once per release with a key kept offline
# (docs/packaging.md), so an expiry would make apt refuse a perfectly good repository until
# someone re-signs it. The cost is that a mirror can replay an old (validly signed) Release;
# set JIT_REPO_VALID_DAYS=N to add `Valid-Until` (Date + N days) when the repository is
# re-signed on a schedule.
#
# Tools: apt-ftparchive (apt-utils), gpg/gpgv (gnupg, gpgv), rpmsign/rpmkeys (rpm),
# createrepo_c (createrepo-c), dpkg-deb (dpkg), gzip.
set -euo pipefail
umask 022

PROG=repo.sh
log() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: ERROR: $*" >&2; exit 1; }
usage() {
  cat >&2 <<'EOF'
usage: packaging/repo.sh --out DIR (--key-file FILE | --key FINGERPRINT) [--gnupghome DIR]
                         [--suite stable] [--base-url URL] PACKAGES_DIR...
  --out DIR         the repository to (re)generate: DIR/apt, DIR/rpm, keys, .sources/.repo
  --key FPR         sign with this key (from --gnupghome, $GNUPGHOME or ~/.gnupg)
  --key-file FILE   sign with the secret key in FILE (imported into a temporary GNUPGHOME)
  --gnupghome DIR   the keyring holding --key
  --suite NAME      the APT suite and codename (default: stable)
  --base-url URL    where DIR is published (default: https://packages.example.invalid/jit);
                    written into jit.sources and jit.repo: set it for a real repository
  PACKAGES_DIR...   directories holding the .deb and .rpm files (e.g. target/packages)
A test key: packaging/lib/testkey.sh DIR (prints its fingerprint; DIR/key.asc for --key-file).
EOF
  exit 2
}

OUT="" KEY="" KEY_FILE="" GHOME="" SUITE=stable
DEFAULT_BASE_URL=https://packages.example.invalid/jit
BASE_URL=$DEFAULT_BASE_URL
PKG_DIRS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out|--key|--key-file|--gnupghome|--suite|--base-url)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "$PROG: $1 needs a value" >&2; usage; }
      case $1 in
        --out) OUT=$2 ;; --key) KEY=$2 ;; --key-file) KEY_FILE=$2 ;;
        --gnupghome) GHOME=$2 ;; --suite) SUITE=$2 ;; --base-url) BASE_URL=$2 ;;
      esac
      shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --key=*) KEY=${1#*=}; shift ;;
    --key-file=*) KEY_FILE=${1#*=}; shift ;;
    --gnupghome=*) GHOME=${1#*=}; shift ;;
    --suite=*) SUITE=${1#*=}; shift ;;
    --base-url=*) BASE_URL=${1#*=}; shift ;;
    -h|--help) usage ;;
    --) shift; PKG_DIRS+=("$@"); break ;;
    -*) echo "$PROG: unknown option $1" >&2; usage ;;
    *) PKG_DIRS+=("$1"); shift ;;
  esac
done
[ -n "$OUT" ] || { echo "$PROG: --out DIR is required" >&2; usage; }
[ -n "$KEY" ] || [ -n "$KEY_FILE" ] || {
  echo "$PROG: a signing key is required: --key FINGERPRINT (release key) or --key-file FILE;" \
       "for a test, make one with packaging/lib/testkey.sh DIR" >&2; usage; }
((${#PKG_DIRS[@]})) || { echo "$PROG: no PACKAGES_DIR given" >&2; usage; }
# A fingerprint as gpg prints it ("F7AD CD4F ..."): spaces dropped.
[[ $KEY =~ ^[0-9A-Fa-f\ ]+$ ]] && KEY=${KEY// /}
[[ $SUITE =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "--suite '$SUITE': letters, digits, . _ - only"
[[ $BASE_URL =~ ^[a-z][a-z0-9+.-]*://[^[:space:]]+$ ]] || die "--base-url '$BASE_URL' is not a URL (scheme://host/path)"
BASE_URL=${BASE_URL%/}
[ "$BASE_URL" = "$DEFAULT_BASE_URL" ] && \
  log "WARNING: no --base-url: jit.sources and jit.repo point at $DEFAULT_BASE_URL (set --base-url to where DIR is published)"

# --- tools --------------------------------------------------------------------------------
need() { # tool debian-package
  command -v "$1" >/dev/null || die "$1 is missing (apt-get install $2; dnf install ${3:-$2})"
}
need apt-ftparchive apt-utils apt
need gpg gnupg gnupg2
need gpgv gpgv gnupg2
need rpmsign rpm rpm-sign
need rpmkeys rpm
need rpm rpm
need createrepo_c createrepo-c createrepo_c
need dpkg-deb dpkg
need gzip gzip
need sha256sum coreutils

# --- inputs -------------------------------------------------------------------------------
# Every .deb and .rpm directly in each PACKAGES_DIR. Identity: name, version, architecture.
# Same identity twice: fine when it is the same build (a .deb: same file; an .rpm: same
# header+payload digest, so an already signed copy of the same build also matches).
declare -A DEB_AT=() DEB_ID=() RPM_AT=() RPM_ID=()
DEBS=() RPMS=()
ARCHS=()
for d in "${PKG_DIRS[@]}"; do
  [ -d "$d" ] || die "PACKAGES_DIR $d is not a directory"
  while IFS= read -r -d '' f; do
    case $f in
      *.deb)
        fields=$(dpkg-deb -f "$f" Package Version Architecture 2>/dev/null) \
          || die "$f is not a readable .deb (dpkg-deb -f failed)"
        pkg=$(sed -n 's/^Package: //p' <<<"$fields")
        ver=$(sed -n 's/^Version: //p' <<<"$fields")
        arch=$(sed -n 's/^Architecture: //p' <<<"$fields")
        [ -n "$pkg" ] && [ -n "$ver" ] && [ -n "$arch" ] || die "$f: no Package/Version/Architecture"
        id="${pkg}_${ver}_${arch}"
        sum=$(sha256sum "$f" | cut -d' ' -f1)
        if [ -n "${DEB_AT[$id]:-}" ]; then
          [ "${DEB_ID[$id]}" = "$sum" ] || die "two different builds of $pkg $ver ($arch):" \
            "${DEB_AT[$id]} and $f differ; one would silently shadow the other." \
            "Bump the version (JIT_DEB_VERSION) or drop one directory"
          continue
        fi
        DEB_AT[$id]=$f DEB_ID[$id]=$sum
        DEBS+=("$id")
        [ "$arch" = all ] || case " ${ARCHS[*]} " in *" $arch "*) ;; *) ARCHS+=("$arch") ;; esac ;;
      *.rpm)
        case $f in *.src.rpm) log "skipping source package $f"; continue ;; esac
        q=$(rpm -qp --nosignature --nodigest \
              --qf '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}\t%{PAYLOADDIGEST}\n' \
              "$f" 2>/dev/null) || die "$f is not a readable .rpm (rpm -qp failed)"
        IFS=$'\t' read -r name epoch ver rel arch hdr pay <<<"$q"
        [ -n "$name" ] && [ -n "$arch" ] || die "$f: no NAME/ARCH in the rpm header"
        id="$name-$epoch:$ver-$rel.$arch"
        sum="$hdr/$pay"
        case $hdr in ""|"(none)") sum=$(sha256sum "$f" | cut -d' ' -f1) ;; esac
        if [ -n "${RPM_AT[$id]:-}" ]; then
          [ "${RPM_ID[$id]}" = "$sum" ] || die "two different builds of $name $ver-$rel ($arch):" \
            "${RPM_AT[$id]} and $f differ; one would silently shadow the other." \
            "Bump the version or release (JIT_RPM_RELEASE) or drop one directory"
          continue
        fi
        RPM_AT[$id]=$f RPM_ID[$id]=$sum
        RPMS+=("$id") ;;
    esac
  done < <(find "$d" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.rpm' \) -print0 | LC_ALL=C sort -z)
done
((${#DEBS[@]} + ${#RPMS[@]})) || die "no .deb or .rpm files in ${PKG_DIRS[*]} (build them: bash packaging/build.sh)"
((${#DEBS[@]})) || die "no .deb files in ${PKG_DIRS[*]}: both repositories are built together"
((${#RPMS[@]})) || die "no .rpm files in ${PKG_DIRS[*]}: both repositories are built together"
((${#ARCHS[@]})) || ARCHS=(all)
mapfile -t ARCHS < <(printf '%s\n' "${ARCHS[@]}" | LC_ALL=C sort)

# --- output location ----------------------------------------------------------------------
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
OUT=${OUT%/}
[ -n "$OUT" ] && [ "$OUT" != / ] || die "--out must not be /"
MARK=.jit-repository
if [ -e "$OUT" ]; then
  [ -d "$OUT" ] || die "--out $OUT exists and is not a directory"
  if [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/$MARK" ]; then
    die "--out $OUT is not empty and not a repository written by repo.sh (no $MARK): refusing to replace it"
  fi
fi
parent=$(dirname "$OUT")
mkdir -p "$parent"
NEW=$(mktemp -d "$OUT.new.XXXXXX")
chmod 0755 "$NEW"
GTMP=""
cleanup() {
  [ -n "$NEW" ] && rm -rf "$NEW"
  if [ -n "$GTMP" ]; then
    gpgconf --homedir "$GTMP" --kill gpg-agent >/dev/null 2>&1 || true
    rm -rf "$GTMP"
  fi
}
trap cleanup EXIT

# --- signing key --------------------------------------------------------------------------
if [ -n "$KEY_FILE" ]; then
  [ -r "$KEY_FILE" ] || die "--key-file $KEY_FILE is not readable"
  GTMP=$(mktemp -d /tmp/jit-repo-gpg.XXXXXX)
  chmod 0700 "$GTMP"
  export GNUPGHOME=$GTMP
  gpg --batch --quiet --import "$KEY_FILE" 2>"$GTMP/import.log" \
    || { cat "$GTMP/import.log" >&2; die "gpg --import $KEY_FILE failed"; }
  if [ -z "$KEY" ]; then
    mapfile -t fprs < <(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '
      $1 == "sec" { want = 1; next } $1 == "ssb" { want = 0; next } $1 == "fpr" && want { print $10; want = 0 }')
    ((${#fprs[@]})) || die "--key-file $KEY_FILE holds no secret key (an exported PUBLIC key cannot sign:" \
      "gpg --export-secret-keys or --export-secret-subkeys)"
    ((${#fprs[@]} == 1)) || die "--key-file $KEY_FILE holds ${#fprs[@]} secret keys: add --key FINGERPRINT to choose"
    KEY=${fprs[0]}
  fi
elif [ -n "$GHOME" ]; then
  [ -d "$GHOME" ] || die "--gnupghome $GHOME is not a directory"
  export GNUPGHOME=$GHOME
fi
GNUPGHOME=${GNUPGHOME:-$HOME/.gnupg}
export GNUPGHOME
# Exactly one secret key must match, whose public part we publish.
mapfile -t matches < <(gpg --batch --with-colons --list-secret-keys -- "$KEY" 2>/dev/null \
  | awk -F: '$1 == "sec" { want = 1; next } $1 == "ssb" { want = 0; next } $1 == "fpr" && want { print $10; want = 0 }')
((${#matches[@]})) || die "no secret key '$KEY' in $GNUPGHOME (gpg --list-secret-keys): import it, set --gnupghome," \
  "or use --key-file; for a test key: packaging/lib/testkey.sh DIR"
((${#matches[@]} == 1)) || die "'$KEY' matches ${#matches[@]} secret keys in $GNUPGHOME: give the full fingerprint"
FPR=${matches[0]}
GPG_SIGN=(gpg --batch --yes --quiet --no-tty --local-user "$FPR" --digest-algo SHA256)
# --- public keys --------------------------------------------------------------------------
gpg --batch --export --export-options export-minimal "$FPR" > "$NEW/jit-archive-keyring.gpg"
gpg --batch --armor --export --export-options export-minimal "$FPR" > "$NEW/jit-archive-keyring.asc"
[ -s "$NEW/jit-archive-keyring.gpg" ] || die "gpg --export $FPR wrote nothing"
KEYRING=$NEW/jit-archive-keyring.gpg

# Can it sign? (expired, revoked, no signing (sub)key, secret part offline, wrong passphrase...)
probe=$(mktemp)
if ! echo "jit repo.sh signing probe" | "${GPG_SIGN[@]}" --detach-sign --output "$probe.sig" - 2>"$probe.err" \
   || ! gpgv --keyring "$KEYRING" "$probe.sig" - <<<"jit repo.sh signing probe" >/dev/null 2>&1; then
  cat "$probe.err" >&2
  rm -f "$probe" "$probe.sig" "$probe.err"
  die "key $FPR cannot make signatures (expired or revoked? no signing subkey? secret part offline" \
      "(sec#/ssb>)? passphrase?): gpg --list-secret-keys $FPR"
fi
rm -f "$probe" "$probe.sig" "$probe.err"
log "signing with $FPR (GNUPGHOME $GNUPGHOME)"

# --- mtimes and dates ---------------------------------------------------------------------
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH '$SOURCE_DATE_EPOCH' is not a number"
  EPOCH=$SOURCE_DATE_EPOCH
else
  EPOCH=$(date +%s)
fi
stamp() { touch -h -d "@$EPOCH" "$@"; }

# --- APT ----------------------------------------------------------------------------------
A=$NEW/apt
DIST=$A/dists/$SUITE
mkdir -p "$DIST/main"
pool_dir() { # package -> pool/main/<prefix>/<package>
  local p=$1 pre=${1:0:1}
  case $p in lib?*) pre=${p:0:4} ;; esac
  echo "pool/main/$pre/$p"
}
FTP_OPTS=(-o APT::FTPArchive::MD5=false -o APT::FTPArchive::SHA1=false -o APT::FTPArchive::SHA512=false
          -o APT::FTPArchive::Release::MD5=false -o APT::FTPArchive::Release::SHA1=false
          -o APT::FTPArchive::Release::SHA512=false)
declare -A POOL=()
for id in "${DEBS[@]}"; do
  IFS=_ read -r pkg ver arch <<<"$id"
  pdir=$(pool_dir "$pkg")
  mkdir -p "$A/$pdir"
  # The file name without the epoch (as Debian's archive does).
  rel="$pdir/${pkg}_${ver#*:}_${arch}.deb"
  install -m 0644 "${DEB_AT[$id]}" "$A/$rel"
  POOL[$id]=$rel
done
for arch in "${ARCHS[@]}"; do
  bdir=$DIST/main/binary-$arch
  mkdir -p "$bdir"
  : > "$bdir/Packages"
  # One stanza per package, in sorted order (not directory order): the same input gives the
  # same Packages file on any file system.
  for id in $(printf '%s\n' "${DEBS[@]}" | LC_ALL=C sort); do
    case $id in *_"$arch"|*_all) ;; *) continue ;; esac
    (cd "$A" && apt-ftparchive "${FTP_OPTS[@]}" packages "${POOL[$id]}") >> "$bdir/Packages" \
      2>"$NEW/ftparchive.log" || { cat "$NEW/ftparchive.log" >&2; die "apt-ftparchive packages ${POOL[$id]} failed"; }
  done
  grep -q '^Package: ' "$bdir/Packages" || die "apt-ftparchive wrote an empty Packages for $arch"
  gzip -9n < "$bdir/Packages" > "$bdir/Packages.gz"
done
rm -f "$NEW/ftparchive.log"
DATE=$(LC_ALL=C date -u -d "@$EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')
REL_OPTS=(-o "APT::FTPArchive::Release::Origin=jit"
          -o "APT::FTPArchive::Release::Label=jit"
          -o "APT::FTPArchive::Release::Suite=$SUITE"
          -o "APT::FTPArchive::Release::Codename=$SUITE"
          -o "APT::FTPArchive::Release::Architectures=${ARCHS[*]}"
          -o "APT::FTPArchive::Release::Components=main"
          -o "APT::FTPArchive::Release::Description=jit: just-in-time privilege elevation (jit-ca, jit, jit-host)"
          -o "APT::FTPArchive::Release::Date=$DATE")
if [ -n "${JIT_REPO_VALID_DAYS:-}" ]; then
  [[ $JIT_REPO_VALID_DAYS =~ ^[1-9][0-9]*$ ]] || die "JIT_REPO_VALID_DAYS '$JIT_REPO_VALID_DAYS' is not a number of days"
  REL_OPTS+=(-o "APT::FTPArchive::Release::Valid-Until=$(LC_ALL=C date -u -d "@$((EPOCH + JIT_REPO_VALID_DAYS * 86400))" '+%a, %d %b %Y %H:%M:%S UTC')")
fi
find "$A" -exec touch -h -d "@$EPOCH" {} +
(cd "$DIST" && apt-ftparchive "${FTP_OPTS[@]}" "${REL_OPTS[@]}" release .) > "$NEW/Release" \
  || die "apt-ftparchive release failed"
mv "$NEW/Release" "$DIST/Release"
grep -q "main/binary-${ARCHS[0]}/Packages.gz" "$DIST/Release" || die "Release does not list the Packages files"
if grep -qE '^(MD5Sum|SHA1):' "$DIST/Release"; then die "Release lists MD5/SHA1 sums (want SHA256 only)"; fi
"${GPG_SIGN[@]}" --clearsign --output "$DIST/InRelease" "$DIST/Release" || die "gpg --clearsign Release failed"
"${GPG_SIGN[@]}" --armor --detach-sign --output "$DIST/Release.gpg" "$DIST/Release" || die "gpg --detach-sign Release failed"
gpgv --keyring "$KEYRING" "$DIST/InRelease" >/dev/null 2>&1 || die "InRelease does not verify with the exported key"
gpgv --keyring "$KEYRING" "$DIST/Release.gpg" "$DIST/Release" >/dev/null 2>&1 || die "Release.gpg does not verify with the exported key"
log "apt: ${#DEBS[@]} .deb, suite $SUITE, architectures ${ARCHS[*]}"

# --- RPM ----------------------------------------------------------------------------------
R=$NEW/rpm
mkdir -p "$R"
signed=()
for id in "${RPMS[@]}"; do
  f=${RPM_AT[$id]}
  name=$(rpm -qp --nosignature --nodigest --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}' "$f")
  install -m 0644 "$f" "$R/$name.rpm"
  signed+=("$R/$name.rpm")
done
# rpm signs through gpg with the same GNUPGHOME; SHA-256 (RHEL 9 refuses SHA-1 signatures).
# __gpg: rpm's default is /usr/bin/gpg2, which Debian does not have.
if ! rpmsign --addsign \
     --define "__gpg $(command -v gpg)" --define "_gpg_name $FPR" --define "_gpg_path $GNUPGHOME" \
     --define "_gpg_digest_algo sha256" --define "_gpg_sign_cmd_extra_args --batch --no-tty" \
     "${signed[@]}" > "$NEW/rpmsign.log" 2>&1; then
  cat "$NEW/rpmsign.log" >&2; die "rpmsign --addsign failed"
fi
rm -f "$NEW/rpmsign.log"
# Check them as a client would: only our public key in a scratch rpm database.
RDB=$(mktemp -d)
rpmkeys --dbpath "$RDB" --import "$NEW/jit-archive-keyring.asc" || { rm -rf "$RDB"; die "rpmkeys --import of the public key failed"; }
for f in "${signed[@]}"; do
  out=$(rpmkeys --dbpath "$RDB" --checksig "$f" 2>&1) || { rm -rf "$RDB"; die "rpmkeys --checksig $f after signing: $out"; }
  case $out in *signatures*OK*) ;; *) rm -rf "$RDB"; die "rpmkeys --checksig $f: no signature checked ($out)" ;; esac
done
rm -rf "$RDB"
find "$R" -exec touch -h -d "@$EPOCH" {} +
if ! createrepo_c --quiet --no-database --checksum sha256 --general-compress-type gz \
     --revision "$EPOCH" --set-timestamp-to-revision "$R" > "$NEW/createrepo.log" 2>&1; then
  cat "$NEW/createrepo.log" >&2; die "createrepo_c failed"
fi
rm -f "$NEW/createrepo.log"
[ -f "$R/repodata/repomd.xml" ] || die "createrepo_c wrote no repodata/repomd.xml"
"${GPG_SIGN[@]}" --armor --detach-sign --output "$R/repodata/repomd.xml.asc" "$R/repodata/repomd.xml" \
  || die "gpg --detach-sign repomd.xml failed"
gpgv --keyring "$KEYRING" "$R/repodata/repomd.xml.asc" "$R/repodata/repomd.xml" >/dev/null 2>&1 \
  || die "repomd.xml.asc does not verify with the exported key"
log "rpm: ${#RPMS[@]} .rpm signed, repodata revision $EPOCH"

# --- snippets -----------------------------------------------------------------------------
cat > "$NEW/jit.sources" <<EOF
# jit packages: save as /etc/apt/sources.list.d/jit.sources, with the key at the Signed-By path:
#   curl -fsSLo /usr/share/keyrings/jit-archive-keyring.gpg $BASE_URL/jit-archive-keyring.gpg
# Key fingerprint: $FPR
Types: deb
URIs: $BASE_URL/apt
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/jit-archive-keyring.gpg
EOF
cat > "$NEW/jit.repo" <<EOF
# jit packages: save as /etc/yum.repos.d/jit.repo. dnf asks once to import the key below;
# accept it only if its fingerprint is $FPR
[jit]
name=jit (just-in-time privilege elevation)
baseurl=$BASE_URL/rpm
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=$BASE_URL/jit-archive-keyring.asc
EOF
echo "$FPR" > "$NEW/$MARK"
find "$NEW" -maxdepth 1 -type f -exec touch -h -d "@$EPOCH" {} +
touch -h -d "@$EPOCH" "$NEW" "$NEW/apt" "$NEW/rpm"

# --- swap in ------------------------------------------------------------------------------
if [ -e "$OUT" ]; then
  OLD=$(mktemp -d "$OUT.old.XXXXXX")
  rmdir "$OLD"
  mv "$OUT" "$OLD"
  mv "$NEW" "$OUT"
  rm -rf "$OLD"
else
  mv "$NEW" "$OUT"
fi
NEW=""
log "wrote $OUT (apt/, rpm/, jit-archive-keyring.{gpg,asc}, jit.sources, jit.repo), key $FPR"
