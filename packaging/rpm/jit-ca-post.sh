# jit-ca %post: state directory (also created by StateDirectory=), reload units. The service
# is not enabled: write policy.toml first, then `systemctl enable --now jit-ca`.
[ -d /var/lib/jit-ca ] || install -d -o jit-ca -g jit-ca -m 0700 /var/lib/jit-ca
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
exit 0
