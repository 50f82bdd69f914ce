//! config.toml's notification keys: `[[notify]]` sinks, `notify_max_age`, and what
//! `load_notify_files` refuses.

use std::path::Path;

use super::*;

#[test]
fn notify_sinks_and_max_age() {
    let d = Config::parse(Path::new("/d"), TEMPLATE).unwrap();
    assert!(d.notify.is_empty());
    assert_eq!(
        d.notify_max_age_secs,
        crate::notify::backoff::DEFAULT_MAX_AGE
    );
    // The template's commented example, uncommented, is a valid configuration.
    let example: String = TEMPLATE
        .lines()
        .skip_while(|l| !l.starts_with("# notify_max_age"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.trim_start_matches("# ")))
        .collect();
    let c = Config::parse(Path::new("/d"), &example).unwrap();
    assert_eq!(c.notify.len(), 2, "{example}");
    assert_eq!(c.notify[0].name, "ops");
    assert_eq!(c.notify_max_age_secs, 24 * 3600);
    let c = Config::parse(Path::new("/d"), "notify_max_age = \"2h\"").unwrap();
    assert_eq!(c.notify_max_age_secs, 7200);
    for bad in ["30s", "8d"] {
        let text = format!("notify_max_age = \"{bad}\"");
        let errs = Config::parse(Path::new("/d"), &text).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].ends_with("use 1m to 7d"), "{errs:?}");
    }
    // Sink problems are reported with the rest, one line each.
    let errs = Config::parse(
        Path::new("/d"),
        "backdate = \"2h\"\n[[notify]]\nname = \"x\"\nurl = \"https://h/\"\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[1].starts_with("notify.x.format: is required"),
        "{errs:?}"
    );
}

#[test]
fn a_slack_url_in_a_world_readable_config_refuses_to_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_FILE);
    std::fs::write(
        &path,
        "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T/B/SECRET\"\nformat = \"slack\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = Config::load(dir.path()).unwrap();
    let e = c.load_notify_files().unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.ends_with(&format!("chmod o-r {}", path.display())), "{e}");
    assert!(!e.contains("SECRET"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut c = Config::load(dir.path()).unwrap();
    c.load_notify_files().unwrap();
    // A standard sink's URL is no credential (its secret is in secret_file): no refusal
    // for the mode, but its secret file must be there.
    std::fs::write(
        &path,
        "[[notify]]\nname = \"ops\"\nurl = \"https://h/\"\nformat = \"standard\"\nsecret_file = \"ops.whsec\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = Config::load(dir.path()).unwrap();
    let e = c.load_notify_files().unwrap_err().to_string();
    assert!(e.contains("notify.ops.secret_file: "), "{e}");
    let secret = dir.path().join("ops.whsec");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = Config::load(dir.path()).unwrap();
    c.load_notify_files().unwrap();
    assert!(c.notify[0].secret.is_some());
}

/// docs/api.md's config.toml reference is a valid config.toml (its sinks included).
#[test]
fn the_documented_config_parses() {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));
    let block = doc
        .split("`config.toml` (all keys optional; unknown keys are errors):\n\n```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("docs/api.md has the config.toml reference");
    let c = Config::parse(Path::new("/d"), block).unwrap();
    assert_eq!(c.notify.len(), 1);
    assert_eq!(c.notify[0].name, "ops");
    assert_eq!(c.notify_max_age_secs, 24 * 3600);
}
