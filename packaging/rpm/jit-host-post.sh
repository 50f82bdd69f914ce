# jit-host %post: /etc/jit and the grant store. Nothing here touches /etc/pam.d (sudo owns
# it): `jit-host setup --sudo` is the administrator's step once /etc/jit/host.toml exists.
[ -d /etc/jit ] || install -d -o root -g root -m 0755 /etc/jit
[ -d /var/lib/jit ] || install -d -o root -g root -m 0755 /var/lib/jit
[ -d /var/lib/jit/grants ] || install -d -o jit -g jit -m 0755 /var/lib/jit/grants
# The bindings of session-bound grants (tmpfiles.d/jit-host-sync.conf): root only, 0700.
if command -v systemd-tmpfiles >/dev/null 2>&1; then systemd-tmpfiles --create jit-host-sync.conf >/dev/null 2>&1 || :; fi
# The sync timer brings the revocation list every decision needs: enabled (and started when
# systemd runs). The service does nothing until /etc/jit/host.toml exists. The gc timer
# (hourly: expired grants, stale session bindings) likewise.
if command -v systemctl >/dev/null 2>&1; then systemctl enable jit-host-sync.timer jit-host-gc.timer >/dev/null 2>&1 || :; fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl start jit-host-sync.timer jit-host-gc.timer >/dev/null 2>&1 || :
fi
exit 0
