//! What a notification says: one [`Event`] per state change (or alert), serialised once into
//! the JSON payload that Standard Webhooks sinks receive byte for byte and that the outbox
//! keeps (the Slack rendering is made from the same value, see [`super::slack`]).
//!
//! The payload (documented in docs/notify.md; field names are a published contract: add,
//! never rename):
//! ```json
//! {
//!   "id": "evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f",
//!   "type": "request.approved",
//!   "timestamp": "2026-11-29T22:40:00Z",
//!   "time": 1795992000,
//!   "actor": "bob",
//!   "data": {
//!     "request": {
//!       "id": "r-692b7a40a1b2c3d4e5f6", "user": "alice", "role": "db-admin",
//!       "hosts": ["db-*"], "duration_secs": 1800, "reason": "INC-42 disk full",
//!       "ticket": "INC-42", "state": "pending", "sudo": true, "session_bound": false,
//!       "approvals": {"count": 1, "required": 2, "by": ["bob"]},
//!       "pending_expires_at": 1795995600, "not_before": null,
//!       "valid_after": null, "valid_before": null, "decision_reason": null,
//!       "contact": "@alice"
//!     }
//!   }
//! }
//! ```
//! `data.alert` replaces or accompanies `data.request` for `alert.*` events (an alert about a
//! request, such as a self-approval attempt, carries both).
//!
//! Pure: no clock, no storage. The event id is given by the caller (derived from the audit
//! record that made the change, [`event_id`]), so a retry, a restart or a resend after a dead
//! letter sends the same id: receivers deduplicate on it (`webhook-id`).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal; )*) => {
        /// The type of an event: its stable name (`request.created`, `alert.self_approval`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $( $(#[$doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in table order (the docs list them in this order).
            pub const ALL: &'static [Kind] = &[ $( Kind::$variant, )* ];

            /// The stable name, as sent and as filters match it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Kind::$variant => $name, )*
                }
            }

            /// The kind with this name.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( $name => Some(Kind::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// A request was made (pending, or approved at once by an auto-approval rule: an
    /// `request.approved` and a `request.issued` follow in the same transaction).
    RequestCreated = "request.created";
    /// One approval was given (`approvals.count` of `approvals.required`).
    RequestApproved = "request.approved";
    /// A request was denied.
    RequestDenied = "request.denied";
    /// A pending request was withdrawn by its requester.
    RequestCancelled = "request.cancelled";
    /// A pending request was not decided in time (`previous_state` `pending`), or an
    /// approved request's window ended (`previous_state` `approved`: the elevation is over).
    RequestExpired = "request.expired";
    /// A certificate and grant were issued (the window is `valid_after`..`valid_before`).
    RequestIssued = "request.issued";
    /// An approved request was revoked.
    RequestRevoked = "request.revoked";
    /// An approved window was extended.
    RequestExtended = "request.extended";
    /// An active elevation ends soon (the reminder, sent once per window end).
    RequestExpiring = "request.expiring";
    /// Repeated failed signatures or unknown keys from one source or for one key.
    AlertAuthFailures = "alert.auth_failures";
    /// Many requests from one user in a short time.
    AlertRequestBurst = "alert.request_burst";
    /// An approval attempted outside the role's schedule.
    AlertOffSchedule = "alert.off_schedule_approval";
    /// A requester tried to approve their own request.
    AlertSelfApproval = "alert.self_approval";
    /// Operator emergency tooling was used (`jit-ca revoke-grant`, break-glass grants).
    AlertBreakGlass = "alert.break_glass";
    /// Signing or publishing the audit checkpoint failed.
    AlertCheckpointFailure = "alert.checkpoint_failure";
}

impl Kind {
    /// The family: the part before the dot (`request`, `alert`).
    pub fn family(self) -> &'static str {
        let s = self.as_str();
        s.split('.').next().unwrap_or(s)
    }

    /// Whether this is an `alert.*` kind (also sent to syslog at alert level).
    pub fn is_alert(self) -> bool {
        self.family() == "alert"
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Kind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown event type {s:?}")))
    }
}

/// Approvals of a request: `count` of `required`, and by whom (in the order given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// Approvals given so far.
    pub count: u32,
    /// Approvals the role asks for.
    pub required: u32,
    /// Who approved (an auto-approval rule appears as `auto:NAME`).
    pub by: Vec<String>,
}

/// A request's facts as of the change (not as of the delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    /// The request id (`jit show ID`).
    pub id: String,
    /// The requester.
    pub user: String,
    /// The role requested.
    pub role: String,
    /// The host selectors of the grant.
    pub hosts: Vec<String>,
    /// The window's length, seconds.
    pub duration_secs: u64,
    /// The requester's reason (their text: escape it wherever it is rendered).
    pub reason: String,
    /// What the role's reason pattern matched (a ticket), if the role has one.
    pub ticket: Option<String>,
    /// The state after the change (`jit_api::wire::RequestState::as_str`).
    pub state: String,
    /// Whether the grant allows sudo.
    pub sudo: bool,
    /// Whether the grant is bound to the SSH connection that presents it.
    pub session_bound: bool,
    /// Approvals so far.
    pub approvals: Approvals,
    /// When a pending request expires undecided (Unix seconds).
    pub pending_expires_at: u64,
    /// The requested start of a later window (`jit request --start`), if any.
    pub not_before: Option<u64>,
    /// The issued window's start, once issued.
    pub valid_after: Option<u64>,
    /// The issued window's end, once issued (extended: the new end).
    pub valid_before: Option<u64>,
    /// The reason given with a denial, revocation or cancellation.
    pub decision_reason: Option<String>,
    /// The requester's contact handle (`jit-ca user add --contact`), if set.
    pub contact: Option<String>,
    /// `request.expired` only: the state the request left, `pending` (never decided before
    /// `pending_expires_at`) or `approved` (an elevation whose window ended). Absent from
    /// other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<String>,
}

/// What an alert says: what happened and what to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFacts {
    /// One line: what happened.
    pub summary: String,
    /// One line: what to check first.
    pub check: String,
    /// The source address involved, if any.
    pub source: Option<String>,
    /// The user involved, if any.
    pub user: Option<String>,
    /// The key fingerprint involved, if any.
    pub key: Option<String>,
    /// How many occurrences crossed the threshold.
    pub count: Option<u64>,
    /// Over how many seconds.
    pub window_secs: Option<u64>,
    /// Every user a summary stands for (the registered keys whose `alert.auth_failures`
    /// were held back in a period), sorted; absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

/// The event's subject: a request, an alert, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Data {
    /// The request concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestFacts>,
    /// The alert, for `alert.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertFacts>,
}

/// One notification. Unknown fields are ignored when a payload is read back (a row written
/// by a later version, after a rollback, is still sent), as receivers are told to do; the
/// docs' examples are checked strictly by a round trip (`docs_tests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Stable across retries and resends: the idempotency key (`webhook-id`).
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// When the change happened, RFC 3339 in UTC (Standard Webhooks' payload convention).
    pub timestamp: String,
    /// The same instant in Unix seconds (how the rest of the API writes times).
    pub time: u64,
    /// Who made the change (`system` for the sweeper and detectors).
    pub actor: String,
    /// What it concerns.
    pub data: Data,
}

/// The prefix of event ids.
pub const ID_PREFIX: &str = "evt_";

/// The event id of the change recorded by the audit record whose hash (hex) is `audit_hash`:
/// `evt_` and its first 32 hex digits. The audit chain makes hashes unique, so the id is
/// unique, stable, and leads back to the audit record (`jit-ca audit export`).
pub fn event_id(audit_hash: &str) -> String {
    let hex: String = audit_hash
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(32)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{ID_PREFIX}{hex}")
}

/// The id of the `n`th (from 1) event of an audit record that concerns several requests
/// (`user_remove`: one event per request it denied or revoked, in the record's order):
/// [`event_id`] and `-n`. Stable like it, and distinct from every single-event id.
pub fn event_id_at(audit_hash: &str, n: usize) -> String {
    format!("{}-{n}", event_id(audit_hash))
}

/// `time` as RFC 3339 in UTC, seconds precision (`2026-11-29T22:40:00Z`).
pub fn rfc3339(time: u64) -> String {
    i64::try_from(time)
        .ok()
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map_or_else(|| time.to_string(), |t| t.to_string())
}

impl Event {
    /// An event of `kind` at `time` by `actor`.
    pub fn new(id: String, kind: Kind, time: u64, actor: &str, data: Data) -> Self {
        Self {
            id,
            kind,
            timestamp: rfc3339(time),
            time,
            actor: actor.to_string(),
            data,
        }
    }

    /// The request id it concerns, if any: deliveries of one request are made in order.
    pub fn request_id(&self) -> Option<&str> {
        self.data.request.as_ref().map(|r| r.id.as_str())
    }

    /// The exact bytes sent to Standard Webhooks sinks (and signed).
    pub fn payload(&self) -> Vec<u8> {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored payload back (the outbox keeps [`Event::payload`]).
    pub fn from_payload(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a notification payload: {e}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The names as published (docs, receivers' routing): add, never rename.
    const PUBLISHED: &[&str] = &[
        "request.created",
        "request.approved",
        "request.denied",
        "request.cancelled",
        "request.expired",
        "request.issued",
        "request.revoked",
        "request.extended",
        "request.expiring",
        "alert.auth_failures",
        "alert.request_burst",
        "alert.off_schedule_approval",
        "alert.self_approval",
        "alert.break_glass",
        "alert.checkpoint_failure",
    ];

    pub(crate) fn request() -> RequestFacts {
        RequestFacts {
            id: "r-692b7a40a1b2c3d4e5f6".into(),
            user: "alice".into(),
            role: "db-admin".into(),
            hosts: vec!["db-*".into()],
            duration_secs: 1800,
            reason: "INC-42 disk full".into(),
            ticket: Some("INC-42".into()),
            state: "pending".into(),
            sudo: true,
            session_bound: false,
            approvals: Approvals {
                count: 1,
                required: 2,
                by: vec!["bob".into()],
            },
            pending_expires_at: 1_795_995_600,
            not_before: None,
            valid_after: None,
            valid_before: None,
            decision_reason: None,
            contact: Some("@alice".into()),
            previous_state: None,
        }
    }

    pub(crate) fn approved() -> Event {
        Event::new(
            event_id("5F0C9D2E8A7B6C5D4E3F2A1B0C9D8E7F00112233445566778899aabbccddeeff"),
            Kind::RequestApproved,
            1_795_992_000,
            "bob",
            Data {
                request: Some(request()),
                alert: None,
            },
        )
    }

    #[test]
    fn names_are_the_published_ones_and_parse_back() {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, PUBLISHED);
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
            assert_eq!(k.is_alert(), k.as_str().starts_with("alert."));
        }
        assert_eq!(Kind::parse("request"), None);
        assert_eq!(Kind::RequestCreated.family(), "request");
    }

    /// The payload is exactly what the module documentation (and docs/notify.md) shows.
    #[test]
    fn payload_is_the_documented_json() {
        let e = approved();
        let text = String::from_utf8(e.payload()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"id":"evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f","type":"request.approved","#,
                r#""timestamp":"2026-11-29T22:40:00Z","time":1795992000,"actor":"bob","#,
                r#""data":{"request":{"id":"r-692b7a40a1b2c3d4e5f6","user":"alice","#,
                r#""role":"db-admin","hosts":["db-*"],"duration_secs":1800,"#,
                r#""reason":"INC-42 disk full","ticket":"INC-42","state":"pending","#,
                r#""sudo":true,"session_bound":false,"#,
                r#""approvals":{"count":1,"required":2,"by":["bob"]},"#,
                r#""pending_expires_at":1795995600,"not_before":null,"valid_after":null,"#,
                r#""valid_before":null,"decision_reason":null,"contact":"@alice"}}}"#
            )
        );
        assert_eq!(Event::from_payload(text.as_bytes()).unwrap(), e);
        assert_eq!(e.request_id(), Some("r-692b7a40a1b2c3d4e5f6"));
    }

    #[test]
    fn alert_payload_and_strict_reading() {
        let e = Event::new(
            event_id("00ff"),
            Kind::AlertAuthFailures,
            0,
            "system",
            Data {
                request: None,
                alert: Some(AlertFacts {
                    summary: "12 failed signatures from 10.0.0.7 in 60s".into(),
                    check: "who uses 10.0.0.7; a client with a wrong key or a probe".into(),
                    source: Some("10.0.0.7".into()),
                    user: None,
                    key: None,
                    count: Some(12),
                    window_secs: Some(60),
                    users: Vec::new(),
                }),
            },
        );
        let text = String::from_utf8(e.payload()).unwrap();
        assert!(text.starts_with(
            r#"{"id":"evt_00ff","type":"alert.auth_failures","timestamp":"1970-01-01T00:00:00Z""#
        ));
        assert!(!text.contains("\"request\""), "{text}");
        assert_eq!(Event::from_payload(text.as_bytes()).unwrap(), e);
        assert_eq!(e.request_id(), None);
        // An unknown type, or a missing field, is an error, never a default.
        let bad = text.replace("alert.auth_failures", "alert.nope");
        assert!(
            Event::from_payload(bad.as_bytes())
                .unwrap_err()
                .contains("unknown event type")
        );
        let bad = text.replace("\"actor\":\"system\",", "");
        assert!(Event::from_payload(bad.as_bytes()).is_err(), "{bad}");
        // A field added by a later version is ignored (R1 D9: a payload written by a newer
        // build, after a rollback, is still sent), as receivers are told to do.
        let later = text.replace("\"actor\"", "\"extra\":1,\"actor\"");
        assert_eq!(Event::from_payload(later.as_bytes()).unwrap(), e);
    }

    #[test]
    fn ids_come_from_the_audit_hash() {
        assert_eq!(event_id("AB"), "evt_ab");
        let long = "0123456789abcdef".repeat(4);
        assert_eq!(event_id(&long), format!("evt_{}", &long[..32]));
        assert_eq!(event_id_at(&long, 2), format!("evt_{}-2", &long[..32]));
        assert_eq!(rfc3339(1_795_992_000), "2026-11-29T22:40:00Z");
        assert_eq!(rfc3339(u64::MAX), u64::MAX.to_string());
    }
}
