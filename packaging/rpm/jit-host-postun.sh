# jit-host %postun: reload units. /etc/jit and /var/lib/jit are kept on erase, as RPM
# packages do; delete them by hand when the host leaves the fleet.
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
exit 0
