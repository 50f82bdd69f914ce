//! Which audit events are notifications: the one mapping from an audit record's event
//! (`crate::audit::event`) and details to a notification [`Kind`]. The outbox hook in the
//! store's `append_audit` calls it for every record it appends; `None` means no outbox row
//! (refusals, user administration, reloads: the audit trail and syslog keep them).
//!
//! Alerts are one audit event, `alert`, whose `details.kind` names the alert: every alert,
//! including operator emergency tooling (`jit-ca revoke-grant` appends a `grant_revocation`
//! record and an `alert` record of kind `break_glass`), goes through that one event, so one
//! change never makes two notifications of the same alert.

use serde_json::Value;

use super::event::Kind;
use crate::audit::event::Event as Audit;

/// The notification an audit record of `ev` with `details` makes, if any. An `alert`
/// record whose `details.kind` is not a known alert makes none (the trail keeps it).
pub fn kind_of(ev: Audit, details: &Value) -> Option<Kind> {
    Some(match ev {
        Audit::Request => Kind::RequestCreated,
        Audit::Approval => Kind::RequestApproved,
        Audit::Denial => Kind::RequestDenied,
        Audit::Cancellation => Kind::RequestCancelled,
        Audit::Expiry => Kind::RequestExpired,
        Audit::Issuance => Kind::RequestIssued,
        Audit::Revocation => Kind::RequestRevoked,
        Audit::Extension => Kind::RequestExtended,
        Audit::ExpiryReminder => Kind::RequestExpiring,
        Audit::Alert => {
            let kind = details.get("kind").and_then(Value::as_str)?;
            return Kind::parse(&format!("alert.{kind}")).filter(|k| k.is_alert());
        }
        // No notification of their own. GRANT_REVOCATION is accompanied by an `alert`
        // record (kind `break_glass`), which is the notification. USER_REMOVE's denials and
        // revocations: one event per affected request (the outbox hook reads the record's
        // request ids), not one for the removal itself.
        Audit::GrantRevocation
        | Audit::RequestRefused
        | Audit::ApprovalRefused
        | Audit::DenialRefused
        | Audit::RevocationRefused
        | Audit::ExtensionRefused
        | Audit::AccessRefused
        | Audit::CancellationRefused
        | Audit::Rejected
        | Audit::AuthFailure
        | Audit::RefusalsSummarised
        | Audit::LegacySignature
        | Audit::PolicyReload
        | Audit::UserAdd
        | Audit::UserAddKey
        | Audit::UserRemove
        | Audit::UserRemoveKey
        | Audit::ServiceStart
        | Audit::WebhookAnswer
        | Audit::WebhookFailure
        | Audit::NotifyRetry
        | Audit::NotifyDead
        | Audit::UserContact
        | Audit::WebLoginLink
        | Audit::WebLogin
        | Audit::WebLoginRefused
        | Audit::WebLogout => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every request kind has its audit event, and no two audit events make the same
    /// request kind.
    #[test]
    fn each_request_change_has_one_audit_event() {
        let none = json!({});
        let mut made: Vec<Kind> = Audit::ALL
            .iter()
            .filter_map(|e| kind_of(*e, &none))
            .collect();
        made.sort();
        let mut deduped = made.clone();
        deduped.dedup();
        assert_eq!(made, deduped, "two audit events make one kind");
        let missing: Vec<_> = Kind::ALL
            .iter()
            .filter(|k| k.family() == "request" && !made.contains(k))
            .map(|k| k.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "request kinds without an audit event: {missing:?}"
        );
        assert_eq!(kind_of(Audit::AuthFailure, &none), None);
        assert_eq!(kind_of(Audit::Issuance, &none), Some(Kind::RequestIssued));
    }

    /// Every alert kind is reachable from an `alert` record, and only from one; a kind that
    /// is not an alert, or unknown, makes nothing.
    #[test]
    fn alerts_come_from_the_alert_record_by_kind() {
        for k in Kind::ALL.iter().filter(|k| k.is_alert()) {
            let short = &k.as_str()["alert.".len()..];
            assert_eq!(kind_of(Audit::Alert, &json!({"kind": short})), Some(*k));
        }
        assert_eq!(kind_of(Audit::Alert, &json!({"kind": "nonsense"})), None);
        assert_eq!(kind_of(Audit::Alert, &json!({})), None);
        assert_eq!(kind_of(Audit::GrantRevocation, &json!({})), None);
    }
}
