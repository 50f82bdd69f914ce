//! The audit page's reads (issue 16): a filtered search over a window of `seq` (the primary
//! key, so the window is a range scan and its cost is bounded by its size, whatever the
//! filters), and the records after a seq in chain order, for incremental verification.
//!
//! No index is added: the filters other than the window run on the window's rows, so the
//! audit table keeps one B-tree and an append (every issuance makes records) writes no more
//! pages than before.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{i, u};
use crate::audit::Record;
use crate::error::Result;
use crate::store::audit::{AuditFilter, AuditWindow};

const COLUMNS: &str = "a.seq, a.time, a.actor, a.event, a.details, a.prev_hash, a.hash";

fn record(r: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        seq: u(r.get(0)?),
        time: u(r.get(1)?),
        actor: r.get(2)?,
        event: r.get(3)?,
        details: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}

/// The records of `w` matching `f`, newest first. A record whose details are not JSON (a
/// damaged or tampered row) matches on its actor, event and time only; it never fails the
/// search (the chain status names it).
pub fn audit_search(c: &Connection, f: &AuditFilter, w: &AuditWindow) -> Result<Vec<Record>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit a
         LEFT JOIN requests r ON r.id = (CASE WHEN json_valid(a.details)
                                         THEN json_extract(a.details, '$.request_id') END)
         WHERE a.seq < ?1 AND a.seq >= ?2
           AND (?3 IS NULL OR a.actor = ?3 OR r.user = ?3
                OR (json_valid(a.details) AND json_extract(a.details, '$.user') = ?3))
           AND (?4 IS NULL OR r.role = ?4
                OR (json_valid(a.details) AND json_extract(a.details, '$.role') = ?4))
           AND (?5 IS NULL OR a.event = ?5)
           AND (?6 IS NULL OR a.time >= ?6)
           AND (?7 IS NULL OR a.time <= ?7)
         ORDER BY a.seq DESC LIMIT ?8"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(
        params![
            i(w.before),
            i(w.floor),
            f.user,
            f.role,
            f.event,
            f.since.map(i),
            f.until.map(i),
            w.limit
        ],
        record,
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Up to `limit` records with seq above `after`, in chain (storage) order.
pub fn audit_after(c: &Connection, after: u64, limit: u32) -> Result<Vec<Record>> {
    let sql = format!("SELECT {COLUMNS} FROM audit a WHERE a.seq > ?1 ORDER BY a.seq LIMIT ?2");
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(params![i(after), limit], record)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The record with this seq.
pub fn audit_record(c: &Connection, seq: u64) -> Result<Option<Record>> {
    let sql = format!("SELECT {COLUMNS} FROM audit a WHERE a.seq = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([i(seq)], record)
        .optional()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::event;
    use crate::store::sqlite::{Store, append_audit};
    use serde_json::json;

    /// Records 1..=6: requests of alice (role db) and bob (role web) by id, one damaged
    /// details text (only through the raw table: the triggers refuse edits).
    fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let tx = s.tx().unwrap();
        for (id, user, role) in [("r-1", "alice", "db"), ("r-2", "bob", "web")] {
            tx.execute(
                "INSERT INTO requests (id, user, role, reason, duration_secs, hosts, principals, sudo, public_key, created_at, pending_expires_at, approvals_required, state)
                 VALUES (?1, ?2, ?3, 'x', 60, '[]', '[]', 0, 'k', 1, 2, 1, 'pending')",
                params![id, user, role],
            )
            .unwrap();
        }
        let recs: [(u64, &str, &event::Event, serde_json::Value); 5] = [
            (
                100,
                "alice",
                event::REQUEST,
                json!({"request_id": "r-1", "role": "db"}),
            ),
            (
                200,
                "bob",
                event::REQUEST,
                json!({"request_id": "r-2", "role": "web"}),
            ),
            (300, "carol", event::APPROVAL, json!({"request_id": "r-1"})),
            (400, "admin:0", event::USER_REMOVE, json!({"user": "alice"})),
            (500, "carol", event::APPROVAL, json!({"request_id": "r-2"})),
        ];
        for (t, actor, ev, d) in recs {
            append_audit(&tx, t, actor, ev, &d).unwrap();
        }
        // A record whose details are not JSON can only be planted by hand (the service writes
        // JSON, and migration 8's expression index `audit_request` refuses such a row): drop
        // the index as such a hand would, to show the search still reads past it.
        tx.execute_batch("DROP TRIGGER audit_no_update; DROP INDEX IF EXISTS audit_request;")
            .unwrap();
        tx.execute(
            "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES (6, 600, 'carol', 'approval', 'not json', '', '')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        s
    }

    fn seqs(s: &Store, f: &AuditFilter, before: u64, floor: u64, limit: u32) -> Vec<u64> {
        let w = AuditWindow {
            before,
            floor,
            limit,
        };
        audit_search(s.conn(), f, &w)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    #[test]
    fn filters_match_actor_request_owner_role_event_and_time() {
        let s = store();
        let all = AuditFilter::default();
        assert_eq!(seqs(&s, &all, 100, 1, 100), [6, 5, 4, 3, 2, 1]);
        let user = |u: &str| AuditFilter {
            user: Some(u.into()),
            ..AuditFilter::default()
        };
        // alice: her request, carol's approval of it, her removal (details.user).
        assert_eq!(seqs(&s, &user("alice"), 100, 1, 100), [4, 3, 1]);
        assert_eq!(seqs(&s, &user("carol"), 100, 1, 100), [6, 5, 3]);
        let role = AuditFilter {
            role: Some("web".into()),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(&s, &role, 100, 1, 100), [5, 2]);
        let ev = AuditFilter {
            event: Some("approval".into()),
            since: Some(300),
            until: Some(500),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(&s, &ev, 100, 1, 100), [5, 3]);
        // Window and limit.
        assert_eq!(seqs(&s, &all, 5, 2, 100), [4, 3, 2]);
        assert_eq!(seqs(&s, &all, 100, 1, 2), [6, 5]);
        assert_eq!(seqs(&s, &all, 1, 1, 100), Vec::<u64>::new());
    }

    #[test]
    fn records_after_a_seq_and_one_record() {
        let s = store();
        let after: Vec<u64> = audit_after(s.conn(), 2, 3)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(after, [3, 4, 5]);
        assert_eq!(audit_record(s.conn(), 4).unwrap().unwrap().actor, "admin:0");
        assert!(audit_record(s.conn(), 60).unwrap().is_none());
    }
}
