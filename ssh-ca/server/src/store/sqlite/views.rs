//! The web pages' reads (issue 16): elevations in force and one request's audit records.

use rusqlite::Connection;

use super::{i, json_vec, u};
use crate::audit::Record;
use crate::error::Result;
use crate::store::views::{AccessPage, AccessQuery, Elevation, RequestAudit};
use jit_api::wire::RequestState;

/// The SQL function `jit_host_match(selector, host)`: whether the host filter `host` equals
/// the selector or is a name it matches ([`jit_common::host::matches`], the hosts' own rule).
/// Registered on every connection (writer and readers).
pub fn register_functions(c: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    c.create_scalar_function(
        "jit_host_match",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let sel: String = ctx.get(0)?;
            let host: String = ctx.get(1)?;
            Ok(sel == host || jit_common::host::matches(&sel, &host))
        },
    )?;
    Ok(())
}

/// The elevations in force at `?1` (`?2`: the approved state), spelled once for the list, the
/// page and its count.
const IN_FORCE: &str = "FROM requests r JOIN certs c ON c.request_id = r.id \
     WHERE r.state = ?2 AND c.revoked = 0 AND c.certificate != '' \
       AND c.valid_after <= ?1 AND c.valid_before > ?1 \
       AND c.serial = (SELECT MAX(serial) FROM certs WHERE request_id = r.id AND certificate != '')";

/// The order of the lists (the request id last: a total order, so pages neither repeat nor
/// skip a row).
const ORDER: &str = "ORDER BY r.role, r.hosts, r.user, c.valid_before, r.id";

const COLUMNS: &str =
    "r.id, r.user, r.role, r.hosts, r.sudo, c.serial, c.valid_after, c.valid_before";

fn elevation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Elevation> {
    let id: String = r.get(0)?;
    let hosts: String = r.get(3)?;
    Ok(Elevation {
        hosts: json_vec(3, "requests.hosts", &format!("request {id}"), &hosts)?,
        request_id: id,
        user: r.get(1)?,
        role: r.get(2)?,
        sudo: r.get::<_, i64>(4)? != 0,
        serial: u(r.get(5)?),
        valid_after: u(r.get(6)?),
        valid_before: u(r.get(7)?),
    })
}

/// Approved requests whose newest completed certificate is unrevoked and valid at `now`,
/// by role, host selectors, user.
pub fn active_elevations(c: &Connection, now: u64) -> Result<Vec<Elevation>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} {IN_FORCE} {ORDER}"))?;
    let approved = RequestState::Approved.as_str();
    let rows = st.query_map(rusqlite::params![i(now), approved], elevation)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The visibility rule and the filters of [`access_page`] (parameters ?3..?8). Visibility is
/// `lifecycle::authorize(See)`'s: an auditor sees all; others their own (`r.user = me`) and
/// those of the roles they may approve (the caller computes that list from the policy with
/// `Role::may_approve`, the same call `authorize` makes).
const VISIBLE_AND_FILTERED: &str = "AND (?3 = 1 OR r.user = ?4 \
       OR r.role IN (SELECT value FROM json_each(?5))) \
     AND (?6 IS NULL OR r.role = ?6) \
     AND (?7 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.hosts) h \
                                WHERE jit_host_match(h.value, ?7))) \
     AND (?8 IS NULL OR r.user = ?8)";

/// One page of the elevations in force that `q`'s viewer may see, with the filters, and how
/// many match in all; both read in one transaction (one snapshot).
pub fn access_page(c: &Connection, q: &AccessQuery) -> Result<AccessPage> {
    let tx = c.unchecked_transaction()?;
    let approves = serde_json::Value::from(q.approves.clone()).to_string();
    let approved = RequestState::Approved.as_str();
    let total: i64 = tx
        .prepare_cached(&format!(
            "SELECT COUNT(*) {IN_FORCE} {VISIBLE_AND_FILTERED}"
        ))?
        .query_row(
            rusqlite::params![
                i(q.now),
                approved,
                q.see_all,
                q.me,
                approves,
                q.role,
                q.host,
                q.user
            ],
            |r| r.get(0),
        )?;
    let rows = {
        let mut st = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} {IN_FORCE} {VISIBLE_AND_FILTERED} {ORDER} LIMIT ?9 OFFSET ?10"
        ))?;
        let rows = st.query_map(
            rusqlite::params![
                i(q.now),
                approved,
                q.see_all,
                q.me,
                approves,
                q.role,
                q.host,
                q.user,
                i64::from(q.limit),
                i(q.offset)
            ],
            elevation,
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;
    Ok(AccessPage {
        rows,
        total: u(total),
    })
}

/// The audit records naming request `id` (`details.request_id`): the newest `limit` of them
/// in chain order, and how many there are in all. Both queries use the expression index
/// `audit_request` (migration 8): the SQL must spell [`REQUEST_ID`] exactly as the index
/// does, or SQLite scans the whole trail.
pub fn request_audit(c: &Connection, id: &str, limit: u32) -> Result<RequestAudit> {
    let total: i64 = c
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM audit WHERE {REQUEST_ID} = ?1"
        ))?
        .query_row([id], |r| r.get(0))?;
    let mut st = c.prepare_cached(&format!(
        "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit \
         WHERE {REQUEST_ID} = ?1 ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(rusqlite::params![id, i64::from(limit)], |r| {
        Ok(Record {
            seq: u(r.get(0)?),
            time: u(r.get(1)?),
            actor: r.get(2)?,
            event: r.get(3)?,
            details: r.get(4)?,
            prev_hash: r.get(5)?,
            hash: r.get(6)?,
        })
    })?;
    let mut records = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    records.reverse();
    Ok(RequestAudit {
        records,
        total: u(total),
    })
}

/// The indexed expression (migration 8's `audit_request`), spelled once.
pub(crate) const REQUEST_ID: &str =
    "(CASE WHEN json_valid(details) THEN json_extract(details, '$.request_id') END)";

#[cfg(test)]
mod tests {
    use super::super::tests::{cert, request};
    use super::*;
    use crate::store::StoreOps;
    use crate::store::sqlite::Store;

    #[test]
    fn elevations_are_approved_requests_with_a_valid_newest_certificate() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        let approve = |id: &str, user: &str| {
            let mut r = request(id, user, 1);
            r.state = RequestState::Approved;
            r.approved_at = Some(2);
            c.insert_request(&r).unwrap();
        };
        approve("r-live", "alice");
        c.insert_cert(&cert(1, "r-live", 100)).unwrap();
        // Extended: the newest certificate counts, not an older one still unrevoked.
        approve("r-ext", "bob");
        c.insert_cert(&cert(2, "r-ext", 50)).unwrap();
        c.insert_cert(&cert(3, "r-ext", 200)).unwrap();
        // Revoked, expired, a later window, not approved: none is access now.
        approve("r-revoked", "carol");
        c.insert_cert(&cert(4, "r-revoked", 100)).unwrap();
        c.revoke_cert(4).unwrap();
        approve("r-expired", "dave");
        c.insert_cert(&cert(5, "r-expired", 9)).unwrap();
        approve("r-later", "erin");
        let mut later = cert(6, "r-later", 300);
        later.valid_after = 20;
        c.insert_cert(&later).unwrap();
        c.insert_request(&request("r-pending", "frank", 1)).unwrap();
        c.insert_cert(&cert(7, "r-pending", 100)).unwrap();
        let got = c.active_elevations(10).unwrap();
        let ids: Vec<(&str, u64)> = got
            .iter()
            .map(|e| (e.request_id.as_str(), e.valid_before))
            .collect();
        assert_eq!(ids, vec![("r-live", 100), ("r-ext", 200)]);
        assert_eq!(got[1].serial, 3);
        assert_eq!(got[0].hosts, vec!["db-*".to_string()]);
        assert!(got[0].sudo);
        // Later: the window started; at its end, nothing.
        let later: Vec<String> = c
            .active_elevations(25)
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert!(later.contains(&"r-later".to_string()), "{later:?}");
        assert!(c.active_elevations(300).unwrap().is_empty());
    }

    #[test]
    fn a_requests_audit_records_are_exactly_those_naming_it_in_order() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        // An event without a notification (those need the request stored).
        let ev = crate::audit::event::USER_ADD;
        for (t, details) in [
            (1, serde_json::json!({"request_id": "r-1"})),
            (2, serde_json::json!({"request_id": "r-10"})),
            (3, serde_json::json!({"reason": "mentions r-1 in text"})),
            (4, serde_json::json!({"request_id": "r-1", "n": 2})),
            (5, serde_json::json!({"request_id": "r-2"})),
        ] {
            c.append_audit(t, "a", ev, &details).unwrap();
        }
        let a = c.request_audit("r-1", 500).unwrap();
        let times: Vec<u64> = a.records.iter().map(|r| r.time).collect();
        assert_eq!((times, a.total), (vec![1, 4], 2));
        // Over the limit: the NEWEST records (a revocation is never the one left out), and
        // the total says how many there are.
        let a = c.request_audit("r-1", 1).unwrap();
        assert_eq!((a.records.len(), a.records[0].time, a.total), (1, 4, 2));
        assert!(c.request_audit("r-3", 500).unwrap().records.is_empty());
        assert!(c.request_audit("", 500).unwrap().records.is_empty());
    }

    /// Migration 8 on a version-7 trail: the records are kept and found through the index.
    #[test]
    fn migration_8_indexes_an_existing_trail() {
        use super::super::migrations::MIGRATIONS;
        let c = Connection::open_in_memory().unwrap();
        for m in &MIGRATIONS[..7] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", 7).unwrap();
        c.execute(
            "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) \
             VALUES (1, 5, 'a', 'request', '{\"request_id\":\"r-old\"}', 'p', 'h')",
            [],
        )
        .unwrap();
        // A record whose details are not JSON (a hand-edited database) neither stops the
        // migration nor is found.
        c.execute(
            "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) \
             VALUES (2, 6, 'a', 'request', 'not json', 'h', 'h2')",
            [],
        )
        .unwrap();
        let s = Store::init(c).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let a = s.conn().request_audit("r-old", 10).unwrap();
        assert_eq!((a.records.len(), a.total), (1, 1));
    }

    /// The page's queries use the expression index: no scan of the audit trail per view.
    #[test]
    fn request_audit_queries_use_the_index_not_a_scan() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        for q in [
            format!("SELECT COUNT(*) FROM audit WHERE {REQUEST_ID} = ?1 AND ?2 > 0"),
            format!(
                "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit \
                 WHERE {REQUEST_ID} = ?1 ORDER BY seq DESC LIMIT ?2"
            ),
        ] {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {q}")).unwrap();
            let plan: Vec<String> = st
                .query_map(rusqlite::params!["r-1", 5], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(
                plan.contains("USING INDEX audit_request")
                    || plan.contains("USING COVERING INDEX audit_request"),
                "{q}: {plan}"
            );
            assert!(!plan.contains("SCAN audit"), "{q}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{q}: {plan}");
        }
        // The source spells the expression as the migration does.
        let m = crate::store::sqlite::migrations::MIGRATIONS[7];
        assert!(m.contains(&format!("ON audit({REQUEST_ID}, seq)")), "{m}");
    }
}
