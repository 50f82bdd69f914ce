//! `jit-ca policy check`: config.toml, the keys and policy.toml, every problem at once, and
//! warnings about users and approvers the policy cannot work with.

use std::path::Path;

use serde::Serialize;

use crate::config::{self, Config};
use crate::error::CaError;
use crate::files;
use crate::policy::{self, Policy};
use crate::signer::Signer;
use crate::store::Db;

/// Result of `policy check`.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub roles: Vec<String>,
}

/// `jit-ca policy check`: config, keys and policy, every problem at once.
pub fn policy_check(dir: &Path) -> CheckReport {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut roles = Vec::new();
    let cfg = match Config::load(dir) {
        Ok(c) => Some(c),
        Err(CaError::Config { path, problems }) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            );
            None
        }
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    if let Some(cfg) = &cfg {
        warnings.extend(revocation_bound_conflict(cfg));
        // The [[notify]] sinks' secret files, and a slack URL in a world-readable file:
        // what would stop `jit-ca serve` from starting.
        match cfg.clone().load_notify_files() {
            Ok(()) => {}
            Err(CaError::Config { path, problems }) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            ),
            Err(e) => errors.push(e.to_string()),
        }
        for p in cfg.user_ca_keys.iter().chain(cfg.grant_keys.iter()) {
            if let Err(e) = Signer::load(std::slice::from_ref(p), std::slice::from_ref(p)) {
                errors.push(e.to_string());
            }
        }
    }
    let path = dir.join(config::POLICY_FILE);
    match files::read_trusted(&path, config::MAX_CONFIG_SIZE) {
        Err(e) => errors.push(e.to_string()),
        Ok(text) => match Policy::parse(&text) {
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            ),
            Ok(mut p) => {
                if let Err(problems) = p.load_webhook_files(dir) {
                    errors.extend(
                        problems
                            .into_iter()
                            .map(|e| format!("{}: {e}", path.display())),
                    );
                }
                roles = p.roles.keys().cloned().collect();
                if p.roles.is_empty() {
                    warnings.push(format!(
                        "{}: defines no roles; nobody can request anything",
                        path.display()
                    ));
                }
                if let Some(cfg) = &cfg
                    && let Ok(db) = Db::open(cfg)
                    && let Ok(Ok(users)) = db.read(|c| c.list_users())
                {
                    let names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
                    let mut groups: Vec<String> =
                        users.iter().flat_map(|u| u.groups.clone()).collect();
                    groups.sort();
                    groups.dedup();
                    warnings.extend(p.warnings(&names, &groups));
                    if names.iter().any(|n| n == "root") {
                        warnings.push(
                            "user \"root\" is registered: every certificate carries its user's name as a principal, so root's certificates log in as root; remove it (jit-ca user remove root) and register people under their own names".into(),
                        );
                    }
                    for role in p.roles.values() {
                        let able = users
                            .iter()
                            .filter(|u| role.may_approve(&u.name, &u.groups))
                            .count();
                        if !role.auto_approve && able < role.approvals as usize {
                            warnings.push(format!(
                                "roles.{}: needs {} approvals but only {able} registered user(s) may approve; requests cannot be approved yet",
                                role.name, role.approvals
                            ));
                        }
                        // Approvers who hold a key this role's approval_key accepts.
                        let keyed = users
                            .iter()
                            .filter(|u| role.may_approve(&u.name, &u.groups))
                            .filter(|u| {
                                let ok = |k: &String, approval: bool| {
                                    let sk = k.starts_with("sk-");
                                    role.approval_key.check(approval, sk, sk).is_ok()
                                };
                                u.keys.iter().any(|k| ok(k, false))
                                    || u.approval_keys.iter().any(|k| ok(k, true))
                            })
                            .count();
                        if !role.auto_approve
                            && role.approval_key != policy::ApprovalKey::Any
                            && keyed < role.approvals as usize
                        {
                            warnings.push(format!(
                                "roles.{}: approval_key = \"{}\" but only {keyed} approver(s) have such a key registered (needs {}); register one with jit-ca user add-key NAME --key FILE --approval",
                                role.name,
                                role.approval_key.as_str(),
                                role.approvals
                            ));
                        }
                    }
                }
            }
        },
    }
    CheckReport {
        ok: errors.is_empty(),
        errors,
        warnings,
        roles,
    }
}

/// The staleness-bound warning for hosts that keep the default `revocation_max_age_secs`.
pub(super) fn revocation_bound_conflict(cfg: &Config) -> Option<String> {
    jit_common::revocation::max_age_conflict(
        jit_common::revocation::DEFAULT_MAX_AGE_SECS,
        cfg.revocation_refresh_secs,
    )
    .map(|w| format!("warning: hosts' default {w}"))
}
