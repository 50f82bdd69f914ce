//! docs/notify.md is part of the contract: every event type is documented with an example
//! payload that this build reads back (strictly: an unknown or missing field fails), the
//! first payload is the one `Event::payload` makes, and the signature shown is the one the
//! CA computes.

use super::event::{Event, Kind, tests::approved};
use crate::webhook::Secret;

const NOTIFY_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/notify.md"));

/// The ```json blocks of the page, each with the nearest `### ` heading above it.
fn json_blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in NOTIFY_MD.lines() {
        match &mut block {
            Some(b) if line == "```" => {
                out.push((heading.clone(), std::mem::take(b)));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None if line == "```json" => block = Some(String::new()),
            None => {
                if let Some(h) = line.strip_prefix("### ") {
                    heading = h.trim_matches('`').to_string();
                }
            }
        }
    }
    out
}

#[test]
fn every_event_type_is_in_docs_notify_md_with_an_example() {
    let missing: Vec<_> = Kind::ALL
        .iter()
        .filter(|k| !NOTIFY_MD.contains(&format!("### `{}`", k.as_str())))
        .map(|k| k.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/notify.md has no section for these event types: {missing:?}"
    );
    let blocks = json_blocks();
    let mut shown = vec![Kind::RequestApproved];
    for (i, (heading, text)) in blocks.iter().enumerate() {
        let e = Event::from_payload(text.as_bytes())
            .unwrap_or_else(|err| panic!("docs/notify.md json block {i} ({heading}): {err}"));
        // Strictly: every field documented is one the CA sends, and none is missing.
        let documented: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            documented,
            "docs/notify.md json block {i} ({heading}) is not what the CA sends"
        );
        if i == 0 {
            // The payload at the top is the one this build makes.
            assert_eq!(e, approved());
            continue;
        }
        assert_eq!(
            e.kind.as_str(),
            heading,
            "block {i} is under another heading"
        );
        assert_eq!(e.timestamp, super::event::rfc3339(e.time), "block {i}");
        assert_eq!(e.kind.is_alert(), e.data.alert.is_some(), "block {i}");
        assert_eq!(
            e.kind == Kind::RequestExpired,
            e.data
                .request
                .as_ref()
                .is_some_and(|r| r.previous_state.is_some()),
            "block {i}: previous_state is on request.expired only"
        );
        shown.push(e.kind);
    }
    let without: Vec<_> = Kind::ALL
        .iter()
        .filter(|k| !shown.contains(k))
        .map(|k| k.as_str())
        .collect();
    assert!(without.is_empty(), "no example payload for {without:?}");
}

#[test]
fn the_documented_signature_is_the_cas() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let e = approved();
    let [(_, id), (_, ts), (_, sig)] = secret.headers(&e.id, 1_795_992_007, &e.payload());
    for line in [
        format!("webhook-id: {id}"),
        format!("webhook-timestamp: {ts}"),
        format!("webhook-signature: {sig}"),
    ] {
        assert!(NOTIFY_MD.contains(&line), "docs/notify.md lacks {line:?}");
    }
}

/// The README's "Tell people" configuration is valid as written.
#[test]
fn the_readme_sinks_parse() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme
        .split("## Tell people")
        .nth(1)
        .expect("README.md has a \"Tell people\" section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a toml block");
    let sinks = super::config::parse(toml).unwrap();
    let names: Vec<_> = sinks
        .iter()
        .map(|s| (s.name.as_str(), s.format.as_str()))
        .collect();
    assert_eq!(names, [("chat", "slack"), ("siem", "standard")]);
}

/// R1 N3: every documented command that writes a secret file does so under `umask 077`
/// (a `printf > file` then `chmod 600` leaves it readable by everyone in between).
#[test]
fn documented_secret_files_are_created_private() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let mut seen = 0;
    for line in readme.lines().chain(NOTIFY_MD.lines()) {
        if line.contains("whsec_%s") {
            seen += 1;
            assert!(line.contains("(umask 077; printf"), "{line}");
        }
    }
    assert!(
        seen >= 2,
        "the README and docs/notify.md show how to make a secret"
    );
}
