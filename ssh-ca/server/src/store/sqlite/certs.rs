//! Issued certificates and serials.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{i, json_vec, to_json, u};
use crate::error::Result;
use crate::store::{CertKey, CertRef, CertRow, LeanGrant, RevokedCert};

const CERT_COLS: &str = "serial, request_id, user, grant_id, valid_after, valid_before, issued_at, certificate, grant_doc, grant_hosts, revoked";

fn cert_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    let serial = u(r.get(0)?);
    Ok(CertRow {
        serial,
        request_id: r.get(1)?,
        user: r.get(2)?,
        grant_id: r.get(3)?,
        valid_after: u(r.get(4)?),
        valid_before: u(r.get(5)?),
        issued_at: u(r.get(6)?),
        certificate: r.get(7)?,
        grant_doc: r.get(8)?,
        grant_hosts: r
            .get::<_, Option<String>>(9)?
            .map(|s| {
                let row = format!("certificate serial {serial}");
                json_vec(9, "certificate grant_hosts", &row, &s)
            })
            .transpose()?
            .unwrap_or_default(),
        revoked: r.get::<_, i64>(10)? != 0,
    })
}

/// The columns of [`RevokedCert`]: nothing here is parsed beyond integers and text.
const REVOKED_COLS: &str = "serial, grant_id, user, valid_before, revoked";

fn revoked_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevokedCert> {
    Ok(RevokedCert {
        serial: u(r.get(0)?),
        grant_id: r.get(1)?,
        user: r.get(2)?,
        valid_before: u(r.get(3)?),
        revoked: r.get::<_, i64>(4)? != 0,
    })
}

/// Reserves the next serial (strictly greater than every serial ever issued).
pub fn reserve_serial(c: &Connection, request_id: &str, user: &str, now: u64) -> Result<u64> {
    c.prepare_cached(
        "INSERT INTO certs (request_id, user, valid_after, valid_before, issued_at, certificate) \
         VALUES (?1, ?2, 0, 0, ?3, '')",
    )?
    .execute(params![request_id, user, i(now)])?;
    Ok(u(c.last_insert_rowid()))
}

/// Reserves `n` serials at once for certificates signed before their transaction (the
/// issuance fast path): returns the first; the block is `first..first + n`. AUTOINCREMENT's
/// counter is moved past the block in the same (committed) transaction, so
/// [`reserve_serial`] and later blocks never hand out these numbers, even after a restart
/// (unused serials of a block are skipped, never reused).
pub fn reserve_serial_block(c: &Connection, n: u64) -> Result<u64> {
    let seq: i64 = c
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'certs'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let max: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(serial), 0) FROM certs")?
        .query_row([], |r| r.get(0))?;
    let first = u(seq.max(max)) + 1;
    let last = first + n - 1;
    let updated = c
        .prepare_cached("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'certs'")?
        .execute([i(last)])?;
    if updated == 0 {
        c.prepare_cached("INSERT INTO sqlite_sequence (name, seq) VALUES ('certs', ?1)")?
            .execute([i(last)])?;
    }
    Ok(first)
}

/// Stores a certificate under a serial from [`reserve_serial_block`].
pub fn insert_cert(c: &Connection, cert: &CertRow) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO certs (serial, request_id, user, grant_id, valid_after, valid_before, \
         issued_at, certificate, grant_doc, grant_hosts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        i(cert.serial),
        cert.request_id,
        cert.user,
        cert.grant_id,
        i(cert.valid_after),
        i(cert.valid_before),
        i(cert.issued_at),
        cert.certificate,
        cert.grant_doc,
        cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
    ])?;
    Ok(())
}

/// Stores what was issued under a reserved serial.
pub fn complete_cert(c: &Connection, cert: &CertRow) -> Result<()> {
    c.prepare_cached(
        "UPDATE certs SET grant_id = ?2, valid_after = ?3, valid_before = ?4, certificate = ?5, \
         grant_doc = ?6, grant_hosts = ?7 WHERE serial = ?1",
    )?
    .execute(params![
        i(cert.serial),
        cert.grant_id,
        i(cert.valid_after),
        i(cert.valid_before),
        cert.certificate,
        cert.grant_doc,
        cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
    ])?;
    Ok(())
}

/// The serial of the newest certificate of a request (parses nothing else of the row).
pub fn latest_serial(c: &Connection, request_id: &str) -> Result<Option<u64>> {
    Ok(c
        .prepare_cached(
            "SELECT serial FROM certs WHERE request_id = ?1 AND certificate != '' ORDER BY serial DESC LIMIT 1",
        )?
        .query_row([request_id], |r| r.get::<_, i64>(0))
        .optional()?
        .map(u))
}

/// The newest certificate of a request.
pub fn latest_cert(c: &Connection, request_id: &str) -> Result<Option<CertRow>> {
    Ok(c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = ?1 AND certificate != '' ORDER BY serial DESC LIMIT 1"
        ))?
        .query_row([request_id], cert_from_row)
        .optional()?)
}

/// Marks the unrevoked certificates of a request revoked (an extension supersedes them);
/// returns those it revoked.
pub fn revoke_live_certs(c: &Connection, request_id: &str) -> Result<Vec<CertRow>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = ?1 AND revoked = 0 AND certificate != '' ORDER BY serial"
        ))?
        .query_map([request_id], cert_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    c.prepare_cached("UPDATE certs SET revoked = 1 WHERE request_id = ?1 AND revoked = 0")?
        .execute([request_id])?;
    Ok(rows)
}

/// The count of [`active_grant_count`]: a range of the covering index `certs_user`, no
/// table rows, no temporary b-tree. `COUNT(*)` equals the former `COUNT(DISTINCT
/// request_id)`: a request has at most one unrevoked certificate with a window (an
/// extension revokes the ones it supersedes in its transaction; an approval issues once; a
/// serial reserved but not completed has `valid_before = 0`), as the API test
/// `one_live_certificate_per_request` checks.
pub const ACTIVE_GRANT_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM certs WHERE user = ?1 AND valid_before > ?2 AND revoked = 0";

/// How many of `user`'s requests have an unrevoked certificate valid after `now`.
pub fn active_grant_count(c: &Connection, user: &str, now: u64) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(ACTIVE_GRANT_COUNT_SQL)?
        .query_row(params![user, i(now)], |r| r.get(0))?;
    Ok(u(n))
}

/// Marks every certificate of a request revoked; returns them.
pub fn revoke_certs(c: &Connection, request_id: &str) -> Result<Vec<RevokedCert>> {
    c.prepare_cached("UPDATE certs SET revoked = 1 WHERE request_id = ?1")?
        .execute([request_id])?;
    Ok(c.prepare_cached(&format!(
        "SELECT {REVOKED_COLS} FROM certs WHERE request_id = ?1 ORDER BY serial"
    ))?
    .query_map([request_id], revoked_from_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Marks every unrevoked certificate of `user` whose window has not ended at `now` revoked,
/// whatever its request's state; returns those it revoked.
pub fn revoke_user_certs(c: &Connection, user: &str, now: u64) -> Result<Vec<RevokedCert>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {REVOKED_COLS} FROM certs WHERE user = ?1 AND revoked = 0 AND certificate != '' \
             AND valid_before > ?2 ORDER BY serial"
        ))?
        .query_map(params![user, i(now)], revoked_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare_cached("UPDATE certs SET revoked = 1 WHERE serial = ?1")?;
    for r in &rows {
        st.execute([i(r.serial)])?;
    }
    Ok(rows)
}

/// Revoked certificates whose window ended after `since` (older ones need no listing).
pub fn revoked_certs(c: &Connection, since: u64) -> Result<Vec<RevokedCert>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {REVOKED_COLS} FROM certs WHERE revoked = 1 AND valid_before > ?1 ORDER BY serial"
    ))?
    .query_map([i(since)], revoked_from_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Unrevoked certificates with a grant whose window has not ended at `now`.
pub fn active_grants(c: &Connection, now: u64) -> Result<Vec<CertRow>> {
    Ok(c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE revoked = 0 AND grant_doc IS NOT NULL AND valid_before > ?1 ORDER BY serial"
        ))?
        .query_map([i(now)], cert_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// [`active_grants`] without the texts, streamed (see `StoreOps::active_grants_lean`).
pub fn active_grants_lean(
    c: &Connection,
    now: u64,
    each: &mut dyn FnMut(LeanGrant) -> Result<()>,
) -> Result<()> {
    let mut st = c.prepare_cached(
        "SELECT serial, grant_hosts, valid_before FROM certs WHERE revoked = 0 \
         AND grant_doc IS NOT NULL AND valid_before > ?1 ORDER BY serial",
    )?;
    let mut rows = st.query([i(now)])?;
    while let Some(r) = rows.next()? {
        let serial = u(r.get(0)?);
        let hosts = match r.get::<_, Option<String>>(1)? {
            Some(s) => json_vec(
                1,
                "certificate grant_hosts",
                &format!("certificate serial {serial}"),
                &s,
            )?,
            None => Vec::new(),
        };
        each(LeanGrant {
            serial,
            grant_hosts: hosts,
            valid_before: u(r.get(2)?),
        })?;
    }
    Ok(())
}

/// The grant documents of the active certificates among `serials`, in serial order.
pub fn grant_docs_by_serials(
    c: &Connection,
    serials: &[u64],
    now: u64,
    each: &mut dyn FnMut(u64, u64, &str) -> Result<()>,
) -> Result<()> {
    if serials.is_empty() {
        return Ok(());
    }
    let list =
        serde_json::to_string(serials).map_err(|e| crate::error::CaError::Db(e.to_string()))?;
    let mut st = c.prepare_cached(
        "SELECT serial, valid_before, grant_doc FROM certs WHERE serial IN \
         (SELECT value FROM json_each(?1)) AND revoked = 0 AND grant_doc IS NOT NULL \
         AND valid_before > ?2 ORDER BY serial",
    )?;
    let mut rows = st.query(params![list, i(now)])?;
    while let Some(r) = rows.next()? {
        let doc: String = r.get(2)?;
        each(u(r.get(0)?), u(r.get(1)?), &doc)?;
    }
    Ok(())
}

/// The newest certificate of every request in `ids` that has one, in one query.
pub fn latest_certs_of(c: &Connection, ids: &[&str]) -> Result<HashMap<String, CertRow>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut st = c.prepare_cached(&format!(
        "SELECT {CERT_COLS} FROM certs WHERE request_id IN (SELECT value FROM json_each(?1)) \
         AND certificate != '' ORDER BY request_id, serial DESC"
    ))?;
    for cert in st.query_map([super::requests::id_list(ids)], cert_from_row)? {
        let cert = cert?;
        // Newest first within a request: keep the first seen.
        out.entry(cert.request_id.clone()).or_insert(cert);
    }
    Ok(out)
}

/// Marks one certificate revoked.
pub fn revoke_cert(c: &Connection, serial: u64) -> Result<()> {
    c.prepare_cached("UPDATE certs SET revoked = 1 WHERE serial = ?1")?
        .execute([i(serial)])?;
    Ok(())
}

/// The certificate with this serial or grant id.
pub fn find_cert(c: &Connection, key: &CertKey) -> Result<Option<CertRef>> {
    let (sql, arg): (&str, rusqlite::types::Value) = match key {
        CertKey::Serial(s) => (
            "SELECT serial, grant_id, request_id, revoked FROM certs WHERE serial = ?1",
            rusqlite::types::Value::Integer(i(*s)),
        ),
        CertKey::Grant(g) => (
            "SELECT serial, grant_id, request_id, revoked FROM certs WHERE grant_id = ?1",
            rusqlite::types::Value::Text(g.clone()),
        ),
    };
    Ok(c.prepare_cached(sql)?
        .query_row(params![arg], |r| {
            Ok(CertRef {
                serial: u(r.get(0)?),
                grant_id: r.get(1)?,
                request_id: r.get(2)?,
                revoked: r.get::<_, i64>(3)? != 0,
            })
        })
        .optional()?)
}
