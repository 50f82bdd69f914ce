#!/usr/bin/env bash
# Installs, idempotently, everything the tests need on a fresh Debian 12 machine:
# the real programs the system tests drive, and the cargo tools. Safe to re-run.
set -euo pipefail

APT_PACKAGES=(
  openssh-server openssh-client   # real sshd/ssh/ssh-keygen for certificate tests
  sudo                            # real C sudo
  pamtester libpam-wrapper        # drive pam_jit.so through libpam without touching /etc
  libpam0g-dev                    # link -lpam
  libpam-runtime                  # pam-auth-update
  rsyslog                         # a syslog daemon so tests can read what was logged
  util-linux iproute2 procps      # unshare, setpriv, script, ip
  lintian rpm rpmlint dpkg-dev fakeroot   # packaging checks
  binutils file cpio adduser              # packaging: strip/nm, file, rpm2cpio extraction, system users
  dnf sqlite3                             # packaging/upgrade-test.sh: dnf upgrade in an overlay root, a newer-schema database
  systemd                         # systemd-analyze security --offline
  curl jq                         # API smoke checks in shell tests; jq: packaging/sbom.sh, meta-test.sh
  python3                         # packaging/meta-test.sh: inflates the cargo-auditable list (zlib)
  openssl                         # self-signed certificate for the jit-ca TLS test
  wrk                             # HTTP load for the fleet-sync benchmark (bench/run.sh)
  groff-base man-db               # man pages: groff -man -ww, man -l (tests/system/42-man-pages.sh)
  tmux                            # a pane left behind in an SSH session (tests/system/43-session-binding.sh)
  prometheus                      # promtool: the alerting rules' tests, the host metrics file's format
  mtail                           # runs packaging/prometheus/pam_jit.mtail (tests/mtail.sh, 30-pam-module)
  chromium fonts-dejavu-core      # Debian's headless browser for the web page's tests (tests/kit/src/cdp/), a font for its screenshots
  postgresql-15 postgresql-client-15  # PostgreSQL replica tests (tests/lib/pg.sh: initdb/pg_ctl as nobody), psql
  apt-utils createrepo-c gnupg gpgv dnf  # signed repositories: apt-ftparchive, createrepo_c, gpg; dnf as a client (packaging/repo.sh, repo-test.sh)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Do not let package scripts start daemons on the host (sshd, rsyslog): tests start their own.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
  fi
  # PostgreSQL: no default cluster (the tests start their own, tests/lib/pg.sh). Only when
  # this run installs the server, so a machine's own configuration is never touched.
  pg_conf=/etc/postgresql-common/createcluster.d/jit-tests.conf
  for p in "${missing[@]}"; do
    if [ "$p" = postgresql-15 ] && [ ! -e "$pg_conf" ]; then
      mkdir -p "$(dirname "$pg_conf")"
      echo 'create_main_cluster = false' > "$pg_conf"
    fi
  done
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi
# Only promtool is wanted from the prometheus package: its postinst enables the server (the
# policy above kept it from starting). When THIS run installed it, make sure that server
# neither runs now nor after a reboot. A prometheus package that was already installed is
# the machine's own (a developer's or a runner's real Prometheus): never touched.
installed_now() { # PACKAGE: whether this run installed it
  local p
  for p in "${missing[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}
if installed_now prometheus; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    # No systemd running (a container): disable works offline; stop the SysV service if up.
    systemctl disable prometheus.service >/dev/null 2>&1 || true
    service prometheus status >/dev/null 2>&1 && service prometheus stop >/dev/null 2>&1 || true
  fi
fi
# mtail's service runs only once /etc/default/mtail sets LOGS (ExecCondition), which the
# package leaves unset: nothing to stop.
ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
  { echo "install-deps: PostgreSQL's initdb missing after installing postgresql-15" >&2; exit 1; }
for tool in promtool mtail; do
  command -v "$tool" >/dev/null || { echo "install-deps: $tool missing after installing its package" >&2; exit 1; }
done

export PATH="$HOME/.cargo/bin:$PATH"
# Test-only tools go under their own root so they never shadow the host's programs
# (sudo-rs installs a binary named `sudo`).
TOOLS_ROOT=${JIT_TEST_TOOLS:-/opt/jit-test-tools}
cargo_tool() { # crate version binary
  local crate=$1 version=$2 bin=$3
  if [ ! -x "$TOOLS_ROOT/bin/$bin" ]; then
    echo "install-deps: cargo install $crate@$version (into $TOOLS_ROOT)"
    cargo install --locked --quiet --root "$TOOLS_ROOT" "$crate@$version"
  fi
}
cargo_tool sudo-rs 0.2.15 sudo
# cargo-fuzz runs fuzz/smoke.sh with the nightly toolchain the machine image ships beside
# stable. It is a cargo subcommand, so it goes where cargo finds it (~/.cargo/bin).
if ! command -v cargo-fuzz >/dev/null; then
  echo "install-deps: cargo install cargo-fuzz@0.13.2"
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi
# Dependency checks (tests/deps.sh): cargo subcommands, so also in ~/.cargo/bin. Pinned; both
# build with the stable toolchain (cargo-deny needs rustc >= 1.88).
cargo_subcommand() { # crate version
  local crate=$1 version=$2
  if ! "$crate" --version 2>/dev/null | grep -qF "$version"; then
    echo "install-deps: cargo install $crate@$version"
    cargo install --locked --quiet "$crate@$version"
  fi
}
cargo_subcommand cargo-deny 0.20.2
cargo_subcommand cargo-machete 0.9.2
# Release builds (packaging/release-env.sh: `cargo auditable build`) embed the dependency list.
# `cargo-auditable --version` names no version: cargo's install list does.
if ! cargo install --list | grep -qxF 'cargo-auditable v0.7.7:'; then
  echo "install-deps: cargo install cargo-auditable@0.7.7"
  cargo install --locked --quiet --force cargo-auditable@0.7.7
fi
