use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, PrivateKey};

use super::*;
use crate::envelope::Envelope;
use crate::grant::{self, Approval, Grant, SignedGrant};
use crate::revocation::{self, RevocationList, UnverifiedRevocationList};
use crate::time::UnixTime;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn key() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
}

fn ring(k: &PrivateKey) -> KeyRing {
    let mut r = KeyRing::new();
    r.push(k.public_key().clone());
    r
}

fn grant() -> Grant {
    Grant {
        version: 1,
        id: "g-1".into(),
        user: "alice".into(),
        role: "db-admin".into(),
        hosts: vec!["db-*".into()],
        sudo: true,
        not_before: NOW - 600,
        not_after: NOW + 1800,
        issued_at: NOW - 600,
        request_id: "r-1".into(),
        reason: "INC-1".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: NOW - 600,
        }],
        ticket: None,
        cert_serial: Some(7),
        session_bound: false,
        key_id: String::new(),
    }
}

fn list() -> RevocationList {
    let mut l = RevocationList::new(3, NOW);
    l.revoked_grants.insert("g-9".into());
    l.revoked_serials.insert(41);
    l
}

/// The exact body `seal` would sign for `claims` under `k`.
fn body_of<D: Document>(mut claims: D, k: &PrivateKey) -> Vec<u8> {
    claims.set_key_id(fingerprint(k.public_key()));
    let mut body = serde_json::to_vec_pretty(&claims).unwrap();
    body.push(b'\n');
    body
}

#[test]
fn a_grant_body_under_the_revocation_namespace_is_refused() {
    let k = key();
    let doc = Envelope::seal(&body_of(grant(), &k), &k, revocation::NAMESPACE).unwrap();
    // It parses as a grant (the body is one) but never verifies as one ...
    let parsed = SignedGrant::parse(&doc).unwrap();
    assert!(matches!(
        parsed.verify_at(NOW, &ring(&k), 60u64),
        Err(Error::WrongNamespace { expected: grant::NAMESPACE, ref found })
            if found == revocation::NAMESPACE
    ));
    // ... and as a revocation list its body is refused before any signature check.
    assert!(matches!(
        UnverifiedRevocationList::parse(&doc),
        Err(Error::UnknownField { .. })
    ));
}

#[test]
fn a_revocation_body_under_the_grant_namespace_is_refused() {
    let k = key();
    let doc = Envelope::seal(&body_of(list(), &k), &k, grant::NAMESPACE).unwrap();
    let parsed = UnverifiedRevocationList::parse(&doc).unwrap();
    assert!(matches!(
        parsed.verify(&ring(&k)),
        Err(Error::WrongNamespace { expected: revocation::NAMESPACE, ref found })
            if found == grant::NAMESPACE
    ));
    assert!(matches!(
        SignedGrant::parse(&doc),
        Err(Error::UnknownField { .. })
    ));
}

#[test]
fn signing_produces_what_hosts_parse_byte_for_byte() {
    let k = key();
    let signed = SignedGrant::sign(grant(), &k).unwrap();
    // Ed25519 is deterministic: the same document as the plain signer's.
    assert_eq!(signed.as_bytes(), grant().sign(&k).unwrap().as_slice());
    let parsed = SignedGrant::parse(signed.as_bytes()).unwrap();
    assert_eq!(parsed.claims_unverified(), signed.claims_unverified());
    assert_eq!(parsed.doc(), signed.doc());
    assert!(
        signed
            .doc()
            .starts_with(std::str::from_utf8(signed.body()).unwrap())
    );
    assert!(
        std::str::from_utf8(&signed.as_bytes()[signed.body().len()..])
            .unwrap()
            .starts_with("-----BEGIN SSH SIGNATURE-----\n")
    );
    assert_eq!(signed.signature().namespace(), grant::NAMESPACE);
    let v = parsed.verify_at(NOW, &ring(&k), 0u64).unwrap();
    assert_eq!(v.grant().key_id, fingerprint(k.public_key()));
    // The body-only reader agrees with the full one, for both kinds.
    assert_eq!(
        claims_unverified::<Grant>(signed.as_bytes()).unwrap(),
        *signed.claims_unverified()
    );
    let l = Signed::<RevocationList>::sign(list(), &k).unwrap();
    assert_eq!(
        claims_unverified::<RevocationList>(l.as_bytes()).unwrap(),
        *l.claims_unverified()
    );
    assert!(l.verify(&ring(&k)).unwrap().is_grant_revoked("g-9"));
}

#[test]
fn signing_refuses_what_hosts_would_refuse() {
    let k = key();
    // Within MAX_HOSTS selectors of the longest length: valid, but larger than a grant may be.
    let mut g = grant();
    g.hosts = (0..grant::MAX_HOSTS)
        .map(|i| format!("{i:02}{}", "h".repeat(250)))
        .collect();
    g.validate().unwrap();
    assert!(matches!(
        SignedGrant::sign(g, &k),
        Err(Error::Oversized { .. })
    ));
    // A field the checks refuse is refused before signing.
    let mut g = grant();
    g.not_after = g.not_before;
    assert!(matches!(
        SignedGrant::sign(g, &k),
        Err(Error::InvalidField {
            name: "not_after",
            ..
        })
    ));
}

#[test]
fn the_certificate_extension_is_the_grant_namespace() {
    assert_eq!(grant::CERT_EXTENSION, "jit-grant@jit");
    assert_eq!(grant::NAMESPACE, "jit-grant@jit");
    assert_eq!(revocation::NAMESPACE, "jit-revocations@jit");
}

/// `ticket` (issue 13): optional, absent from the body when there is none (so grants
/// without one are what older CAs wrote), carried and verified when set, checked like the
/// reason; a parser that does not list the field refuses a grant carrying it (why hosts
/// must be upgraded before the CA issues tickets).
#[test]
fn the_ticket_is_optional_checked_and_refused_by_a_parser_without_the_field() {
    let k = key();
    let plain = SignedGrant::sign(grant(), &k).unwrap();
    assert!(!plain.doc().contains("ticket"), "{}", plain.doc());

    let mut g = grant();
    g.ticket = Some("INC-1".into());
    let signed = SignedGrant::sign(g, &k).unwrap();
    assert!(
        signed
            .doc()
            .contains("  \"reason\": \"INC-1\",\n  \"ticket\": \"INC-1\",\n"),
        "{}",
        signed.doc()
    );
    let v = SignedGrant::parse(signed.as_bytes())
        .unwrap()
        .verify_at(NOW, &ring(&k), 0u64)
        .unwrap();
    assert_eq!(v.grant().ticket.as_deref(), Some("INC-1"));

    // The field list of a parser from before `ticket` refuses it as unknown.
    let old_fields: Vec<&str> = <Grant as Document>::FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "ticket")
        .collect();
    assert!(matches!(
        parse_body(signed.body(), &old_fields),
        Err(Error::UnknownField { ref name }) if name == "ticket"
    ));
    assert!(parse_body(plain.body(), &old_fields).is_ok());

    for (bad, detail) in [
        (String::new(), "must be 1 to 128 bytes"),
        (
            "I".repeat(grant::MAX_TICKET_LEN + 1),
            "must be 1 to 128 bytes",
        ),
        (
            "INC-1\u{202e}".to_string(),
            "contains the control or format character U+202E",
        ),
    ] {
        let mut g = grant();
        g.ticket = Some(bad);
        assert!(matches!(
            g.validate(),
            Err(Error::InvalidField { name: "ticket", detail: ref d }) if d == detail
        ));
    }
}

/// `session_bound` (issue 14): absent from the body when false (so other grants are what
/// older CAs wrote, byte for byte), carried and verified when true, refused by a parser
/// that does not list the field (an old host fails closed instead of ignoring the
/// binding), and only valid with the certificate serial it binds to.
#[test]
fn session_bound_is_optional_and_refused_by_a_parser_without_the_field() {
    let k = key();
    let plain = SignedGrant::sign(grant(), &k).unwrap();
    assert!(!plain.doc().contains("session_bound"), "{}", plain.doc());

    let mut g = grant();
    g.session_bound = true;
    let signed = SignedGrant::sign(g, &k).unwrap();
    assert!(
        signed
            .doc()
            .contains("  \"cert_serial\": 7,\n  \"session_bound\": true,\n"),
        "{}",
        signed.doc()
    );
    let v = SignedGrant::parse(signed.as_bytes())
        .unwrap()
        .verify_at(NOW, &ring(&k), 0u64)
        .unwrap();
    assert!(v.grant().session_bound);

    let old_fields: Vec<&str> = <Grant as Document>::FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "session_bound")
        .collect();
    assert!(matches!(
        parse_body(signed.body(), &old_fields),
        Err(Error::UnknownField { ref name }) if name == "session_bound"
    ));
    assert!(parse_body(plain.body(), &old_fields).is_ok());

    let mut unbound_serial = grant();
    unbound_serial.session_bound = true;
    unbound_serial.cert_serial = None;
    assert!(matches!(
        unbound_serial.validate(),
        Err(Error::InvalidField {
            name: "session_bound",
            ..
        })
    ));
}

/// What `parse` reads back from `signed`'s bytes is exactly `signed` (issue 18: `sign` no
/// longer parses its own output; this is the guarantee that replaced that parse).
fn assert_parses_back<D: Document + PartialEq + std::fmt::Debug>(signed: &Signed<D>) {
    let parsed = Signed::<D>::parse(signed.as_bytes()).expect("hosts parse what the CA signs");
    assert_eq!(parsed.doc(), signed.doc());
    assert_eq!(parsed.body(), signed.body());
    assert_eq!(parsed.signature(), signed.signature());
    assert_eq!(parsed.claims_unverified(), signed.claims_unverified());
}

mod sign_equals_parse {
    use proptest::prelude::*;

    use super::*;

    fn selector() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9.-]{0,40}",
            "[a-z]{1,8}-\\*",
            "\\*\\.[a-z]{1,10}\\.example",
            "[a-zA-Z0-9*?.-]{1,60}",
        ]
    }

    prop_compose! {
        fn arb_grant()(
            user in "[a-z_][a-z0-9_-]{0,31}",
            role in "[a-z][a-z0-9_-]{0,30}",
            hosts in proptest::collection::vec(selector(), 0..6),
            sudo in any::<bool>(),
            start in 0u64..4_000_000_000,
            len in 0u64..100_000,
            reason in "\\PC{0,300}",
            approvers in proptest::collection::vec(("\\PC{0,40}", 0u64..4_000_000_000), 0..4),
            ticket in proptest::option::of("\\PC{0,80}"),
            cert_serial in proptest::option::of(any::<u64>()),
            session_bound in any::<bool>(),
            serial in 0u64..1_000_000,
        ) -> Grant {
            Grant {
                version: 1,
                id: format!("r-{serial}.{serial}"),
                user,
                role,
                hosts,
                sudo,
                not_before: UnixTime::from_secs(start),
                not_after: UnixTime::from_secs(start + len),
                issued_at: UnixTime::from_secs(start),
                request_id: format!("r-{serial}"),
                reason,
                approvers: approvers
                    .into_iter()
                    .map(|(user, at)| Approval { user, at: UnixTime::from_secs(at) })
                    .collect(),
                ticket,
                cert_serial,
                session_bound,
                key_id: String::new(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Over arbitrary grants: a grant `sign` accepts parses back to the same value, and
        /// one it refuses is one `parse` of the old seal-then-parse path refused too.
        #[test]
        fn parse_of_sign_is_sign(g in arb_grant()) {
            let k = key();
            match SignedGrant::sign(g.clone(), &k) {
                Ok(signed) => {
                    assert_parses_back(&signed);
                    // The same as the path it replaced (Ed25519 is deterministic).
                    let old = SignedGrant::parse(&seal(g, &k).unwrap()).unwrap();
                    prop_assert_eq!(old.doc(), signed.doc());
                }
                Err(e) => {
                    let old = seal(g, &k).and_then(|d| SignedGrant::parse(&d).map(|_| ()));
                    prop_assert!(old.is_err(), "sign refused ({e}) what parse accepts");
                }
            }
        }

        /// The same for revocation lists.
        #[test]
        fn parse_of_sign_is_sign_for_lists(
            seq in 1u64..1_000_000,
            grants in proptest::collection::btree_set("[a-z0-9.-]{1,30}", 0..20),
            serials in proptest::collection::btree_set(any::<u64>(), 0..20),
        ) {
            let k = key();
            let mut l = RevocationList::new(seq, NOW);
            l.revoked_grants = grants;
            l.revoked_serials = serials;
            if let Ok(signed) = Signed::<RevocationList>::sign(l, &k) {
                assert_parses_back(&signed);
            }
        }
    }

    /// `sign_as` with the fingerprint the signer caches gives the same document as `sign`.
    #[test]
    fn sign_as_with_the_keys_fingerprint_is_sign() {
        let k = key();
        let a = SignedGrant::sign(grant(), &k).unwrap();
        let b = SignedGrant::sign_as(grant(), &k, fingerprint(k.public_key())).unwrap();
        assert_eq!(a.doc(), b.doc());
        assert_parses_back(&b);
    }

    /// The size cap is checked without a parse: a grant over it is refused as `parse`
    /// refuses it, with the length of the document `seal` makes.
    #[test]
    fn the_size_cap_holds_without_the_parse() {
        let k = key();
        let mut g = grant();
        g.hosts = (0..crate::grant::MAX_HOSTS)
            .map(|i| format!("{i:02}{}", "h".repeat(250)))
            .collect();
        let doc = seal(g.clone(), &k).unwrap();
        assert!(doc.len() > crate::envelope::MAX_GRANT_SIZE);
        assert!(matches!(
            SignedGrant::parse(&doc),
            Err(Error::Oversized { .. })
        ));
        match SignedGrant::sign(g, &k) {
            Err(Error::Oversized { len, .. }) => assert_eq!(len, doc.len()),
            other => panic!("{other:?}"),
        }
    }
}
