//! The web pages' reads (issue 16): elevations in force and one request's audit records.

use rusqlite::Connection;

use super::{i, json_vec, u};
use crate::audit::Record;
use crate::error::Result;
use crate::store::views::Elevation;

/// Approved requests whose newest completed certificate is unrevoked and valid at `now`,
/// by role, host selectors, user.
pub fn active_elevations(c: &Connection, now: u64) -> Result<Vec<Elevation>> {
    let mut st = c.prepare_cached(
        "SELECT r.id, r.user, r.role, r.hosts, r.sudo, c.serial, c.valid_after, c.valid_before \
         FROM requests r JOIN certs c ON c.request_id = r.id \
         WHERE r.state = 'approved' AND c.revoked = 0 AND c.certificate != '' \
           AND c.valid_after <= ?1 AND c.valid_before > ?1 \
           AND c.serial = (SELECT MAX(serial) FROM certs WHERE request_id = r.id AND certificate != '') \
         ORDER BY r.role, r.hosts, r.user, c.valid_before",
    )?;
    let rows = st.query_map([i(now)], |r| {
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
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The audit records naming request `id` (`details.request_id`), in chain order, at most
/// `limit`. The substring test first keeps the JSON parse to the few records that can match.
pub fn request_audit(c: &Connection, id: &str, limit: u32) -> Result<Vec<Record>> {
    let mut st = c.prepare_cached(
        "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit \
         WHERE instr(details, ?1) > 0 AND json_extract(details, '$.request_id') = ?1 \
         ORDER BY seq LIMIT ?2",
    )?;
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
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
