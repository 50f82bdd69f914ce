//! `policy.toml` as `jit-ca` parses it (`jit_ca::policy::Policy::parse`, also used by
//! `jit-ca policy check` and SIGHUP reload). Invariants on what parses: every role needs at
//! least one approval, has hosts and a positive max duration, and its names are valid.
#![no_main]

use jit_ca::policy::{AutoInput, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(text) {
        Ok(p) => p,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal must say why");
            return;
        }
    };
    let groups = vec!["dev".to_string(), "dba".to_string()];
    for (name, role) in &policy.roles {
        assert_eq!(name, &role.name);
        assert!(role.approvals >= 1, "role {name} needs zero approvals");
        assert!(
            role.max_duration_secs > 0,
            "role {name} has a zero max duration"
        );
        for h in &role.hosts {
            assert!(
                jit_common::host::validate_selector(h).is_ok(),
                "bad selector {h:?}"
            );
        }
        let _ = role.may_request("alice", &groups);
        let _ = role.may_approve("bob", &groups);
        // No auto-approval rule approves a window longer than the role allows (a rule's
        // max_duration is at most the role's); only `auto_approve = true` approves anything.
        let decision = role.auto_decision(&AutoInput {
            user: "alice",
            groups: &groups,
            duration_secs: u64::MAX,
            hosts: &role.hosts,
            ticket: Some("INC-1"),
            at: 1_795_435_200,
            starts_at: 1_795_435_200,
            asks_webhooks: true,
        });
        assert!(
            role.auto_approve || decision.approved.is_none(),
            "role {name}: a rule approved an unbounded window"
        );
        let _ = role.covers_host("db-1");
        let _ = role.covers_host("*");
        assert!(policy.role(name).is_some());
    }
    let _ = policy.warnings(&["alice".into()], &groups);
});
