//! The kinds of audit event: one table of name (stable: SIEM rules match on it, and it is
//! hashed into the chain) and syslog severity.
//!
//! [`Event`] is the type; the constants below (`event::REQUEST`, ...) name the same values and
//! are what call sites write. A constant is a `&Event` that dereferences to its name, so it
//! can be passed where the name is wanted (`&str`) and compared with a stored name.
//!
//! To add an event, see CONTRIBUTING.md ("Adding an audit event").

use std::fmt;

use jit_common::log::Severity;

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident, $konst:ident = $name:literal, $severity:ident; )*) => {
        /// A kind of audit event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Event {
            $( $(#[$doc])* $variant, )*
        }

        impl Event {
            /// Every event, in table order.
            pub const ALL: &'static [Event] = &[ $( Event::$variant, )* ];

            /// The stable name, as stored in the chain and logged.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Event::$variant => $name, )*
                }
            }

            /// The syslog priority of its line.
            pub const fn severity(self) -> Severity {
                match self {
                    $( Event::$variant => Severity::$severity, )*
                }
            }

            /// The event with this stored name.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( $name => Some(Event::$variant), )*
                    _ => None,
                }
            }
        }

        $( $(#[$doc])* pub const $konst: &Event = &Event::$variant; )*
    };
}

events! {
    /// A new access request.
    Request, REQUEST = "request", Notice;
    /// A request refused by policy at creation.
    RequestRefused, REQUEST_REFUSED = "request_refused", Warning;
    /// An approval.
    Approval, APPROVAL = "approval", Notice;
    /// An approval refused by policy.
    ApprovalRefused, APPROVAL_REFUSED = "approval_refused", Warning;
    /// A denial.
    Denial, DENIAL = "denial", Notice;
    /// A certificate (and grant) issued.
    Issuance, ISSUANCE = "issuance", Notice;
    /// A revocation.
    Revocation, REVOCATION = "revocation", Notice;
    /// An extension of an approved window.
    Extension, EXTENSION = "extension", Notice;
    /// A pending request expired.
    Expiry, EXPIRY = "expiry", Notice;
    /// A deny call refused.
    DenialRefused, DENIAL_REFUSED = "denial_refused", Warning;
    /// A revoke call refused.
    RevocationRefused, REVOCATION_REFUSED = "revocation_refused", Warning;
    /// An extend call refused.
    ExtensionRefused, EXTENSION_REFUSED = "extension_refused", Warning;
    /// A read (request, list, certificate) refused.
    AccessRefused, ACCESS_REFUSED = "access_refused", Warning;
    /// A call refused before authentication (e.g. body too large).
    Rejected, REJECTED = "rejected", Warning;
    /// A failed API authentication.
    AuthFailure, AUTH_FAILURE = "auth_failure", Warning;
    /// Refusals of one source and event in one window beyond those recorded in full: one
    /// record with their count (see `Ca::record_refusal_from`).
    RefusalsSummarised, REFUSALS_SUMMARISED = "refusals_summarised", Warning;
    /// A signed call accepted with the legacy scheme v1 (`accept_v1_signatures = true`),
    /// recorded once per user and hour.
    LegacySignature, LEGACY_SIGNATURE = "legacy_signature", Warning;
    /// policy.toml reloaded (or a reload rejected).
    PolicyReload, POLICY_RELOAD = "policy_reload", Notice;
    /// A user registered.
    UserAdd, USER_ADD = "user_add", Notice;
    /// A key was added to a user (`jit-ca user add-key`).
    UserAddKey, USER_ADD_KEY = "user_add_key", Notice;
    /// A user removed.
    UserRemove, USER_REMOVE = "user_remove", Notice;
    /// The service started.
    ServiceStart, SERVICE_START = "service_start", Notice;
    /// A grant id or certificate serial revoked by an operator (`jit-ca revoke-grant`).
    GrantRevocation, GRANT_REVOCATION = "grant_revocation", Notice;
    /// A pending request withdrawn by its requester (not a denial).
    Cancellation, CANCELLATION = "cancellation", Notice;
    /// A cancel call refused.
    CancellationRefused, CANCELLATION_REFUSED = "cancellation_refused", Warning;
    /// An authorizing webhook's answer (approve or deny) to an auto-approval rule.
    WebhookAnswer, WEBHOOK_ANSWER = "webhook_answer", Notice;
    /// An authorizing webhook that gave no usable answer (timeout, error status, bad
    /// answer...): the request went to human approvers.
    WebhookFailure, WEBHOOK_FAILURE = "webhook_failure", Warning;
    /// Keys removed from a user who stays (`jit-ca user key remove`).
    UserRemoveKey, USER_REMOVE_KEY = "user_remove_key", Notice;
    /// An anomaly the CA detected (`details.kind`: `auth_failures`, `request_burst`,
    /// `off_schedule_approval`, `self_approval`, `break_glass`, `checkpoint_failure`), with
    /// what happened and what to check; notified as `alert.<kind>`, logged at alert level.
    Alert, ALERT = "alert", Alert;
    /// An active elevation ends soon: the reminder, once per window end (`expiry_reminder`
    /// in config.toml); notified as `request.expiring`.
    ExpiryReminder, EXPIRY_REMINDER = "expiry_reminder", Notice;
    /// An operator sent dead-lettered notifications again (`jit-ca notify retry`).
    NotifyRetry, NOTIFY_RETRY = "notify_retry", Notice;
    /// A notification given up after its retries (a dead letter, `jit-ca notify status`).
    NotifyDead, NOTIFY_DEAD = "notify_dead", Warning;
    /// A user's contact handle set or cleared (`jit-ca user set-contact`).
    UserContact, USER_CONTACT = "user_contact", Notice;
    /// A one-time web login URL issued to a signed call (`jit web`): user, key, expiry.
    WebLoginLink, WEB_LOGIN_LINK = "web_login_link", Notice;
    /// A web session established from a one-time URL (session id, key fingerprint, source).
    WebLogin, WEB_LOGIN = "web_login", Notice;
    /// A one-time URL refused (unknown, used or expired), or a page's form refused (CSRF).
    WebLoginRefused, WEB_LOGIN_REFUSED = "web_login_refused", Warning;
    /// Web sessions ended before their time (`jit web --logout`, the page's log-out button,
    /// `jit-ca user remove`, key removal): the session ids and who ended them.
    WebLogout, WEB_LOGOUT = "web_logout", Notice;
}

impl Event {
    /// The severity of a record with this stored name: its event's, or for a name this
    /// build does not know (a record written by another version) `Warning` when it names a
    /// refusal (`*_refused`), else `Notice`.
    pub fn severity_of(name: &str) -> Severity {
        match Self::parse(name) {
            Some(e) => e.severity(),
            None if name.ends_with("_refused") => Severity::Warning,
            None => Severity::Notice,
        }
    }
}

/// The name, so that `event::REQUEST` can be passed where a `&str` is taken.
impl std::ops::Deref for Event {
    type Target = str;

    fn deref(&self) -> &str {
        self.name()
    }
}

impl AsRef<str> for Event {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<str> for Event {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&Event> for String {
    fn eq(&self, other: &&Event) -> bool {
        self.as_str() == other.name()
    }
}

impl PartialEq<Event> for str {
    fn eq(&self, other: &Event) -> bool {
        self == other.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored names, as published (docs/api.md, SIEM rules). Renaming one breaks every
    /// rule that matches on it and makes old records unknown; add, never rename.
    const PUBLISHED: &[&str] = &[
        "request",
        "request_refused",
        "approval",
        "approval_refused",
        "denial",
        "issuance",
        "revocation",
        "extension",
        "expiry",
        "denial_refused",
        "revocation_refused",
        "extension_refused",
        "access_refused",
        "rejected",
        "auth_failure",
        "refusals_summarised",
        "legacy_signature",
        "policy_reload",
        "user_add",
        "user_add_key",
        "user_remove",
        "service_start",
        "grant_revocation",
        "cancellation",
        "cancellation_refused",
        "webhook_answer",
        "webhook_failure",
        "user_remove_key",
        "alert",
        "expiry_reminder",
        "notify_retry",
        "notify_dead",
        "user_contact",
        "web_login_link",
        "web_login",
        "web_login_refused",
        "web_logout",
    ];

    #[test]
    fn names_are_published_and_parse_back() {
        let names: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names, PUBLISHED);
        for &e in Event::ALL {
            assert_eq!(Event::parse(e.name()), Some(e));
            assert_eq!(e.to_string(), e.name());
        }
        assert_eq!(Event::parse("Request"), None);
    }

    #[test]
    fn every_event_is_in_docs_api_md() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));
        let section = doc
            .split("\n## Audit events")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap();
        let missing: Vec<&str> = Event::ALL
            .iter()
            .map(|e| e.name())
            .filter(|n| !section.contains(&format!("`{n}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "the Audit events section of docs/api.md does not name {missing:?}"
        );
    }

    #[test]
    fn refusals_warn_and_the_rest_are_notices() {
        // The rule the syslog lines have always followed: refusals, rejected and failed
        // calls, their summaries, legacy signatures and webhooks that gave no usable answer
        // at warning; alerts at alert; everything else notice.
        for &e in Event::ALL {
            if e == Event::Alert {
                assert_eq!(e.severity(), Severity::Alert);
                continue;
            }
            let warns = e.name().ends_with("_refused")
                || matches!(
                    e,
                    Event::AuthFailure
                        | Event::Rejected
                        | Event::RefusalsSummarised
                        | Event::LegacySignature
                        | Event::WebhookFailure
                        | Event::NotifyDead
                );
            let want = if warns {
                Severity::Warning
            } else {
                Severity::Notice
            };
            assert_eq!(e.severity(), want, "{e}");
            assert_eq!(Event::severity_of(e.name()), want, "{e}");
        }
        assert_eq!(Event::severity_of("future_refused"), Severity::Warning);
        assert_eq!(Event::severity_of("future_thing"), Severity::Notice);
    }

    #[test]
    fn constants_work_where_names_are_taken() {
        fn takes_name(n: &str) -> &str {
            n
        }
        assert_eq!(takes_name(USER_ADD), "user_add");
        let stored = String::from("auth_failure");
        assert!(stored == AUTH_FAILURE);
        assert!(stored != REJECTED);
        assert!(*AUTH_FAILURE == Event::AuthFailure);
        assert!("rejected" == REJECTED);
        assert_eq!(*GRANT_REVOCATION, Event::GrantRevocation);
    }
}
