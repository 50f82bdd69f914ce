use super::authorize::{Outcome, interpret};
use super::*;
use crate::policy::Policy;

const ROLE: &str = r#"
[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
[[roles.quick.auto_approve_rules]]
name = "pager"
groups = ["oncall"]
max_duration = "15m"
webhook = "oncall"
"#;

fn hook(body: &str) -> String {
    format!("[[webhook]]\n{body}\n{ROLE}")
}

#[test]
fn a_webhook_is_parsed_with_its_defaults() {
    let p = Policy::parse(&hook(
        "name = \"oncall\"\nurl = \"https://oncall.example.com/a\"\nsecret_file = \"webhooks/oncall.whsec\"",
    ))
    .unwrap();
    let w = &p.webhooks["oncall"];
    assert_eq!(w.url, "https://oncall.example.com/a");
    assert_eq!(w.secret_file, PathBuf::from("webhooks/oncall.whsec"));
    assert_eq!(w.timeout_secs, 5);
    assert_eq!(w.ca_file, None);
    assert_eq!(w.loaded, None);
    let rule = &p.role("quick").unwrap().auto_approve_rules[0];
    assert_eq!(rule.webhook.as_deref(), Some("oncall"));
}

#[test]
fn every_webhook_problem_is_named() {
    let errs = Policy::parse(&hook(
        "name = \"oncall\"\nurl = \"http://oncall.example.com/a\"\nsecret = \"whsec_x\"\ntimeout = \"30s\"",
    ))
    .unwrap_err();
    assert_eq!(
        errs,
        [
            "webhook.oncall.url: \"http://oncall.example.com/…\": plain http is accepted only to the loopback interface (a local relay); use https://",
            "webhook.oncall.secret: a secret is not accepted inline: policy.toml is not a secret file (it is readable, reviewed and copied into backups); write the secret to a file of mode 0600 in the data directory and name it: secret_file = \"webhooks/oncall.whsec\"",
            "webhook.oncall.timeout: 30s is out of range; use 1s to 10s (a request's creation waits for the answer)",
            "roles.quick.auto_approve_rules[0].webhook: rule \"pager\" names webhook \"oncall\", which is not defined; define it with a [[webhook]] table (name, url, secret_file) (none is defined)",
        ]
    );
    let errs = Policy::parse(&hook("url = \"https://a.example\"")).unwrap_err();
    assert_eq!(
        errs[0],
        "webhook[0].name: is required (e.g. name = \"oncall\")"
    );
    assert_eq!(
        errs[1],
        "webhook[0].secret_file: is required: the file (mode 0600, in the data directory) holding the signing secret, e.g. secret_file = \"webhooks/.whsec\""
    );
    let two = "name = \"oncall\"\nurl = \"https://a.example\"\nsecret_file = \"s\"\n[[webhook]]\nname = \"oncall\"\nurl = \"https://b.example\"\nsecret_file = \"t\"";
    let errs = Policy::parse(&hook(two)).unwrap_err();
    assert_eq!(
        errs,
        ["webhook.oncall.name: is defined twice; give each webhook its own name"]
    );
    let errs = Policy::parse(&format!(
        "[[webhook]]\nname = \"other\"\nurl = \"https://a.example\"\nsecret_file = \"s\"\n{ROLE}"
    ))
    .unwrap_err();
    assert!(errs[0].ends_with("(defined: \"other\")"), "{errs:?}");
    let errs = Policy::parse(
        &hook("name = \"oncall\"\nurl = \"https://a.example\"\nsecret_file = \"s\"").replace(
            "max_duration = \"1h\"\n",
            "max_duration = \"1h\"\nauto_approve = true\n",
        ),
    )
    .unwrap_err();
    assert_eq!(
        errs,
        [
            "roles.quick.auto_approve_rules[0].webhook: auto_approve = true approves every request at once, so webhook \"oncall\" would never be asked; remove auto_approve to let rule \"pager\" decide with its webhook"
        ]
    );
    // Unknown keys are errors, like everywhere in policy.toml.
    assert!(Policy::parse(&hook("name = \"oncall\"\ncolour = 1")).is_err());
}

#[test]
fn urls_are_https_or_loopback_without_credentials() {
    for ok in [
        "https://oncall.example.com/jit?x=1",
        "https://oncall.example.com:8443/",
        "http://127.0.0.1:8080/a",
        "http://localhost/a",
        "http://[::1]:9/a",
    ] {
        assert_eq!(check_url(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "is required"),
        ("ftp://x", "must start with https://"),
        ("https://", "names no host"),
        ("https://u:p@x.example/", "must not carry credentials"),
        ("https://x.example/a b", "must not contain spaces"),
        (
            "http://10.0.0.1/",
            "plain http is accepted only to the loopback",
        ),
        (
            "http://127.0.0.1.example.com/",
            "plain http is accepted only",
        ),
    ] {
        let e = check_url(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn only_200_with_approve_true_approves() {
    let reason = |s: &str| Some(s.to_string());
    assert_eq!(
        interpret(200, br#"{"approve": true}"#),
        Outcome::Approve { reason: None }
    );
    assert_eq!(
        interpret(200, br#"{"approve": true, "reason": "ok", "extra": 1}"#),
        Outcome::Approve {
            reason: reason("ok")
        }
    );
    assert_eq!(
        interpret(200, br#"{"approve": false, "reason": "no\nway"}"#),
        Outcome::Deny {
            reason: reason("no\\x0away")
        }
    );
    let kind = |o: Outcome| match o {
        Outcome::Error { kind, status, .. } => (kind, status),
        other => panic!("{other:?}"),
    };
    assert_eq!(kind(interpret(204, b"")), ("status", Some(204)));
    assert_eq!(
        kind(interpret(500, br#"{"approve": true}"#)),
        ("status", Some(500))
    );
    assert_eq!(kind(interpret(307, b"")), ("redirect", Some(307)));
    assert_eq!(kind(interpret(200, b"")), ("bad_json", Some(200)));
    assert_eq!(
        kind(interpret(200, br#"{"approve": null}"#)),
        ("bad_answer", Some(200))
    );
    assert_eq!(kind(interpret(200, br#"{}"#)), ("bad_answer", Some(200)));
}

#[test]
fn load_files_reads_the_secret_and_refuses_bad_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Policy::parse(&hook(
        "name = \"oncall\"\nurl = \"https://a.example\"\nsecret_file = \"oncall.whsec\"",
    ))
    .unwrap();
    let file = dir.path().join("oncall.whsec");
    let errs = p.load_webhook_files(dir.path()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("webhook.oncall.secret_file: "),
        "{errs:?}"
    );
    std::fs::write(&file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let errs = p.load_webhook_files(dir.path()).unwrap_err();
    assert!(
        errs[0]
            .contains("webhook secret has mode 0644; it must not be readable by group or others"),
        "{errs:?}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.load_webhook_files(dir.path()).unwrap();
    assert!(p.webhooks["oncall"].loaded.is_some());
    std::fs::write(&file, "not a secret").unwrap();
    let errs = p.load_webhook_files(dir.path()).unwrap_err();
    assert!(
        errs[0].ends_with("a webhook secret is written whsec_<base64> on one line; generate one with: printf 'whsec_%s\\n' \"$(openssl rand -base64 32)\""),
        "{errs:?}"
    );
    assert!(p.webhooks["oncall"].loaded.is_none());
}

#[test]
fn a_key_given_twice_is_an_error_never_the_last_one() {
    let err = |body: &[u8]| match interpret(200, body) {
        Outcome::Error { kind, detail, .. } => (kind, detail),
        other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
    };
    // A JSON value keeps the last key: this approved.
    let (kind, detail) = err(br#"{"approve":false,"approve":true}"#);
    assert_eq!(kind, "bad_answer");
    assert!(
        detail.starts_with("the answer is ambiguous: duplicate field `approve`"),
        "{detail}"
    );
    assert_eq!(err(br#"{"approve":true,"approve":true}"#).0, "bad_answer");
    assert_eq!(
        err(br#"{"approve":true,"reason":"a","reason":"b"}"#).0,
        "bad_answer"
    );
    // Other keys are still ignored, even nested or repeated ones; approve stays strictly bool.
    assert_eq!(
        interpret(200, br#"{"x":1,"x":2,"y":{"a":1,"a":2},"approve":false}"#),
        Outcome::Deny { reason: None }
    );
    assert_eq!(
        err(br#"{"approve":"true"}"#),
        ("bad_answer", "\"approve\" is not true or false".to_string())
    );
    assert_eq!(
        err(br#"{"approve":null}"#),
        ("bad_answer", "\"approve\" is not true or false".to_string())
    );
    assert_eq!(
        err(br#"{"reason":"x"}"#),
        ("bad_answer", "the answer has no \"approve\"".to_string())
    );
    assert_eq!(
        interpret(200, br#"{"approve":true,"reason":null}"#),
        Outcome::Approve { reason: None }
    );
}

#[test]
fn a_failed_call_never_describes_itself_with_the_url() {
    use super::client::{FailKind, Target, post};
    // Nothing listens on port 1; ureq writes URLs normalised (`http://h/?q`, lower-case
    // host), so cutting the URL as written out of its text would miss it.
    for url in [
        "http://127.0.0.1:1?token=SECRET",
        "http://LOCALHOST:1/hook?token=SECRET",
        "http://127.0.0.1:1/a/SECRET/b",
    ] {
        let target = Target {
            url,
            timeout: std::time::Duration::from_secs(2),
            ca_pem: None,
            max_body: 100,
        };
        let f = post(&target, &[], b"{}").unwrap_err();
        assert_eq!(f.kind, FailKind::Connect, "{url}: {f:?}");
        assert!(!f.detail.contains("SECRET"), "{url}: {}", f.detail);
        assert!(
            !f.detail.to_lowercase().contains("localhost"),
            "{url}: {}",
            f.detail
        );
        assert!(
            f.detail.starts_with("Connection Failed"),
            "{url}: {}",
            f.detail
        );
    }
}

#[test]
fn the_secret_and_ca_files_are_read_only_under_trusted_directories() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let file = elsewhere.join("oncall.whsec");
    std::fs::write(&file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // webhooks/ is a symbolic link: whoever controls where it points could swap the file.
    std::os::unix::fs::symlink(&elsewhere, dir.join("webhooks")).unwrap();
    let mut p = Policy::parse(&hook(
        "name = \"oncall\"\nurl = \"https://a.example\"\nsecret_file = \"webhooks/oncall.whsec\"",
    ))
    .unwrap();
    let errs = p.load_webhook_files(&dir).unwrap_err();
    let link = dir.join("webhooks");
    assert_eq!(
        errs,
        [format!(
            "webhook.oncall.secret_file: {}: {} is a symbolic link; refusing to follow it",
            link.join("oncall.whsec").display(),
            link.display()
        )]
    );
    assert!(p.webhooks["oncall"].loaded.is_none());
    // The same file through a real directory is read; a directory others may write is not.
    std::fs::remove_file(&link).unwrap();
    std::fs::rename(&elsewhere, &link).unwrap();
    p.load_webhook_files(&dir).unwrap();
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o777)).unwrap();
    let errs = p.load_webhook_files(&dir).unwrap_err();
    assert!(
        errs[0].ends_with(&format!(
            "{} has mode 0777: writable by group or others (chmod go-w {})",
            link.display(),
            link.display()
        )),
        "{errs:?}"
    );
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A relative data directory is checked from / too (made absolute without resolving
    // links); whether the test's working directory passes depends on where it runs, so
    // only "not absolute" is ruled out here.
    let cwd = std::env::current_dir().unwrap();
    let rel = pathdiff(&dir, &cwd);
    if let Err(errs) = p.load_webhook_files(&rel) {
        assert!(!errs[0].contains("must be absolute"), "{errs:?}");
    }
    // ca_file too.
    let mut p = Policy::parse(&hook(
        "name = \"oncall\"\nurl = \"https://a.example\"\nsecret_file = \"webhooks/oncall.whsec\"\nca_file = \"ca/ca.pem\"",
    ))
    .unwrap();
    std::fs::create_dir(tmp.path().join("pem")).unwrap();
    std::fs::write(tmp.path().join("pem/ca.pem"), "x").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("pem"), dir.join("ca")).unwrap();
    let errs = p.load_webhook_files(&dir).unwrap_err();
    assert_eq!(
        errs,
        [format!(
            "webhook.oncall.ca_file: {}: {} is a symbolic link; refusing to follow it",
            dir.join("ca/ca.pem").display(),
            dir.join("ca").display()
        )]
    );
}

/// `path` relative to `base` (both absolute), with `..` steps.
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> PathBuf {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}
