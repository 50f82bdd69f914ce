# jit-ca %postun: reload units; on upgrade ($1 >= 1) restart a running service.
# /var/lib/jit-ca (keys, database, audit trail) is kept on erase, as RPM packages do.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then systemctl try-restart jit-ca.service >/dev/null 2>&1 || :; fi
fi
exit 0
