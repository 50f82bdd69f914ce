//! Web sessions (issue 16): one-time login links and browser sessions. Only SHA-256 hashes
//! of their secrets are stored.

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{i, u};
use crate::error::Result;
use crate::store::{WebLoginRow, WebSessionRow};

const LOGIN_COLS: &str =
    "token_hash, user, key_fingerprint, key_flags, created_at, expires_at, used_at, audit_seq";
const SESSION_COLS: &str = "id, secret_hash, user, key_fingerprint, key_flags, created_at, \
                            last_seen, expires_at, ended_at, ended_by, idle_timeout_secs";

fn flags(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn login_row(r: &Row<'_>) -> rusqlite::Result<WebLoginRow> {
    Ok(WebLoginRow {
        token_hash: r.get(0)?,
        user: r.get(1)?,
        key_fingerprint: r.get(2)?,
        key_flags: flags(r.get(3)?),
        created_at: u(r.get(4)?),
        expires_at: u(r.get(5)?),
        used_at: r.get::<_, Option<i64>>(6)?.map(u),
        audit_seq: r.get::<_, Option<i64>>(7)?.map(u),
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<WebSessionRow> {
    Ok(WebSessionRow {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        user: r.get(2)?,
        key_fingerprint: r.get(3)?,
        key_flags: flags(r.get(4)?),
        created_at: u(r.get(5)?),
        last_seen: u(r.get(6)?),
        expires_at: u(r.get(7)?),
        ended_at: r.get::<_, Option<i64>>(8)?.map(u),
        ended_by: r.get(9)?,
        idle_secs: u(r.get(10)?),
    })
}

pub fn login_insert(c: &Connection, w: &WebLoginRow) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO web_logins ({LOGIN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        w.token_hash,
        w.user,
        w.key_fingerprint,
        i64::from(w.key_flags),
        i(w.created_at),
        i(w.expires_at),
        w.used_at.map(i),
        w.audit_seq.map(i),
    ])?;
    Ok(())
}

pub fn login_get(c: &Connection, token_hash: &str) -> Result<Option<WebLoginRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {LOGIN_COLS} FROM web_logins WHERE token_hash = ?1"
    ))?
    .query_row([token_hash], login_row)
    .optional()?)
}

pub fn login_consume(c: &Connection, token_hash: &str, now: u64) -> Result<Option<WebLoginRow>> {
    Ok(c.prepare_cached(&format!(
        "UPDATE web_logins SET used_at = ?2 \
             WHERE token_hash = ?1 AND used_at IS NULL AND ?2 < expires_at \
             RETURNING {LOGIN_COLS}"
    ))?
    .query_row(params![token_hash, i(now)], login_row)
    .optional()?)
}

pub fn session_insert(c: &Connection, s: &WebSessionRow) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO web_sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        s.id,
        s.secret_hash,
        s.user,
        s.key_fingerprint,
        i64::from(s.key_flags),
        i(s.created_at),
        i(s.last_seen),
        i(s.expires_at),
        s.ended_at.map(i),
        s.ended_by,
        i(s.idle_secs),
    ])?;
    Ok(())
}

pub fn session_by_secret(c: &Connection, secret_hash: &str) -> Result<Option<WebSessionRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SESSION_COLS} FROM web_sessions WHERE secret_hash = ?1"
    ))?
    .query_row([secret_hash], session_row)
    .optional()?)
}

pub fn session_touch(c: &Connection, id: &str, now: u64) -> Result<()> {
    c.prepare_cached(
        "UPDATE web_sessions SET last_seen = ?2 WHERE id = ?1 AND ended_at IS NULL AND last_seen < ?2",
    )?
    .execute(params![id, i(now)])?;
    Ok(())
}

pub fn session_by_id(c: &Connection, id: &str) -> Result<Option<WebSessionRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SESSION_COLS} FROM web_sessions WHERE id = ?1"
    ))?
    .query_row([id], session_row)
    .optional()?)
}

/// Ends every session of `user` not ended yet, idle or not (a session judged idle under
/// today's settings could otherwise come back under longer ones); returns the ids of those
/// not past their absolute end (`expires_at`), oldest first.
pub fn sessions_end(
    c: &Connection,
    user: &str,
    key_fingerprint: Option<&str>,
    id: Option<&str>,
    now: u64,
    by: &str,
) -> Result<Vec<String>> {
    let mut ids: Vec<(i64, String)> = c
        .prepare_cached(
            "UPDATE web_sessions SET ended_at = ?3, ended_by = ?5 \
             WHERE user = ?1 AND ended_at IS NULL \
               AND (?2 IS NULL OR key_fingerprint = ?2) AND (?4 IS NULL OR id = ?4) \
             RETURNING created_at, id, expires_at",
        )?
        .query_map(params![user, key_fingerprint, i(now), id, by], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?))
        })?
        .filter(|r| !matches!(r, Ok((_, _, end)) if u(*end) <= now))
        .map(|r| r.map(|(at, id, _)| (at, id)))
        .collect::<rusqlite::Result<_>>()?;
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// Withdraws `user`'s unused, unexpired login links (only those of the key
/// `key_fingerprint`, when given): their `expires_at` becomes `now`. Returns how many.
pub fn logins_withdraw(
    c: &Connection,
    user: &str,
    key_fingerprint: Option<&str>,
    now: u64,
) -> Result<usize> {
    Ok(c.prepare_cached(
        "UPDATE web_logins SET expires_at = ?3 \
         WHERE user = ?1 AND used_at IS NULL AND ?3 < expires_at \
           AND (?2 IS NULL OR key_fingerprint = ?2)",
    )?
    .execute(params![user, key_fingerprint, i(now)])?)
}

/// How many of `user`'s login links are unused and unexpired at `now`.
pub fn logins_outstanding(c: &Connection, user: &str, now: u64) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM web_logins WHERE user = ?1 AND used_at IS NULL AND ?2 < expires_at",
        )?
        .query_row(params![user, i(now)], |r| r.get(0))?;
    Ok(u(n))
}

pub fn key_registered(c: &Connection, user: &str, key_fingerprint: &str) -> Result<bool> {
    let keys = super::users::user_keys(c, user)?;
    Ok(keys.iter().any(|(line, _)| {
        ssh_key::PublicKey::from_openssh(line)
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string() == key_fingerprint)
            .unwrap_or(false)
    }))
}

pub fn prune(c: &Connection, cutoff: u64) -> Result<usize> {
    let a = c
        .prepare_cached("DELETE FROM web_logins WHERE expires_at < ?1")?
        .execute([i(cutoff)])?;
    let b = c
        .prepare_cached(
            "DELETE FROM web_sessions WHERE expires_at < ?1 OR (ended_at IS NOT NULL AND ended_at < ?1) \
             OR last_seen + idle_timeout_secs < ?1",
        )?
        .execute([i(cutoff)])?;
    Ok(a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOps};

    fn login(hash: &str, expires_at: u64) -> WebLoginRow {
        WebLoginRow {
            token_hash: hash.into(),
            user: "alice".into(),
            key_fingerprint: "SHA256:k".into(),
            key_flags: 2,
            created_at: expires_at - 60,
            expires_at,
            used_at: None,
            audit_seq: Some(7),
        }
    }

    fn session(id: &str, key: &str, created: u64) -> WebSessionRow {
        WebSessionRow {
            id: id.into(),
            secret_hash: format!("h-{id}"),
            user: "alice".into(),
            key_fingerprint: key.into(),
            key_flags: 0,
            created_at: created,
            last_seen: created,
            expires_at: created + 3600,
            idle_secs: 900,
            ended_at: None,
            ended_by: None,
        }
    }

    #[test]
    fn a_login_link_is_consumed_once_and_never_after_its_expiry() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        c.web_login_insert(&login("a", 1060)).unwrap();
        c.web_login_insert(&login("b", 1060)).unwrap();
        assert_eq!(c.web_login_get("a").unwrap(), Some(login("a", 1060)));
        assert_eq!(c.web_login_get("zz").unwrap(), None);
        // At expires_at exactly: refused.
        assert_eq!(c.web_login_consume("b", 1060).unwrap(), None);
        let got = c.web_login_consume("a", 1059).unwrap().unwrap();
        assert_eq!(got.used_at, Some(1059));
        assert_eq!(got.user, "alice");
        assert_eq!(c.web_login_consume("a", 1059).unwrap(), None, "single use");
        assert_eq!(c.web_login_consume("nope", 1000).unwrap(), None);
        assert_eq!(c.web_prune(1061).unwrap(), 2);
    }

    #[test]
    fn sessions_end_by_user_key_or_id_idle_or_not() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        c.web_session_insert(&session("ws-1", "SHA256:a", 1000))
            .unwrap();
        c.web_session_insert(&session("ws-2", "SHA256:b", 1001))
            .unwrap();
        c.web_session_insert(&session("ws-3", "SHA256:a", 1002))
            .unwrap();
        let mut over = session("ws-4", "SHA256:a", 1);
        over.expires_at = 1500;
        c.web_session_insert(&over).unwrap();
        let got = c.web_session_by_secret("h-ws-2").unwrap().unwrap();
        assert_eq!(got.id, "ws-2");
        assert_eq!(got.idle_secs, 900);
        assert_eq!(c.web_session_by_id("ws-2").unwrap(), Some(got));
        assert_eq!(c.web_session_by_id("ws-9").unwrap(), None);
        c.web_session_touch("ws-2", 1500).unwrap();
        c.web_session_touch("ws-2", 1400).unwrap();
        assert_eq!(
            c.web_session_by_secret("h-ws-2")
                .unwrap()
                .unwrap()
                .last_seen,
            1500
        );
        // ws-1 and ws-3 are idle (900 s) at 1903, yet ended too: a longer idle timeout later
        // must not bring them back. ws-4 is past its absolute end: ended, not listed.
        let ended = c
            .web_sessions_end("alice", Some("SHA256:a"), None, 1903, "bob")
            .unwrap();
        assert_eq!(ended, vec!["ws-1".to_string(), "ws-3".to_string()]);
        for id in ["ws-1", "ws-3", "ws-4"] {
            let row = c.web_session_by_id(id).unwrap().unwrap();
            assert_eq!(
                (row.ended_at, row.ended_by.as_deref()),
                (Some(1903), Some("bob")),
                "{id}"
            );
        }
        let ended = c
            .web_sessions_end("alice", None, Some("ws-2"), 1904, "alice")
            .unwrap();
        assert_eq!(ended, vec!["ws-2".to_string()]);
        assert!(
            c.web_sessions_end("alice", None, None, 1905, "x")
                .unwrap()
                .is_empty()
        );
        assert!(
            c.web_sessions_end("carol", None, None, 1000, "x")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unused_links_are_counted_and_withdrawn_by_user_and_key() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        c.web_login_insert(&login("a", 1060)).unwrap();
        c.web_login_insert(&login("b", 1060)).unwrap();
        let mut other = login("c", 1060);
        other.key_fingerprint = "SHA256:other".into();
        c.web_login_insert(&other).unwrap();
        let mut bob = login("d", 1060);
        bob.user = "bob".into();
        c.web_login_insert(&bob).unwrap();
        c.web_login_consume("b", 1001).unwrap().unwrap();
        assert_eq!(c.web_logins_outstanding("alice", 1001).unwrap(), 2);
        assert_eq!(c.web_logins_outstanding("alice", 1060).unwrap(), 0);
        assert_eq!(
            c.web_logins_withdraw("alice", Some("SHA256:k"), 1002)
                .unwrap(),
            1
        );
        assert_eq!(c.web_login_consume("a", 1003).unwrap(), None);
        assert_eq!(c.web_logins_outstanding("alice", 1003).unwrap(), 1);
        assert_eq!(c.web_logins_withdraw("alice", None, 1004).unwrap(), 1);
        assert_eq!(c.web_logins_outstanding("alice", 1004).unwrap(), 0);
        assert_eq!(c.web_logins_outstanding("bob", 1004).unwrap(), 1);
    }

    #[test]
    fn prune_deletes_what_ended_before_the_cutoff() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        c.web_login_insert(&login("a", 1060)).unwrap();
        c.web_login_insert(&login("b", 5060)).unwrap();
        // Ended at 2000; idle since 1000 (900 s); expired at 4601; live.
        let mut ended = session("ws-1", "SHA256:a", 1000);
        ended.idle_secs = 100_000;
        c.web_session_insert(&ended).unwrap();
        c.web_sessions_end("alice", None, Some("ws-1"), 2000, "x")
            .unwrap();
        c.web_session_insert(&session("ws-2", "SHA256:a", 1000))
            .unwrap();
        let mut old = session("ws-3", "SHA256:a", 1001);
        old.idle_secs = 100_000;
        c.web_session_insert(&old).unwrap();
        c.web_session_insert(&session("ws-4", "SHA256:a", 5000))
            .unwrap();
        assert_eq!(c.web_prune(1000).unwrap(), 0);
        // 1061: link a; 1901: ws-2 (idle); 2001: ws-1 (ended); 4602: ws-3 (expired).
        assert_eq!(c.web_prune(1901).unwrap(), 2);
        assert_eq!(c.web_prune(2001).unwrap(), 1);
        assert_eq!(c.web_prune(4602).unwrap(), 1);
        assert!(c.web_session_by_id("ws-4").unwrap().is_some());
        assert!(c.web_login_get("b").unwrap().is_some());
    }
}
