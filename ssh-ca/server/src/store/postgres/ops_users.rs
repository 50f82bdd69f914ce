//! Users and their keys (as store/sqlite/users.rs).

use super::conn::{PgConn, get};
use super::{i, json_vec, to_json, u};
use crate::error::{CaError, Result};
use crate::store::{KeyPurpose, User};

pub(crate) fn add_user(
    c: &PgConn,
    name: &str,
    groups: &[String],
    keys: &[String],
    now: u64,
) -> Result<()> {
    let inserted = c.exec(
        "INSERT INTO users (name, groups, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        &[&name, &to_json(groups), &i(now)],
    )?;
    if inserted == 0 {
        return Err(CaError::Input(format!(
            "user {name:?} already exists (jit-ca user remove {name} first to replace it)"
        )));
    }
    for k in keys {
        let n = c.exec(
            "INSERT INTO user_keys (key, \"user\") VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[k, &name],
        )?;
        if n == 0 {
            let o: String = get(
                &c.one("SELECT \"user\" FROM user_keys WHERE key = $1", &[k])?,
                0,
            )?;
            return Err(CaError::Input(format!(
                "this key is already registered to user {o:?}; each key identifies one user"
            )));
        }
    }
    Ok(())
}

pub(crate) fn set_contact(c: &PgConn, name: &str, contact: Option<&str>) -> Result<bool> {
    Ok(c.exec(
        "UPDATE users SET contact = $2 WHERE name = $1",
        &[&name, &contact],
    )? > 0)
}

pub(crate) fn remove_user(c: &PgConn, name: &str) -> Result<bool> {
    c.exec("DELETE FROM user_keys WHERE \"user\" = $1", &[&name])?;
    Ok(c.exec("DELETE FROM users WHERE name = $1", &[&name])? > 0)
}

pub(crate) fn list_users(c: &PgConn) -> Result<Vec<User>> {
    let rows = c.rows(
        "SELECT name, groups, created_at, contact FROM users ORDER BY name",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let name: String = get(r, 0)?;
        let what = format!("user {name:?}");
        let mut user = User {
            groups: json_vec("user groups", &what, &get::<String>(r, 1)?)?,
            keys: Vec::new(),
            approval_keys: Vec::new(),
            created_at: u(get(r, 2)?),
            contact: get(r, 3)?,
            name,
        };
        for (key, purpose) in user_keys(c, &user.name)? {
            match purpose {
                KeyPurpose::Login => user.keys.push(key),
                KeyPurpose::Approval => user.approval_keys.push(key),
            }
        }
        out.push(user);
    }
    Ok(out)
}

pub(crate) fn user_by_key(
    c: &PgConn,
    key: &str,
) -> Result<Option<(String, Vec<String>, KeyPurpose)>> {
    let Some(r) = c.opt(
        "SELECT u.name, u.groups, k.purpose FROM user_keys k JOIN users u ON u.name = k.\"user\" WHERE k.key = $1",
        &[&key],
    )?
    else {
        return Ok(None);
    };
    let name: String = get(&r, 0)?;
    let groups = json_vec(
        "user groups",
        &format!("user {name:?}"),
        &get::<String>(&r, 1)?,
    )?;
    let purpose = KeyPurpose::parse(&get::<String>(&r, 2)?, &name)?;
    Ok(Some((name, groups, purpose)))
}

pub(crate) fn add_user_key(c: &PgConn, name: &str, key: &str, purpose: KeyPurpose) -> Result<()> {
    if !user_exists(c, name)? {
        return Err(CaError::Input(format!(
            "there is no user {name:?} (jit-ca user add {name} --key FILE first)"
        )));
    }
    let n = c.exec(
        "INSERT INTO user_keys (key, \"user\", purpose) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        &[&key, &name, &purpose.as_str()],
    )?;
    if n == 0 {
        let r = c.one(
            "SELECT \"user\", purpose FROM user_keys WHERE key = $1",
            &[&key],
        )?;
        let (o, p): (String, String) = (get(&r, 0)?, get(&r, 1)?);
        return Err(CaError::Input(format!(
            "this key is already registered to user {o:?} as a {p} key; an approval key must be a \
             separate key that is not used to log in (ssh-keygen -t ed25519-sk -f ~/.ssh/id_jit_approval)"
        )));
    }
    Ok(())
}

pub(crate) fn user_keys(c: &PgConn, name: &str) -> Result<Vec<(String, KeyPurpose)>> {
    c.rows(
        "SELECT key, purpose FROM user_keys WHERE \"user\" = $1 ORDER BY key",
        &[&name],
    )?
    .iter()
    .map(|r| {
        let key: String = get(r, 0)?;
        let p: String = get(r, 1)?;
        Ok((key, KeyPurpose::parse(&p, name)?))
    })
    .collect()
}

pub(crate) fn remove_user_key(c: &PgConn, name: &str, key: &str) -> Result<bool> {
    Ok(c.exec(
        "DELETE FROM user_keys WHERE \"user\" = $1 AND key = $2",
        &[&name, &key],
    )? > 0)
}

pub(crate) fn requests_with_live_certs_for_key(
    c: &PgConn,
    name: &str,
    key: &str,
    now: u64,
) -> Result<Vec<String>> {
    c.rows(
        "SELECT DISTINCT r.id FROM requests r JOIN certs c ON c.request_id = r.id \
         WHERE r.\"user\" = $1 AND r.public_key = $2 AND c.revoked = 0 AND c.valid_before > $3 \
         ORDER BY r.id",
        &[&name, &key, &i(now)],
    )?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

pub(crate) fn user_groups(c: &PgConn, name: &str) -> Result<Option<Vec<String>>> {
    match c.opt("SELECT groups FROM users WHERE name = $1", &[&name])? {
        None => Ok(None),
        Some(r) => Ok(Some(json_vec(
            "user groups",
            &format!("user {name:?}"),
            &get::<String>(&r, 0)?,
        )?)),
    }
}

pub(crate) fn user_exists(c: &PgConn, name: &str) -> Result<bool> {
    Ok(c.opt("SELECT 1 FROM users WHERE name = $1", &[&name])?
        .is_some())
}
