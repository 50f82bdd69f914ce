# jit-host %preun: on erase ($1 = 0), take pam_jit.so out of every PAM stack BEFORE the
# module leaves the disk (a stack naming a missing module denies everyone), and stop the timer.
pam_users() {
    grep -ls '^[^#]*pam_jit\.so' /etc/pam.d/* 2>/dev/null \
        | grep -v -e '\.rpmsave$' -e '\.rpmnew$' -e '\.jit-orig$' || :
}
# /etc/pam.d/sshd when it names pam_jit on a line that is not right after jit-host setup's
# marker (a line setup did not write, which --undo would leave behind).
sshd_foreign() {
    [ -f /etc/pam.d/sshd ] || return 0
    if awk -v m="# jit: added by jit-host setup; undo with: jit-host setup --session --undo" '
        { sub(/\r$/, "") }
        /^[^#]*pam_jit/ && prev != m { bad = 1 }
        { prev = $0 }
        END { exit !bad }' /etc/pam.d/sshd; then
        echo /etc/pam.d/sshd
    fi
}
if [ "$1" -eq 0 ]; then
    # Lines `jit-host setup` did not write: refuse before changing anything.
    left=$(pam_users | grep -v -x -e /etc/pam.d/sudo -e /etc/pam.d/sudo-i -e /etc/pam.d/sshd || :)
    left="$left $(sshd_foreign)"
    if [ -n "${left# }" ]; then
        echo "jit-host: refusing to remove pam_jit.so: still used by:" $left >&2
        echo "jit-host: delete the pam_jit.so line(s) there, then remove the package again." >&2
        exit 1
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now jit-host-sync.timer jit-host-sync.service jit-host-gc.timer jit-host-gc.service >/dev/null 2>&1 || :
    elif command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload disable jit-host-sync.timer jit-host-gc.timer >/dev/null 2>&1 || :
    fi
    if command -v jit-host >/dev/null 2>&1; then
        # --sshd --undo also removes the session line from /etc/pam.d/sshd.
        jit-host setup --sudo --sshd --undo || \
            echo "jit-host: 'jit-host setup --sudo --sshd --undo' failed; see above." >&2
    fi
    left=$(pam_users)
    if [ -n "$left" ]; then
        echo "jit-host: refusing to remove pam_jit.so: still used by:" $left >&2
        echo "jit-host: delete the pam_jit.so line(s) there, then remove the package again." >&2
        exit 1
    fi
    if grep -qs '/usr/sbin/jit-host\|/var/lib/jit/' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; then
        echo "jit-host: warning: sshd configuration still refers to jit-host or /var/lib/jit." >&2
    fi
fi
exit 0
