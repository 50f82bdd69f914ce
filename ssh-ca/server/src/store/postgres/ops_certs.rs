//! Issued certificates and serials (as store/sqlite/certs.rs). Serials come from the
//! sequence `cert_serial_blocks` (INCREMENT BY 1024): a block and a single serial are each
//! one `nextval`, so they are unique across replicas and every later one is above every
//! earlier one; not dense (a replica's unused block remainder is skipped, never reused).

use std::collections::HashMap;

use tokio_postgres::Row;

use super::conn::{PgConn, get};
use super::{i, json_vec, to_json, u};
use crate::error::{CaError, Result};
use crate::store::{CertKey, CertRef, CertRow, LeanGrant, RevokedCert};

/// The sequence's increment: the largest block one `nextval` reserves.
pub(crate) const BLOCK: u64 = 1024;

const CERT_COLS: &str = "serial, request_id, \"user\", grant_id, valid_after, valid_before, issued_at, certificate, grant_doc, grant_hosts, revoked";

fn cert_from_row(r: &Row) -> Result<CertRow> {
    let serial = u(get(r, 0)?);
    Ok(CertRow {
        serial,
        request_id: get(r, 1)?,
        user: get(r, 2)?,
        grant_id: get(r, 3)?,
        valid_after: u(get(r, 4)?),
        valid_before: u(get(r, 5)?),
        issued_at: u(get(r, 6)?),
        certificate: get(r, 7)?,
        grant_doc: get(r, 8)?,
        grant_hosts: get::<Option<String>>(r, 9)?
            .map(|s| {
                json_vec(
                    "certificate grant_hosts",
                    &format!("certificate serial {serial}"),
                    &s,
                )
            })
            .transpose()?
            .unwrap_or_default(),
        revoked: get::<i64>(r, 10)? != 0,
    })
}

const REVOKED_COLS: &str = "serial, grant_id, \"user\", valid_before, revoked";

fn revoked_from_row(r: &Row) -> Result<RevokedCert> {
    Ok(RevokedCert {
        serial: u(get(r, 0)?),
        grant_id: get(r, 1)?,
        user: get(r, 2)?,
        valid_before: u(get(r, 3)?),
        revoked: get::<i64>(r, 4)? != 0,
    })
}

fn next_block(c: &PgConn) -> Result<u64> {
    let v: i64 = get(&c.one("SELECT nextval('cert_serial_blocks')", &[])?, 0)?;
    Ok(u(v))
}

pub(crate) fn reserve_serial(c: &PgConn, request_id: &str, user: &str, now: u64) -> Result<u64> {
    let serial = next_block(c)?;
    c.exec(
        "INSERT INTO certs (serial, request_id, \"user\", valid_after, valid_before, issued_at, certificate) \
         VALUES ($1, $2, $3, 0, 0, $4, '')",
        &[&i(serial), &request_id, &user, &i(now)],
    )?;
    Ok(serial)
}

pub(crate) fn reserve_serial_block(c: &PgConn, n: u64) -> Result<u64> {
    if n == 0 || n > BLOCK {
        return Err(CaError::Db(format!(
            "a serial block of {n} on PostgreSQL (1 to {BLOCK})"
        )));
    }
    next_block(c)
}

pub(crate) fn insert_cert(c: &PgConn, cert: &CertRow) -> Result<()> {
    c.exec(
        "INSERT INTO certs (serial, request_id, \"user\", grant_id, valid_after, valid_before, \
         issued_at, certificate, grant_doc, grant_hosts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &i(cert.serial),
            &cert.request_id,
            &cert.user,
            &cert.grant_id,
            &i(cert.valid_after),
            &i(cert.valid_before),
            &i(cert.issued_at),
            &cert.certificate,
            &cert.grant_doc,
            &cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
        ],
    )?;
    Ok(())
}

pub(crate) fn complete_cert(c: &PgConn, cert: &CertRow) -> Result<()> {
    c.exec(
        "UPDATE certs SET grant_id = $2, valid_after = $3, valid_before = $4, certificate = $5, \
         grant_doc = $6, grant_hosts = $7 WHERE serial = $1",
        &[
            &i(cert.serial),
            &cert.grant_id,
            &i(cert.valid_after),
            &i(cert.valid_before),
            &cert.certificate,
            &cert.grant_doc,
            &cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
        ],
    )?;
    Ok(())
}

pub(crate) fn latest_serial(c: &PgConn, request_id: &str) -> Result<Option<u64>> {
    match c.opt(
        "SELECT serial FROM certs WHERE request_id = $1 AND certificate != '' ORDER BY serial DESC LIMIT 1",
        &[&request_id],
    )? {
        Some(r) => Ok(Some(u(get(&r, 0)?))),
        None => Ok(None),
    }
}

pub(crate) fn latest_cert(c: &PgConn, request_id: &str) -> Result<Option<CertRow>> {
    c.opt(
        &format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = $1 AND certificate != '' ORDER BY serial DESC LIMIT 1"
        ),
        &[&request_id],
    )?
    .as_ref()
    .map(cert_from_row)
    .transpose()
}

pub(crate) fn revoke_live_certs(c: &PgConn, request_id: &str) -> Result<Vec<CertRow>> {
    let rows = c
        .rows(
            &format!(
                "SELECT {CERT_COLS} FROM certs WHERE request_id = $1 AND revoked = 0 AND certificate != '' ORDER BY serial"
            ),
            &[&request_id],
        )?
        .iter()
        .map(cert_from_row)
        .collect::<Result<Vec<_>>>()?;
    c.exec(
        "UPDATE certs SET revoked = 1 WHERE request_id = $1 AND revoked = 0",
        &[&request_id],
    )?;
    Ok(rows)
}

pub(crate) fn active_grant_count(c: &PgConn, user: &str, now: u64) -> Result<u64> {
    let n: i64 = get(
        &c.one(
            // COUNT(*) = COUNT(DISTINCT request_id): see the SQLite statement's docs.
            "SELECT COUNT(*) FROM certs WHERE \"user\" = $1 AND valid_before > $2 AND revoked = 0",
            &[&user, &i(now)],
        )?,
        0,
    )?;
    Ok(u(n))
}

pub(crate) fn revoke_certs(c: &PgConn, request_id: &str) -> Result<Vec<RevokedCert>> {
    c.exec(
        "UPDATE certs SET revoked = 1 WHERE request_id = $1",
        &[&request_id],
    )?;
    c.rows(
        &format!("SELECT {REVOKED_COLS} FROM certs WHERE request_id = $1 ORDER BY serial"),
        &[&request_id],
    )?
    .iter()
    .map(revoked_from_row)
    .collect()
}

pub(crate) fn revoke_user_certs(c: &PgConn, user: &str, now: u64) -> Result<Vec<RevokedCert>> {
    let rows = c
        .rows(
            &format!(
                "SELECT {REVOKED_COLS} FROM certs WHERE \"user\" = $1 AND revoked = 0 AND certificate != '' \
                 AND valid_before > $2 ORDER BY serial"
            ),
            &[&user, &i(now)],
        )?
        .iter()
        .map(revoked_from_row)
        .collect::<Result<Vec<_>>>()?;
    for r in &rows {
        c.exec(
            "UPDATE certs SET revoked = 1 WHERE serial = $1",
            &[&i(r.serial)],
        )?;
    }
    Ok(rows)
}

pub(crate) fn revoked_certs(c: &PgConn, since: u64) -> Result<Vec<RevokedCert>> {
    c.rows(
        &format!(
            "SELECT {REVOKED_COLS} FROM certs WHERE revoked = 1 AND valid_before > $1 ORDER BY serial"
        ),
        &[&i(since)],
    )?
    .iter()
    .map(revoked_from_row)
    .collect()
}

pub(crate) fn active_grants(c: &PgConn, now: u64) -> Result<Vec<CertRow>> {
    c.rows(
        &format!(
            "SELECT {CERT_COLS} FROM certs WHERE revoked = 0 AND grant_doc IS NOT NULL AND valid_before > $1 ORDER BY serial"
        ),
        &[&i(now)],
    )?
    .iter()
    .map(cert_from_row)
    .collect()
}

/// [`active_grants`] without the texts (the rows come whole from the server: lean ones).
pub(crate) fn active_grants_lean(
    c: &PgConn,
    now: u64,
    each: &mut dyn FnMut(LeanGrant) -> Result<()>,
) -> Result<()> {
    let rows = c.rows(
        "SELECT serial, grant_hosts, valid_before FROM certs WHERE revoked = 0 \
         AND grant_doc IS NOT NULL AND valid_before > $1 ORDER BY serial",
        &[&i(now)],
    )?;
    for r in &rows {
        let serial = u(get(r, 0)?);
        let hosts = get::<Option<&str>>(r, 1)?
            .map(|s| {
                json_vec(
                    "certificate grant_hosts",
                    &format!("certificate serial {serial}"),
                    s,
                )
            })
            .transpose()?
            .unwrap_or_default();
        each(LeanGrant {
            serial,
            grant_hosts: hosts,
            valid_before: u(get(r, 2)?),
        })?;
    }
    Ok(())
}

/// The grant documents of the active certificates among `serials`, in serial order.
pub(crate) fn grant_docs_by_serials(
    c: &PgConn,
    serials: &[u64],
    now: u64,
    each: &mut dyn FnMut(u64, u64, &str) -> Result<()>,
) -> Result<()> {
    if serials.is_empty() {
        return Ok(());
    }
    let list: Vec<i64> = serials.iter().map(|s| i(*s)).collect();
    let rows = c.rows(
        "SELECT serial, valid_before, grant_doc FROM certs WHERE serial = ANY($1) \
         AND revoked = 0 AND grant_doc IS NOT NULL AND valid_before > $2 ORDER BY serial",
        &[&list, &i(now)],
    )?;
    for r in &rows {
        let doc: &str = get(r, 2)?;
        each(u(get(r, 0)?), u(get(r, 1)?), doc)?;
    }
    Ok(())
}

pub(crate) fn latest_certs_of(c: &PgConn, ids: &[&str]) -> Result<HashMap<String, CertRow>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&str> = ids.to_vec();
    for r in c.rows(
        &format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = ANY($1::text[]) \
             AND certificate != '' ORDER BY request_id, serial DESC"
        ),
        &[&ids],
    )? {
        let cert = cert_from_row(&r)?;
        out.entry(cert.request_id.clone()).or_insert(cert);
    }
    Ok(out)
}

pub(crate) fn revoke_cert(c: &PgConn, serial: u64) -> Result<()> {
    c.exec(
        "UPDATE certs SET revoked = 1 WHERE serial = $1",
        &[&i(serial)],
    )?;
    Ok(())
}

pub(crate) fn find_cert(c: &PgConn, key: &CertKey) -> Result<Option<CertRef>> {
    let row = match key {
        CertKey::Serial(s) => c.opt(
            "SELECT serial, grant_id, request_id, revoked FROM certs WHERE serial = $1",
            &[&i(*s)],
        )?,
        CertKey::Grant(g) => c.opt(
            "SELECT serial, grant_id, request_id, revoked FROM certs WHERE grant_id = $1 ORDER BY serial LIMIT 1",
            &[g],
        )?,
    };
    row.map(|r| {
        Ok(CertRef {
            serial: u(get(&r, 0)?),
            grant_id: get(&r, 1)?,
            request_id: get(&r, 2)?,
            revoked: get::<i64>(&r, 3)? != 0,
        })
    })
    .transpose()
}
