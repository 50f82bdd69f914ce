//! Policy conditions through the real client against a real `jit-ca serve` (real clock):
//! `jit roles` shows schedules, reason rules and auto-approval conditions; refusals of the
//! reason pattern and the schedule arrive with their exact messages; `jit show` prints the
//! ticket.

use jit_api::wire::RequestView;
use jit_test_kit::running::*;

/// A schedule that is closed now: one hour starting two hours from now (UTC), and when
/// it next opens, as the CA names it.
fn closed_window() -> (String, String) {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let start = (now.hour() + 2) % 24;
    let end = (start + 1) % 24;
    let hours = format!("{start:02}:00-{end:02}:00");
    let mut opens = now
        .with()
        .hour(start)
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap();
    if opens <= now {
        opens = opens.tomorrow().unwrap();
    }
    let local = format!("{} (UTC)", opens.strftime("%a %Y-%m-%d %H:%M %:z"));
    (hours, local)
}

#[test]
fn roles_refusals_and_show_carry_the_policy_conditions() {
    let (hours, next) = closed_window();
    let policy = format!(
        r#"
[roles.db-admin]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
reason_pattern = '^(INC|CHG)-[0-9]+'
reason_help = "Start the reason with the ticket, e.g. INC-123 disk full"

[[roles.db-admin.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
max_duration = "15m"
hosts = ["db-1"]
schedule = [{{ days = ["sat", "sun"], tz = "Europe/Berlin" }}]
ticket_pattern = '^INC-'

[roles.later]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
schedule = [{{ hours = "{hours}", tz = "UTC" }}]
"#
    );
    let ca = Ca::start_with(|data| {
        std::fs::write(data.join("policy.toml"), &policy).unwrap();
        String::new()
    });
    let alice = ca.user("alice", &["dev", "oncall"]);
    ca.user("bob", &["dba"]);

    let (code, stdout, err) = out(ca.jit(&alice).arg("roles"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        format!(
            "db-admin\n  hosts:        db-*\n  principals:   alice\n  sudo:         yes\n  \
             max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  \
             reason:       must match ^(INC|CHG)-[0-9]+ (Start the reason with the ticket, e.g. \
             INC-123 disk full)\n  \
             auto-approve: auto:oncall (up to 15m; hosts db-1; when sat,sun all day \
             Europe/Berlin; ticket matching ^INC-)\n\n\
             later\n  hosts:        web-*\n  principals:   alice\n  sudo:         no\n  \
             max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  \
             schedule:     every day {hours} UTC\n  \
             reason:       optional\n  auto-approve: no\n"
        )
    );

    let request = |role: &str, reason: &str| {
        out(ca.jit(&alice).args([
            "request",
            role,
            "--duration",
            "10m",
            "--reason",
            reason,
            "--no-wait",
        ]))
    };
    let (code, _, err) = request("db-admin", "disk full");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "jit: server refused (reason_pattern_mismatch, HTTP 400): Start the reason with the \
         ticket, e.g. INC-123 disk full (role \"db-admin\" needs a reason matching \
         ^(INC|CHG)-[0-9]+ (--reason TEXT))\n"
    );
    let (code, _, err) = request("later", "x");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (outside_schedule, HTTP 403): role \"later\" may be requested \
             only every day {hours} UTC; the next window starts {next}\n"
        )
    );

    // A matching reason: the ticket is its own field, shown by jit show.
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "10m",
        "--reason",
        "CHG-77 rotate keys",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(r.ticket.as_deref(), Some("CHG-77"));
    let (code, human, _) = out(ca.jit(&alice).args(["show", &r.id]));
    assert_eq!(code, 0);
    assert!(
        human.contains("\nreason:     CHG-77 rotate keys\nticket:     CHG-77\nduration:   10m\n"),
        "{human}"
    );
}
