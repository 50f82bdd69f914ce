//! Evidence of an approval: the request's canonical text and digest, which an approver's
//! signed `approve` call names, so that the signed call (kept in the audit record) shows that
//! this approver approved this exact request.
//!
//! The canonical text (scheme `jit-request-v2`), one `name: value` line each, every line
//! ending with `\n`, in this order:
//! ```text
//! jit-request-v2
//! id: r-...
//! user: alice
//! role: db-admin
//! hosts: db-1 db-2            the request's host selectors, separated by one space
//! principals: alice dba       the certificate's principals, separated by one space
//! sudo: true                  whether the grant allows sudo (`true` or `false`)
//! duration_secs: 900
//! reason: INC-42 disk full
//! ticket: INC-42              only when the request has a ticket
//! start: 1795438800           only when the request starts later (Unix seconds)
//! key: SHA256:...             the fingerprint of the key to certify
//! ```
//! In values, `\` is written `\\` and a control character `\u{XX}` (the CA refuses control
//! characters in reasons, so this only matters for damaged data), so no value can add a line;
//! in the items of `hosts` and `principals` a space is written `\u{20}` too, so no item can
//! pass for two.
//! The digest is `sha256:` and the lowercase hex SHA-256 of the text's bytes: what
//! `printf '%s' "$text" | sha256sum` prints.
//!
//! The text holds every fact of the request that decides what the CA signs for it: the
//! certificate (key, principals, the window from duration and start, the id in its key id)
//! and the grant (user, role, hosts, sudo, reason, ticket). Not in it: the role's
//! `extensions` and `critical_options`, which are the operator's policy read at issue time
//! (as are the role's other settings), not facts of the request; the `issuance` record
//! names the ones a certificate got. Nor the request's `session_bound`: it only narrows what
//! a grant allows, and issuance binds the grant also when the role says so then (the
//! issuance and extension records say `session_bound: true`). `jit-request-v1` (before principals and sudo were
//! added) is no longer produced: a `jit` that computes it refuses to approve (its digest
//! differs from the CA's) and says to upgrade.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

/// The first line of the canonical text.
pub const SCHEME: &str = "jit-request-v2";
/// The prefix of a digest.
pub const DIGEST_PREFIX: &str = "sha256:";

/// The immutable facts of a request that an approval covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// The request id.
    pub id: &'a str,
    /// The requester.
    pub user: &'a str,
    /// The role.
    pub role: &'a str,
    /// Host selectors.
    pub hosts: &'a [String],
    /// The certificate's principals.
    pub principals: &'a [String],
    /// Whether the grant allows sudo.
    pub sudo: bool,
    /// Requested duration.
    pub duration_secs: u64,
    /// The reason as stored.
    pub reason: &'a str,
    /// The ticket matched in the reason, when the request has one.
    pub ticket: Option<&'a str>,
    /// A later start, when the request has one.
    pub start: Option<u64>,
    /// SHA-256 fingerprint of the key to certify (`SHA256:...`).
    pub key_fingerprint: &'a str,
}

fn escape(v: &str) -> String {
    escape_with(v, false)
}

/// `v` escaped; with `space`, a space is written `\u{20}` too (an item of a list, whose
/// items are separated by one space, so that `["a b"]` and `["a", "b"]` differ).
fn escape_with(v: &str, space: bool) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || (space && c == ' ') => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The items of a list, each escaped, separated by one space.
fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| escape_with(i, true))
        .collect::<Vec<_>>()
        .join(" ")
}

impl RequestFacts<'_> {
    /// The canonical text.
    pub fn canonical(&self) -> String {
        let mut t = format!("{SCHEME}\n");
        // `value` is already escaped.
        let mut line = |name: &str, value: &str| {
            let _ = writeln!(t, "{name}: {value}");
        };
        line("id", &escape(self.id));
        line("user", &escape(self.user));
        line("role", &escape(self.role));
        line("hosts", &list(self.hosts));
        line("principals", &list(self.principals));
        line("sudo", if self.sudo { "true" } else { "false" });
        line("duration_secs", &self.duration_secs.to_string());
        line("reason", &escape(self.reason));
        if let Some(ticket) = self.ticket {
            line("ticket", &escape(ticket));
        }
        if let Some(start) = self.start {
            line("start", &start.to_string());
        }
        line("key", &escape(self.key_fingerprint));
        t
    }

    /// The digest of the canonical text.
    pub fn digest(&self) -> String {
        digest_of(&self.canonical())
    }
}

impl<'a> RequestFacts<'a> {
    /// The facts as a [`RequestView`](crate::wire::RequestView) shows them; None when the
    /// view has no key fingerprint (an older server).
    pub fn of_view(v: &'a crate::wire::RequestView) -> Option<Self> {
        Some(Self {
            id: &v.id,
            user: &v.user,
            role: &v.role,
            hosts: &v.hosts,
            principals: &v.principals,
            sudo: v.sudo,
            duration_secs: v.duration_secs,
            reason: &v.reason,
            ticket: v.ticket.as_deref(),
            start: v.start,
            key_fingerprint: v.key_fingerprint.as_deref()?,
        })
    }
}

/// `sha256:<hex>` of `text`.
pub fn digest_of(text: &str) -> String {
    format!(
        "{DIGEST_PREFIX}{}",
        hex::encode(Sha256::digest(text.as_bytes()))
    )
}

/// Whether `s` is spelled like a digest (`sha256:` and 64 lowercase hex characters).
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix(DIGEST_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principals() -> &'static [String] {
        static P: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        P.get_or_init(|| vec!["alice".to_string(), "dbadmin".to_string()])
    }

    fn facts<'a>(hosts: &'a [String]) -> RequestFacts<'a> {
        RequestFacts {
            id: "r-1",
            user: "alice",
            role: "db-admin",
            hosts,
            principals: principals(),
            sudo: true,
            duration_secs: 900,
            reason: "INC-42 disk full",
            ticket: None,
            start: None,
            key_fingerprint: "SHA256:abc",
        }
    }

    #[test]
    fn canonical_text_and_digest_are_fixed() {
        let hosts = vec!["db-1".to_string(), "db-*".to_string()];
        let f = facts(&hosts);
        assert_eq!(
            f.canonical(),
            "jit-request-v2\nid: r-1\nuser: alice\nrole: db-admin\nhosts: db-1 db-*\n\
             principals: alice dbadmin\nsudo: true\nduration_secs: 900\n\
             reason: INC-42 disk full\nkey: SHA256:abc\n"
        );
        // printf '%s' "$text" | sha256sum (the text above)
        assert_eq!(f.digest(), digest_of(&f.canonical()));
        assert_eq!(
            f.digest(),
            "sha256:9813e95abc65bae06919faed7472da44682b4123540d299cd3cea68d6d09b8ab"
        );
        assert!(is_digest(&f.digest()));
        assert_eq!(
            digest_of(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let later = RequestFacts {
            ticket: Some("INC-42"),
            start: Some(1_795_438_800),
            ..f
        };
        assert!(later.canonical().ends_with(
            "reason: INC-42 disk full\nticket: INC-42\nstart: 1795438800\nkey: SHA256:abc\n"
        ));
        assert_ne!(later.digest(), f.digest());
        // Every fact changes the digest.
        let other_hosts = vec!["db-1".to_string()];
        let root = vec!["alice".to_string(), "root".to_string()];
        let only_alice = vec!["alice".to_string()];
        for changed in [
            RequestFacts {
                principals: &root,
                ..f
            },
            RequestFacts {
                principals: &only_alice,
                ..f
            },
            RequestFacts { sudo: false, ..f },
            RequestFacts {
                ticket: Some("INC-42"),
                ..f
            },
            RequestFacts {
                start: Some(1),
                ..f
            },
            RequestFacts { id: "r-2", ..f },
            RequestFacts { user: "bob", ..f },
            RequestFacts { role: "web", ..f },
            RequestFacts {
                hosts: &other_hosts,
                ..f
            },
            RequestFacts {
                duration_secs: 901,
                ..f
            },
            RequestFacts { reason: "x", ..f },
            RequestFacts {
                key_fingerprint: "SHA256:abd",
                ..f
            },
        ] {
            assert_ne!(changed.digest(), f.digest(), "{changed:?}");
        }
    }

    #[test]
    fn no_value_can_add_a_line() {
        let hosts = vec!["db-1".to_string()];
        let f = RequestFacts {
            reason: "x\nkey: SHA256:evil\\",
            ..facts(&hosts)
        };
        assert!(
            f.canonical()
                .contains("reason: x\\u{a}key: SHA256:evil\\\\\nkey: SHA256:abc\n")
        );
        assert_eq!(f.canonical().lines().count(), 10);
    }

    #[test]
    fn no_list_item_can_pass_for_two() {
        let one = vec!["db-1 db-2".to_string()];
        let two = vec!["db-1".to_string(), "db-2".to_string()];
        assert_ne!(facts(&one).digest(), facts(&two).digest());
        assert!(
            facts(&one)
                .canonical()
                .contains("\nhosts: db-1\\u{20}db-2\n")
        );
        let glued = vec!["alice dbadmin".to_string()];
        let f = RequestFacts {
            principals: &glued,
            ..facts(&two)
        };
        assert_ne!(f.digest(), facts(&two).digest());
        assert!(
            f.canonical()
                .contains("\nprincipals: alice\\u{20}dbadmin\n")
        );
    }

    #[test]
    fn digests_are_recognised() {
        assert!(!is_digest(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        ));
        assert!(!is_digest(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
        assert!(!is_digest("sha256:e3b0"));
    }
}
