//! Users and their keys.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{i, json_vec, stored_error, to_json, u};
use crate::error::{CaError, Result};
use crate::store::{KeyPurpose, User};

/// Adds a user with keys. Errors if the name or a key is taken.
pub fn add_user(
    c: &Connection,
    name: &str,
    groups: &[String],
    keys: &[String],
    now: u64,
) -> Result<()> {
    let exists: Option<String> = c
        .prepare_cached("SELECT name FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(CaError::Input(format!(
            "user {name:?} already exists (jit-ca user remove {name} first to replace it)"
        )));
    }
    c.prepare_cached("INSERT INTO users (name, groups, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![name, to_json(groups), i(now)])?;
    for k in keys {
        let owner: Option<String> = c
            .prepare_cached("SELECT user FROM user_keys WHERE key = ?1")?
            .query_row([k], |r| r.get(0))
            .optional()?;
        if let Some(o) = owner {
            return Err(CaError::Input(format!(
                "this key is already registered to user {o:?}; each key identifies one user"
            )));
        }
        c.prepare_cached("INSERT INTO user_keys (key, user) VALUES (?1, ?2)")?
            .execute(params![k, name])?;
    }
    Ok(())
}

/// Sets (or with None clears) a user's contact handle; false if there is no such user. The
/// caller checks the handle (`admin::users::check_contact`).
pub fn set_contact(c: &Connection, name: &str, contact: Option<&str>) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE users SET contact = ?2 WHERE name = ?1")?
        .execute(params![name, contact])?;
    Ok(n > 0)
}

/// Removes a user and their keys; false if there was none.
pub fn remove_user(c: &Connection, name: &str) -> Result<bool> {
    c.prepare_cached("DELETE FROM user_keys WHERE user = ?1")?
        .execute([name])?;
    let n = c
        .prepare_cached("DELETE FROM users WHERE name = ?1")?
        .execute([name])?;
    Ok(n > 0)
}

/// All users, by name.
pub fn list_users(c: &Connection) -> Result<Vec<User>> {
    let mut st =
        c.prepare_cached("SELECT name, groups, created_at, contact FROM users ORDER BY name")?;
    let rows = st
        .query_map([], |r| {
            let name: String = r.get(0)?;
            let row = format!("user {name:?}");
            Ok(User {
                groups: json_vec(1, "user groups", &row, &r.get::<_, String>(1)?)?,
                name,
                keys: Vec::new(),
                approval_keys: Vec::new(),
                created_at: u(r.get(2)?),
                contact: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    // Every key of the user, each purpose parsed: an unknown one is an error, never a key
    // left out of the list.
    let mut kst =
        c.prepare_cached("SELECT key, purpose FROM user_keys WHERE user = ?1 ORDER BY key")?;
    for mut user in rows {
        let keys = kst
            .query_map(params![&user.name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (key, purpose) in keys {
            match KeyPurpose::parse(&purpose, &user.name)? {
                KeyPurpose::Login => user.keys.push(key),
                KeyPurpose::Approval => user.approval_keys.push(key),
            }
        }
        out.push(user);
    }
    Ok(out)
}

/// The user a key belongs to, with groups and the key's purpose.
pub fn user_by_key(c: &Connection, key: &str) -> Result<Option<(String, Vec<String>, KeyPurpose)>> {
    Ok(c.prepare_cached(
        "SELECT u.name, u.groups, k.purpose FROM user_keys k JOIN users u ON u.name = k.user WHERE k.key = ?1",
    )?
    .query_row([key], |r| {
        let name: String = r.get(0)?;
        let row = format!("user {name:?}");
        let groups = json_vec(1, "user groups", &row, &r.get::<_, String>(1)?)?;
        let purpose =
            KeyPurpose::parse(&r.get::<_, String>(2)?, &name).map_err(|e| stored_error(2, e))?;
        Ok((name, groups, purpose))
    })
    .optional()?)
}

/// Registers one more key for an existing user. Errors if the user does not exist or the
/// key is registered already (to anyone, for any purpose: a login key cannot double as an
/// approval key).
pub fn add_user_key(c: &Connection, name: &str, key: &str, purpose: KeyPurpose) -> Result<()> {
    if !user_exists(c, name)? {
        return Err(CaError::Input(format!(
            "there is no user {name:?} (jit-ca user add {name} --key FILE first)"
        )));
    }
    let owner: Option<(String, String)> = c
        .prepare_cached("SELECT user, purpose FROM user_keys WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((o, p)) = owner {
        return Err(CaError::Input(format!(
            "this key is already registered to user {o:?} as a {p} key; an approval key must be a \
             separate key that is not used to log in (ssh-keygen -t ed25519-sk -f ~/.ssh/id_jit_approval)"
        )));
    }
    c.prepare_cached("INSERT INTO user_keys (key, user, purpose) VALUES (?1, ?2, ?3)")?
        .execute(params![key, name, purpose.as_str()])?;
    Ok(())
}

/// A user's keys (login and approval), each with its purpose, by key.
pub fn user_keys(c: &Connection, name: &str) -> Result<Vec<(String, KeyPurpose)>> {
    let rows = c
        .prepare_cached("SELECT key, purpose FROM user_keys WHERE user = ?1 ORDER BY key")?
        .query_map([name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(key, purpose)| Ok((key, KeyPurpose::parse(&purpose, name)?)))
        .collect()
}

/// Removes one key of a user (the user stays); false if the user has no such key.
pub fn remove_user_key(c: &Connection, name: &str, key: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM user_keys WHERE user = ?1 AND key = ?2")?
        .execute(params![name, key])?;
    Ok(n > 0)
}

/// The user's requests with a certificate for `key` (a stored key line) that is neither
/// revoked nor expired at `now`, by id: what a removed key can still be used for.
pub fn requests_with_live_certs_for_key(
    c: &Connection,
    name: &str,
    key: &str,
    now: u64,
) -> Result<Vec<String>> {
    Ok(c.prepare_cached(
        "SELECT DISTINCT r.id FROM requests r JOIN certs c ON c.request_id = r.id \
             WHERE r.user = ?1 AND r.public_key = ?2 AND c.revoked = 0 AND c.valid_before > ?3 \
             ORDER BY r.id",
    )?
    .query_map(params![name, key, i(now)], |r| r.get(0))?
    .collect::<rusqlite::Result<Vec<String>>>()?)
}

/// A user's groups, or None if the user does not exist.
pub fn user_groups(c: &Connection, name: &str) -> Result<Option<Vec<String>>> {
    Ok(
        c.prepare_cached("SELECT groups FROM users WHERE name = ?1")?
            .query_row([name], |r| {
                json_vec(
                    0,
                    "user groups",
                    &format!("user {name:?}"),
                    &r.get::<_, String>(0)?,
                )
            })
            .optional()?,
    )
}

/// Whether the user exists; parses nothing of the row (so it answers for a user whose stored
/// groups are damaged too).
pub fn user_exists(c: &Connection, name: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}
