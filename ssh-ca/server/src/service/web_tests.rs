//! Unit tests of `service::web` (the API tests are tests/api/web.rs).

use super::*;

#[test]
fn csrf_token_is_derived_from_the_secret_and_compared_exactly() {
    let secret = "A".repeat(43);
    let t = csrf_token(&secret);
    let mut h = Sha256::new();
    h.update(b"jit-csrf-v1\0");
    h.update(secret.as_bytes());
    assert_eq!(t, URL_SAFE_NO_PAD.encode(h.finalize()));
    assert_eq!(t.len(), 43);
    assert_ne!(t, csrf_token(&"B".repeat(43)));
    let s = WebSession {
        id: "ws-0000000000000000".into(),
        user: "alice".into(),
        groups: vec![],
        key: CallerKey::default(),
        csrf: t.clone(),
        expires_at: 0,
    };
    assert!(csrf_matches(&s, &t));
    assert!(!csrf_matches(&s, ""));
    assert!(!csrf_matches(&s, &t[..42]));
    assert!(!csrf_matches(&s, &format!("{t}x")));
    let mut other = t.into_bytes();
    other[0] ^= 1;
    assert!(!csrf_matches(&s, &String::from_utf8(other).unwrap()));
}

#[test]
fn secrets_ids_and_shapes() {
    let a = random_secret();
    assert!(well_formed(&a), "{a}");
    assert_ne!(a, random_secret());
    assert!(!well_formed(""));
    assert!(!well_formed(&format!("{a}=")));
    assert!(!well_formed(&"a/".repeat(22)[..43]));
    let id = new_session_id();
    assert!(id.starts_with("ws-") && id.len() == 19, "{id}");
    assert!(
        id[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(link_id(&sha256_hex("x")).len(), 19);
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
}

#[test]
fn the_touch_interval_is_a_quarter_of_a_short_idle_timeout() {
    assert_eq!(touch_interval(60), 15);
    assert_eq!(touch_interval(200), 50);
    assert_eq!(touch_interval(15 * 60), TOUCH_SECS);
    assert_eq!(touch_interval(86_400), TOUCH_SECS);
}

#[test]
fn link_problems_say_what_happened_and_what_to_do() {
    let row = WebLoginRow {
        token_hash: "h".into(),
        user: "bob".into(),
        key_fingerprint: "SHA256:k".into(),
        key_flags: 0,
        created_at: 1000,
        expires_at: 1060,
        used_at: None,
        audit_seq: None,
    };
    let used = WebLoginRow {
        used_at: Some(1001),
        ..row.clone()
    };
    let (reason, why) = link_problem(Some(&used), 1002);
    assert_eq!(reason, "used");
    assert!(
        why.contains("someone else") && why.contains("`jit web --logout`"),
        "{why}"
    );
    assert_eq!(link_problem(Some(&row), 1060).0, "expired");
    let withdrawn = WebLoginRow {
        expires_at: 1010,
        ..row.clone()
    };
    assert_eq!(link_problem(Some(&withdrawn), 1010).0, "withdrawn");
    assert_eq!(link_problem(None, 1000).0, "unknown");
}
