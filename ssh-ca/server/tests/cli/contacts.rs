//! Contacts (issue 15): `jit-ca user add --contact`, `jit-ca user set-contact NAME
//! HANDLE|--clear`, shown by `user list` (and `--json`), audited, carried by notifications.

use std::process::{Command, Output};

use jit_test_kit::harness::*;
use serde_json::Value;

fn jit_ca(args: &[&str]) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn contact_of(d: &str, user: &str) -> Value {
    let o = jit_ca(&["user", "list", "--dir", d, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let users: Value = serde_json::from_slice(&o.stdout).unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user)
        .unwrap()["contact"]
        .clone()
}

#[test]
fn contacts_are_set_shown_cleared_checked_and_audited() {
    let (tmp, _) = setup_dir(POLICY);
    let d = data_dir(&tmp);
    let d = d.to_str().unwrap();
    let key =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let pub_path = write(
        tmp.path(),
        "frank.pub",
        key.public_key().to_openssh().unwrap().as_bytes(),
    );
    let pub_path = pub_path.to_str().unwrap();

    // Bad handles are refused with one line saying what is allowed; nothing is added.
    let long = "x".repeat(65);
    for (bad, says) in [
        ("", "empty"),
        ("  ", "empty"),
        (long.as_str(), "at most 64"),
        ("@frank\u{202e}", "U+202E"),
        ("@fr\nank", "control"),
    ] {
        let o = jit_ca(&[
            "user",
            "add",
            "frank",
            "--key",
            pub_path,
            "--contact",
            bad,
            "--dir",
            d,
        ]);
        assert!(!o.status.success(), "{bad:?} accepted");
        assert!(text(&o).contains(says), "{bad:?}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1);
    }
    assert!(!text(&jit_ca(&["user", "list", "--dir", d])).contains("frank"));

    let o = jit_ca(&[
        "user",
        "add",
        "frank",
        "--key",
        pub_path,
        "--group",
        "dev",
        "--contact",
        " U0123ABCD ",
        "--dir",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["contact"], "U0123ABCD");
    assert_eq!(contact_of(d, "frank"), "U0123ABCD");
    assert_eq!(contact_of(d, "alice"), Value::Null);
    let o = jit_ca(&["user", "list", "--dir", d]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.lines().next().unwrap().contains("CONTACT"), "{out}");
    let frank = out.lines().find(|l| l.starts_with("frank")).unwrap();
    assert!(frank.contains("U0123ABCD"), "{out}");

    let o = jit_ca(&["user", "set-contact", "frank", "@frank", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("@frank"));
    assert_eq!(contact_of(d, "frank"), "@frank");
    let o = jit_ca(&[
        "user",
        "set-contact",
        "frank",
        "--clear",
        "--dir",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"user": "frank", "contact": null}));
    assert_eq!(contact_of(d, "frank"), Value::Null);

    // Neither or both of HANDLE and --clear: a usage error; an unknown user: named.
    let o = jit_ca(&["user", "set-contact", "frank", "--dir", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = jit_ca(&["user", "set-contact", "frank", "@f", "--clear", "--dir", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = jit_ca(&["user", "set-contact", "zed", "@zed", "--dir", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no user \"zed\""), "{}", text(&o));
    let o = jit_ca(&["user", "set-contact", "frank", &long, "--dir", d]);
    assert!(
        !o.status.success() && text(&o).contains("at most 64"),
        "{}",
        text(&o)
    );

    let records = jit_ca::admin::audit_export(&data_dir(&tmp)).unwrap();
    let add = records
        .iter()
        .find(|r| r["event"] == "user_add" && r["details"]["user"] == "frank")
        .unwrap();
    assert_eq!(add["details"]["contact"], "U0123ABCD");
    let set: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "user_contact")
        .map(|r| r["details"]["contact"].clone())
        .collect();
    assert_eq!(set, [Value::from("@frank"), Value::Null]);
}
