# jit-ca %pre: the static system user the service runs as.
getent group jit-ca >/dev/null || groupadd -r jit-ca
getent passwd jit-ca >/dev/null || \
    useradd -r -g jit-ca -d /var/lib/jit-ca -M -s /sbin/nologin -c "jit signing service" jit-ca
exit 0
