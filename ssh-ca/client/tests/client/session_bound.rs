//! Issue 14 (client side): a session-bound role says so in `jit roles`, `jit show` and
//! `jit status`; `jit request`/`jit login` print the one line that says where sudo works, and
//! `jit extend` says that the new certificate needs a new SSH connection.

use jit_api::wire::RequestList;
use jit_test_kit::running::*;

const POLICY: &str = r#"
[roles.bound]
hosts = ["db-*"]
sudo = true
session_bound = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
auto_approve = true
"#;

const LINE: &str = "Session-bound: sudo on these hosts works only inside SSH connections made \
                    with this certificate, until they close.\n";

#[test]
fn a_session_bound_grant_says_where_sudo_works() {
    let ca = Ca::start_with(|data| {
        std::fs::write(data.join("policy.toml"), POLICY).unwrap();
        String::new()
    });
    let alice = ca.user("alice", &["dev"]);
    let (code, stdout, err) = out(ca.jit(&alice).arg("roles"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        "bound\n  hosts:        db-*\n  principals:   alice\n  sudo:         yes\n  \
         session:      bound: sudo only inside the SSH connection made with the certificate, \
         until it closes\n  \
         max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  reason:       \
         optional\n  auto-approve: auto:bound (up to 1h)\n"
    );
    // Approved at once: the certificate is installed and the line printed last.
    let (code, stdout, err) =
        out(ca
            .jit(&alice)
            .args(["request", "bound", "--duration", "10m", "--reason", "x"]));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.ends_with(LINE), "{stdout}");
    assert_eq!(stdout.matches("Session-bound").count(), 1, "{stdout}");
    let mine: RequestList = json(ca.jit(&alice).args(["list", "--mine", "--json"]));
    let id = mine.requests[0].id.clone();
    assert!(mine.requests[0].session_bound);
    let (code, stdout, err) = out(ca.jit(&alice).args(["login", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.ends_with(LINE), "{stdout}");
    let (code, stdout, _) = out(ca.jit(&alice).args(["show", &id]));
    assert_eq!(code, 0);
    assert!(
        stdout.contains(
            "\nsession:    bound: sudo only inside SSH connections made with its certificate, \
             until they close\n"
        ),
        "{stdout}"
    );
    let (code, stdout, _) = out(ca.jit(&alice).arg("status"));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("ID") && stdout.contains("SESSION") && stdout.contains("  bound  "),
        "{stdout}"
    );
    // An extension is a new grant in a new certificate: a new SSH connection is needed.
    let (code, _, err) = out(ca.jit(&alice).args(["extend", &id, "--duration", "5m"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "jit: {id} is session-bound: sudo on these hosts works only inside SSH connections \
             made with the new certificate, until they close; connections made with the \
             previous one no longer have sudo: log in again (ssh)\n"
        )),
        "{err}"
    );
}
