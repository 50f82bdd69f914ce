# jit-host %pre: the `jit` system user (sshd runs `jit-host principals` as it).
getent group jit >/dev/null || groupadd -r jit
getent passwd jit >/dev/null || \
    useradd -r -g jit -d /var/lib/jit -M -s /sbin/nologin -c "jit sshd principals hook" jit
exit 0
