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
