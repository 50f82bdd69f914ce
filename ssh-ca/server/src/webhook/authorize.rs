//! The authorizing webhook of an auto-approval rule: the question the CA sends, and the one
//! answer that approves.
//!
//! The CA POSTs (Standard Webhooks headers, see [`super::sign`]):
//! ```json
//! {"type": "authorize.request", "timestamp": "2026-11-23T12:00:00Z",
//!  "data": {"request_id": "...", "user": "alice", "groups": ["dev", "oncall"],
//!           "role": "db-admin", "hosts": ["db-1"], "principals": ["alice", "dbadmin"],
//!           "sudo": true, "duration_secs": 900, "reason": "INC-42 disk full",
//!           "key": "SHA256:...", "rule": "oncall", "created_at": 1795435200,
//!           "ca": "SHA256:..."}}
//! ```
//! and auto-approves only when the answer is **HTTP 200 with a JSON object whose `approve`
//! is `true`** (an optional `reason` string, at most [`MAX_REASON`] characters, is kept in
//! the audit record). `{"approve": false}` is a no. Other keys are ignored; a key given
//! twice is an error (`bad_answer`), never "the last one wins". Anything else (another status, a
//! redirect, a timeout, no connection, a body that is not such an object or is larger than
//! [`MAX_ANSWER`] bytes) is an error. A no and an error both leave the request to human
//! approvers; neither refuses it. The webhook can only add an approval, never remove a
//! check: the role's other rules were all applied before it is asked.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Webhook;
use super::client::{self, FailKind, Failure, Target};
use crate::store::RequestRow;

/// The `type` of the question.
pub const TYPE: &str = "authorize.request";
/// Largest answer body accepted.
pub const MAX_ANSWER: usize = 4096;
/// Longest `reason` of an answer kept in the audit record (longer ones are cut).
pub const MAX_REASON: usize = 200;

/// What is being asked about.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The request, as it will be stored.
    pub row: &'a RequestRow,
    /// The requester's groups.
    pub groups: &'a [String],
    /// The auto-approval rule's name (without `auto:`).
    pub rule: &'a str,
    /// This CA's identity (its audience, `SHA256:...`).
    pub ca: &'a str,
}

/// How the webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 `{"approve": true}`.
    Approve { reason: Option<String> },
    /// 200 `{"approve": false}`.
    Deny { reason: Option<String> },
    /// Anything else: the kind (`timeout`, `connect`, `status`, `redirect`, `bad_json`,
    /// `bad_answer`, `too_large`, `not_loaded`, ...), the status if any, a description.
    Error {
        kind: &'static str,
        status: Option<u16>,
        detail: String,
    },
}

/// A webhook's answer, for the decision and the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The webhook's name.
    pub webhook: String,
    /// The rule that asked.
    pub rule: String,
    /// The `webhook-id` sent.
    pub message_id: String,
    /// What it said.
    pub outcome: Outcome,
    /// How long the call took, milliseconds.
    pub latency_ms: u64,
    /// Set when a yes does not approve after all: the policy was reloaded during the call
    /// and no longer has the rule or the webhook as they were when asked (why).
    pub overruled: Option<String>,
}

impl Answer {
    /// Whether the answer approves (a yes not overruled).
    pub fn approves(&self) -> bool {
        matches!(self.outcome, Outcome::Approve { .. }) && self.overruled.is_none()
    }

    /// Why it did not approve, as a request's `auto_rules_not_applied` says it.
    pub fn why_not(&self) -> String {
        if let Some(why) = &self.overruled {
            return format!("its webhook {} answered yes, but {why}", self.webhook);
        }
        match &self.outcome {
            Outcome::Approve { .. } => String::new(),
            Outcome::Deny { .. } => format!("its webhook {} answered no", self.webhook),
            Outcome::Error { kind, .. } => {
                format!(
                    "its webhook {} gave no usable answer ({kind})",
                    self.webhook
                )
            }
        }
    }

    /// Whether the call failed (audited as `webhook_failure`, else `webhook_answer`).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Error { .. })
    }

    /// The audit record's details.
    pub fn details(&self, request_id: &str) -> Value {
        let mut d = json!({"request_id": request_id, "webhook": self.webhook, "rule": self.rule,
                           "webhook_id": self.message_id, "latency_ms": self.latency_ms});
        let extra = match &self.outcome {
            Outcome::Approve { reason } => json!({"answer": "approve", "reason": reason}),
            Outcome::Deny { reason } => json!({"answer": "deny", "reason": reason}),
            Outcome::Error {
                kind,
                status,
                detail,
            } => json!({"answer": "error", "kind": kind, "status": status, "detail": detail}),
        };
        if let (Some(d), Value::Object(e)) = (d.as_object_mut(), extra) {
            d.extend(e);
            if let Some(why) = &self.overruled {
                d.insert("overruled".into(), json!(why));
            }
        }
        d
    }
}

/// The `webhook-id` of the question about request `id` (unique: request ids are).
pub fn message_id(id: &str) -> String {
    format!("msg_{id}")
}

/// The question's JSON body.
pub fn body(q: &Question<'_>, now: u64) -> Value {
    let r = q.row;
    let mut data = json!({
        "request_id": r.id, "user": r.user, "groups": q.groups, "role": r.role,
        "hosts": r.hosts, "principals": r.principals, "sudo": r.sudo,
        "session_bound": r.session_bound, "duration_secs": r.duration_secs, "reason": r.reason,
        "key": r.public_key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
        "rule": q.rule, "created_at": r.created_at, "ca": q.ca,
    });
    if let Some(d) = data.as_object_mut() {
        // Present only when the request has them: the ticket its reason carries
        // (reason_pattern) and the start of a later window (`jit request --start`).
        if let Some(t) = &r.ticket {
            d.insert("ticket".into(), json!(t));
        }
        if let Some(start) = r.not_before {
            d.insert("start".into(), json!(start));
        }
    }
    json!({
        "type": TYPE,
        "timestamp": jit_common::time::format_utc(now),
        "data": data,
    })
}

/// Asks `hook` about `q` at `now` (the CA's clock: the `webhook-timestamp`). Never fails:
/// every problem is an [`Outcome::Error`].
pub fn ask(hook: &Webhook, q: &Question<'_>, now: u64) -> Answer {
    let message_id = message_id(&q.row.id);
    let started = Instant::now();
    let outcome = match &hook.loaded {
        None => Outcome::Error {
            kind: "not_loaded",
            status: None,
            detail: "the webhook's secret file was not loaded".into(),
        },
        Some(loaded) => {
            let payload = body(q, now).to_string().into_bytes();
            let headers = loaded.secret.headers(&message_id, now, &payload);
            let target = Target {
                url: &hook.url,
                timeout: Duration::from_secs(hook.timeout_secs),
                ca_pem: loaded.ca_pem.as_deref(),
                max_body: MAX_ANSWER,
            };
            match client::post(&target, &headers, &payload) {
                Ok(reply) => interpret(reply.status, &reply.body),
                // The detail never holds the URL (it may carry a token): the record names
                // the webhook instead (see `client::Failure`).
                Err(f) => failure(&f),
            }
        }
    };
    Answer {
        webhook: hook.name.clone(),
        rule: q.rule.to_string(),
        message_id,
        outcome,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        overruled: None,
    }
}

fn failure(f: &Failure) -> Outcome {
    let kind = match f.kind {
        FailKind::TooLarge => "too_large",
        k => k.as_str(),
    };
    Outcome::Error {
        kind,
        status: f.status,
        detail: f.detail.clone(),
    }
}

/// The contract: 200 with `{"approve": true|false, "reason"?: string}`; else an error.
pub fn interpret(status: u16, body: &[u8]) -> Outcome {
    let error = |kind, detail: String| Outcome::Error {
        kind,
        status: Some(status),
        detail,
    };
    if (300..400).contains(&status) {
        return error(
            "redirect",
            format!(
                "answered HTTP {status}; redirects are not followed (point url at the final address)"
            ),
        );
    }
    if status != 200 {
        return error(
            "status",
            format!("answered HTTP {status}; only 200 decides"),
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error("bad_json", "the answer is not JSON".into());
    };
    if !v.is_object() {
        return error("bad_answer", "the answer is not a JSON object".into());
    }
    // Parsed again into the two fields that matter, from the bytes: a key given twice
    // (`{"approve": false, "approve": true}`) is refused, where a JSON value would keep
    // the last one and a receiver's parser may keep the first. Other keys are ignored.
    let fields = match serde_json::from_slice::<Fields>(body) {
        Ok(f) => f,
        Err(e) => {
            return error(
                "bad_answer",
                format!(
                    "the answer is ambiguous: {}",
                    jit_common::log::sanitize(&e.to_string(), 100)
                ),
            );
        }
    };
    let reason = match fields.reason {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(jit_common::log::sanitize(&s, MAX_REASON)),
        Some(_) => return error("bad_answer", "\"reason\" is not a string".into()),
    };
    match fields.approve {
        Some(Value::Bool(true)) => Outcome::Approve { reason },
        Some(Value::Bool(false)) => Outcome::Deny { reason },
        Some(_) => error("bad_answer", "\"approve\" is not true or false".into()),
        None => error("bad_answer", "the answer has no \"approve\"".into()),
    }
}

/// The fields of an answer the CA reads (others are ignored); each at most once.
#[derive(Deserialize)]
struct Fields {
    #[serde(default, deserialize_with = "present")]
    approve: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    reason: Option<Value>,
}

/// A field that is there, whatever its value (`null` included: `Some(Value::Null)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
