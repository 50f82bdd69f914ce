//! Signed host documents for host-side tests, fuzz targets and benchmarks: grants and
//! revocation lists made with `jit_common`'s own signing (the bytes the CA publishes), from
//! claims with sensible defaults.
//!
//! ```ignore
//! let doc = docs::grant("g-1", "alice", &["db-*"], now).sudo(false).sign(&keys::grant());
//! let list = docs::revocations(3, now).grants(&["g-1"]).serials(&[7]).sign(&keys::grant());
//! ```

use jit_common::time::UnixTime;
use jit_common::{Approval, Grant, RevocationList};
use ssh_key::PrivateKey;

/// A grant's claims, built up from [`grant`].
#[derive(Debug, Clone)]
pub struct GrantDoc(pub Grant);

/// Grant `id` for `user` on `hosts`, valid from a minute before `now` for an hour: role
/// `db-admin`, sudo, request `r-ID`, approved by bob a minute before `now`, no certificate
/// serial.
pub fn grant(id: &str, user: &str, hosts: &[&str], now: impl Into<UnixTime>) -> GrantDoc {
    let now: UnixTime = now.into();
    let start = now - 60;
    GrantDoc(Grant {
        version: jit_common::grant::VERSION,
        id: id.to_string(),
        user: user.to_string(),
        role: "db-admin".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        sudo: true,
        not_before: start,
        not_after: now + 3600,
        issued_at: start,
        request_id: format!("r-{id}"),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: start,
        }],
        ticket: None,
        cert_serial: None,
        session_bound: false,
        key_id: String::new(),
    })
}

impl GrantDoc {
    pub fn role(mut self, role: &str) -> Self {
        self.0.role = role.to_string();
        self
    }
    pub fn sudo(mut self, sudo: bool) -> Self {
        self.0.sudo = sudo;
        self
    }
    /// The validity window (issued at its start).
    pub fn window(mut self, not_before: UnixTime, not_after: UnixTime) -> Self {
        self.0.not_before = not_before;
        self.0.not_after = not_after;
        self.0.issued_at = not_before;
        for a in &mut self.0.approvers {
            a.at = not_before;
        }
        self
    }
    pub fn request_id(mut self, id: &str) -> Self {
        self.0.request_id = id.to_string();
        self
    }
    pub fn reason(mut self, reason: &str) -> Self {
        self.0.reason = reason.to_string();
        self
    }
    pub fn approvers(mut self, users: &[&str]) -> Self {
        let at = self.0.not_before;
        self.0.approvers = users
            .iter()
            .map(|u| Approval {
                user: u.to_string(),
                at,
            })
            .collect();
        self
    }
    pub fn cert_serial(mut self, serial: u64) -> Self {
        self.0.cert_serial = Some(serial);
        self
    }
    /// Session-bound (issue 14): valid for sudo only from the SSH connection that presented
    /// the certificate with this serial, while it lives (`session_bound` needs `cert_serial`).
    pub fn session_bound(mut self, serial: u64) -> Self {
        self.0.cert_serial = Some(serial);
        self.0.session_bound = true;
        self
    }
    /// The claims.
    pub fn claims(self) -> Grant {
        self.0
    }
    /// The signed document (`Grant::sign`: JSON body, then an SSHSIG; key_id set).
    pub fn sign(self, key: &PrivateKey) -> Vec<u8> {
        self.0.sign(key).expect("sign grant")
    }
}

/// A revocation list's claims, built up from [`revocations`].
#[derive(Debug, Clone)]
pub struct RevocationDoc(pub RevocationList);

/// An empty list with this sequence number, issued at `issued_at`.
pub fn revocations(sequence: u64, issued_at: impl Into<UnixTime>) -> RevocationDoc {
    RevocationDoc(RevocationList::new(sequence, issued_at))
}

impl RevocationDoc {
    pub fn grants(mut self, ids: &[&str]) -> Self {
        self.0
            .revoked_grants
            .extend(ids.iter().map(|s| s.to_string()));
        self
    }
    pub fn serials(mut self, serials: &[u64]) -> Self {
        self.0.revoked_serials.extend(serials.iter().copied());
        self
    }
    /// The claims.
    pub fn claims(self) -> RevocationList {
        self.0
    }
    /// The signed document (`RevocationList::sign`).
    pub fn sign(self, key: &PrivateKey) -> Vec<u8> {
        self.0.sign(key).expect("sign revocation list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use jit_common::{UnverifiedGrant, UnverifiedRevocationList};

    #[test]
    fn signed_documents_verify_with_the_signers_ring() {
        let now = keys::vectors::NOW;
        let k = keys::grant();
        let doc = grant("g-1", "alice", &["db-*"], now)
            .cert_serial(7)
            .sign(&k);
        let g = UnverifiedGrant::parse(&doc)
            .unwrap()
            .verify_at(now, &keys::ring(&[&k]), 0)
            .unwrap();
        assert!(g.covers("alice", &["db-1"], now).is_ok());
        assert!(g.covers("alice", &["web-1"], now).is_err());
        assert_eq!(g.grant().cert_serial, Some(7));
        // Another key: refused.
        assert!(
            UnverifiedGrant::parse(&doc)
                .unwrap()
                .verify_at(now, &keys::ring(&[&keys::break_glass()]), 0)
                .is_err()
        );

        let list = revocations(3, now).grants(&["g-1"]).serials(&[7]).sign(&k);
        let v = UnverifiedRevocationList::parse(&list)
            .unwrap()
            .verify(&keys::ring(&[&k]))
            .unwrap();
        assert!(v.is_grant_revoked("g-1") && v.is_serial_revoked(7));
        assert!(!v.is_grant_revoked("g-2"));
    }

    #[test]
    fn session_bound_grants_carry_the_flag_and_the_serial() {
        let now = keys::vectors::NOW;
        let k = keys::grant();
        let doc = grant("g-1", "alice", &["db-*"], now)
            .session_bound(42)
            .sign(&k);
        assert!(String::from_utf8_lossy(&doc).contains("\"session_bound\": true"));
        let g = UnverifiedGrant::parse(&doc)
            .unwrap()
            .verify_at(now, &keys::ring(&[&k]), 0)
            .unwrap();
        assert!(g.grant().session_bound);
        assert_eq!(g.grant().cert_serial, Some(42));
        // The default stays unbound and the JSON does not mention it.
        let plain = grant("g-2", "alice", &["db-*"], now).sign(&k);
        assert!(!String::from_utf8_lossy(&plain).contains("session_bound"));
    }
}
