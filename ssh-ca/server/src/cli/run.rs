//! What each `jit-ca` command does and prints.

use std::process::ExitCode;

use super::args::{
    AuditCommand, BreakGlassCommand, Cli, Command, DbCommand, NotifyCommand, PolicyCommand,
    UserCommand, UserKeyCommand,
};
use crate::admin;
use crate::error::CaError;

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CaError> {
    let s = serde_json::to_string_pretty(v).map_err(CaError::JsonOutput)?;
    jit_common::outln!("{s}");
    Ok(())
}

/// `jit-ca policy test`: exit 0 when decided, 2 on bad input (printed on stderr).
#[allow(clippy::too_many_arguments)]
fn policy_test(
    dir: &std::path::Path,
    user: String,
    role: String,
    duration: &str,
    at: Option<&str>,
    hosts: Vec<String>,
    reason: String,
    json: bool,
    now: u64,
) -> Result<ExitCode, CaError> {
    // Bad input exits 2 (not 1: the policy was not judged); with --json, as every jit-ca
    // failure, also one JSON error object on stdout.
    let bad = |msg: String| {
        jit_common::errln!("jit-ca: {msg}");
        if json {
            super::print_json_error("invalid_input", &msg);
        }
        Ok(ExitCode::from(2))
    };
    let duration_secs = match jit_common::time::parse_duration(duration) {
        Ok(d) => u64::from(d),
        Err(e) => return bad(format!("--duration {duration:?}: {e}")),
    };
    let at = match at {
        None => now,
        Some(text) => match text
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| u64::try_from(t.as_second()).ok())
        {
            Some(t) => t,
            None => {
                return bad(format!(
                    "--at {text:?} is not an RFC 3339 time; write e.g. 2026-11-30T09:00:00+01:00 or 2026-11-30T08:00:00Z"
                ));
            }
        },
    };
    let input = admin::PolicyTestInput {
        user,
        role,
        duration_secs,
        at,
        hosts,
        reason,
    };
    match admin::policy_test(dir, &input) {
        Ok(report) if json => print_json(&report).map(|()| ExitCode::SUCCESS),
        Ok(report) => {
            jit_common::out!("{}", admin::render_policy_test(&report));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bad(e.to_string()),
    }
}

/// Runs one parsed command; `Ok(ExitCode::FAILURE)` for a check that found problems.
pub fn run(cli: Cli) -> Result<ExitCode, CaError> {
    let now = jit_common::now().as_secs();
    match cli.command {
        Command::Init { dir, json } => {
            let files = admin::init(&dir.dir)?;
            if json {
                print_json(&serde_json::json!({"dir": dir.dir, "created": files}))?;
            } else {
                jit_common::outln!("Created:");
                for f in files {
                    jit_common::outln!("  {f}");
                }
                jit_common::outln!(
                    "Next: edit {}/policy.toml, add users with `jit-ca user add NAME --key FILE --group G --dir {}`, then `jit-ca serve --dir {}`.",
                    dir.dir.display(),
                    dir.dir.display(),
                    dir.dir.display()
                );
            }
        }
        Command::Serve { dir, listen, .. } => {
            crate::server::serve(&dir.dir, listen)?;
        }
        Command::User { command } => match command {
            UserCommand::Add {
                name,
                key,
                groups,
                contact,
                dir,
                json,
            } => {
                let fps = admin::user_add_with_contact(
                    &dir.dir,
                    &name,
                    &key,
                    &groups,
                    contact.as_deref(),
                    now,
                )?;
                let contact = contact.as_deref().map(str::trim);
                if json {
                    print_json(&serde_json::json!({"user": name, "groups": groups,
                        "fingerprints": fps, "contact": contact}))?;
                } else {
                    jit_common::outln!(
                        "added user {name} (groups: {}) with key(s) {}{}",
                        display_list(&groups),
                        fps.join(", "),
                        contact
                            .map(|c| format!("; contact {c}"))
                            .unwrap_or_default()
                    );
                }
            }
            UserCommand::SetContact {
                name,
                handle,
                clear,
                dir,
                json,
            } => {
                let handle = if clear { None } else { handle };
                let set = admin::user_set_contact(&dir.dir, &name, handle.as_deref(), now)?;
                if json {
                    print_json(&serde_json::json!({"user": name, "contact": set}))?;
                } else if let Some(c) = set {
                    jit_common::outln!("set the contact of {name} to {c}");
                } else {
                    jit_common::outln!("cleared the contact of {name}");
                }
            }
            UserCommand::List { dir, json } => {
                let users = admin::user_list(&dir.dir)?;
                if json {
                    print_json(&users)?;
                } else if users.is_empty() {
                    jit_common::outln!(
                        "no users; add one with `jit-ca user add NAME --key FILE --group G --dir DIR`"
                    );
                } else {
                    jit_common::outln!("{:<20} {:<30} {:<20} KEYS", "USER", "GROUPS", "CONTACT");
                    for u in users {
                        jit_common::outln!(
                            "{:<20} {:<30} {:<20} {}",
                            u.name,
                            display_list(&u.groups),
                            u.contact.as_deref().unwrap_or("-"),
                            u.fingerprints.join(" ")
                        );
                    }
                }
            }
            UserCommand::AddKey {
                name,
                key,
                approval,
                dir,
                json,
            }
            | UserCommand::Key {
                command:
                    UserKeyCommand::Add {
                        name,
                        key,
                        approval,
                        dir,
                        json,
                    },
            } => {
                let fps = admin::user_add_key(&dir.dir, &name, &key, approval, now)?;
                let purpose = if approval { "approval" } else { "login" };
                if json {
                    print_json(
                        &serde_json::json!({"user": name, "purpose": purpose, "fingerprints": fps}),
                    )?;
                } else {
                    jit_common::outln!(
                        "added {} {purpose} key(s) to {name}: {}",
                        fps.len(),
                        fps.join(" ")
                    );
                }
            }
            UserCommand::Key {
                command:
                    UserKeyCommand::Remove {
                        name,
                        key,
                        allow_no_login_key,
                        dir,
                        json,
                    },
            } => {
                let r = admin::user_remove_key(&dir.dir, &name, &key, allow_no_login_key, now)?;
                if json {
                    print_json(&r)?;
                } else {
                    jit_common::outln!(
                        "removed {} key(s) from {name}: {}; {name} has {} login and {} approval \
                         key(s) left. Calls signed with a removed key are refused from now on; \
                         certificates already issued stay valid until they expire (jit-ca \
                         revoke ID ends one)",
                        r.removed.len(),
                        r.removed
                            .iter()
                            .map(|k| format!("{} ({})", k.fingerprint, k.purpose))
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.login_keys_left,
                        r.approval_keys_left
                    );
                    if !r.live_requests.is_empty() {
                        jit_common::outln!(
                            "live certificates for a removed key: request(s) {} (jit-ca revoke \
                             ID --reason ... --dir DIR ends each)",
                            r.live_requests.join(", ")
                        );
                    }
                    if !r.denied_requests.is_empty() {
                        jit_common::outln!(
                            "denied pending request(s) {} to certify a removed key (an approver \
                             could have certified it)",
                            r.denied_requests.join(", ")
                        );
                    }
                }
            }
            UserCommand::Remove { name, dir, json } => {
                let r = admin::user_remove(&dir.dir, &name, now)?;
                if json {
                    let mut v = serde_json::json!({"removed": name, "denied": r.denied,
                        "revoked": r.revoked, "serials": r.serials, "grant_ids": r.grant_ids,
                        "revocation_sequence": r.revocation_sequence});
                    if !r.request_problems.is_empty()
                        && let Some(o) = v.as_object_mut()
                    {
                        o.insert(
                            "request_problems".into(),
                            serde_json::json!(r.request_problems),
                        );
                    }
                    print_json(&v)?;
                } else {
                    jit_common::outln!(
                        "removed user {name}; denied {} pending and revoked {} approved request(s) (serials {}, grants {}; revocation list #{}); a running jit-ca publishes them within 2 s",
                        r.denied.len(),
                        r.revoked.len(),
                        display_list(&r.serials.iter().map(u64::to_string).collect::<Vec<_>>()),
                        display_list(&r.grant_ids),
                        r.revocation_sequence
                    );
                    for p in &r.request_problems {
                        jit_common::errln!(
                            "jit-ca: warning: request {} was left as it is, it does not read (its certificates were revoked): {}",
                            p.request,
                            p.problem
                        );
                    }
                }
            }
        },
        Command::Policy {
            command: PolicyCommand::Check { dir, json },
        } => {
            let report = admin::policy_check(&dir.dir);
            if json {
                print_json(&report)?;
            } else {
                for e in &report.errors {
                    jit_common::outln!("error: {e}");
                }
                for w in &report.warnings {
                    jit_common::outln!("warning: {w}");
                }
                if report.ok {
                    jit_common::outln!(
                        "{}: OK ({} roles: {})",
                        dir.dir.display(),
                        report.roles.len(),
                        report.roles.join(", ")
                    );
                } else {
                    jit_common::outln!(
                        "{}: {} error(s); the service would refuse this configuration",
                        dir.dir.display(),
                        report.errors.len()
                    );
                }
            }
            if !report.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Policy {
            command:
                PolicyCommand::Test {
                    dir,
                    user,
                    role,
                    duration,
                    at,
                    hosts,
                    reason,
                    json,
                },
        } => {
            return policy_test(
                &dir.dir,
                user,
                role,
                &duration,
                at.as_deref(),
                hosts,
                reason,
                json,
                now,
            );
        }
        Command::Revoke {
            id,
            reason,
            dir,
            json,
        } => {
            let ca =
                crate::service::Ca::open(&dir.dir, std::sync::Arc::new(crate::clock::SystemClock))?;
            let actor = format!("admin:uid={}", crate::files::euid());
            let v = ca
                .admin_revoke(&actor, &id, &reason)
                .map_err(|e| CaError::Input(e.message))?;
            if json {
                print_json(&v)?;
            } else {
                jit_common::outln!(
                    "revoked request {} of {} (serial {}); a running jit-ca publishes the new KRL and revocation list within 2 s",
                    v.id,
                    v.user,
                    v.serial.map_or_else(|| "-".to_string(), |s| s.to_string())
                );
            }
        }
        Command::RevokeGrant {
            id,
            reason,
            dir,
            json,
        } => {
            let r = admin::revoke_grant(&dir.dir, &id, &reason, now)?;
            if json {
                print_json(&r)?;
            } else {
                let what = match (&r.grant_id, r.serial) {
                    (Some(g), Some(s)) => format!("grant {g} (serial {s})"),
                    (Some(g), None) => format!("grant {g}"),
                    (None, Some(s)) => format!("certificate serial {s}"),
                    (None, None) => r.target.clone(),
                };
                let origin = match (&r.request_id, r.request_revoked) {
                    (Some(req), true) => format!(" and its request {req}"),
                    (Some(_), false) => String::new(),
                    (None, _) => " (not issued by this CA: a break-glass grant?)".into(),
                };
                jit_common::outln!(
                    "revoked {what}{origin}; revocation list #{}; a running jit-ca publishes it within 2 s, hosts apply it at their next `jit-host sync`",
                    r.revocation_sequence
                );
                if let Some(p) = &r.request_problem {
                    jit_common::errln!(
                        "jit-ca: warning: its request was left as it is, it does not read: {p}"
                    );
                }
            }
        }
        Command::BreakGlass { command } => match command {
            BreakGlassCommand::Keygen { out, json } => {
                let r = admin::break_glass::keygen(&out)?;
                if json {
                    print_json(&r)?;
                } else {
                    jit_common::outln!(
                        "wrote {} (private, 0600) and {} ({})\nKeep the private key offline (see docs/break-glass.md); add this line to break_glass_keys in every host's host.toml:\n  {}",
                        r.private_key.display(),
                        r.public_key.display(),
                        r.fingerprint,
                        r.public_line
                    );
                }
            }
            BreakGlassCommand::Sign {
                key,
                user,
                hosts,
                duration,
                reason,
                id,
                allow_long_window,
                out,
                json,
            } => {
                let spec = admin::break_glass::SignSpec {
                    key,
                    user,
                    hosts,
                    duration_secs: duration,
                    reason,
                    id,
                    allow_long_window,
                    out,
                };
                let r = admin::break_glass::sign(&spec, now)?;
                if json {
                    print_json(&r)?;
                } else {
                    jit_common::outln!(
                        "wrote break-glass grant {} to {} (valid {} to {}, signed by {})\nOn the host, as root: jit-host install {}\nAfterwards revoke it: jit-ca revoke-grant {} --dir DIR",
                        r.id,
                        r.grant_file.display(),
                        jit_common::time::format_utc(r.not_before),
                        jit_common::time::format_utc(r.not_after),
                        r.key_id,
                        r.grant_file.display(),
                        r.id
                    );
                }
            }
        },
        Command::Backup { dir, out, json } => {
            let n = admin::backup(&dir.dir, &out)?;
            if json {
                print_json(&serde_json::json!({"out": out, "bytes": n,
                    "keys": dir.dir.join("keys")}))?;
                return Ok(ExitCode::SUCCESS);
            }
            jit_common::outln!(
                "wrote {} ({n} bytes); also keep a copy of {}",
                out.display(),
                dir.dir.join("keys").display()
            );
        }
        Command::HostConfig { dir, json } => {
            let text = admin::host_config(&dir.dir)?;
            let warnings: Vec<String> = [
                admin::server_url_warning(&dir.dir),
                admin::revocation_bound_warning(&dir.dir),
            ]
            .into_iter()
            .flatten()
            .collect();
            if json {
                print_json(&serde_json::json!({"host_toml": text, "warnings": warnings}))?;
            } else {
                jit_common::out!("{text}");
                for w in warnings {
                    jit_common::errln!("{w}");
                }
            }
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify {
                dir,
                anchors,
                checkpoint,
                json,
            } => {
                let r = match &checkpoint {
                    Some(cp) => admin::audit_verify_checkpoint(&dir.dir, cp, &anchors)?,
                    None => admin::audit_verify_anchored(&dir.dir, &anchors)?,
                };
                if json {
                    print_json(&r)?;
                } else if r.ok {
                    jit_common::outln!(
                        "audit trail intact: {} records, head {}",
                        r.records,
                        r.head.as_deref().unwrap_or("(empty)")
                    );
                } else {
                    jit_common::outln!(
                        "audit trail BROKEN: {}",
                        r.problem.as_deref().unwrap_or("unknown problem")
                    );
                }
                if !r.ok {
                    return Ok(ExitCode::FAILURE);
                }
            }
            AuditCommand::Export { dir, json } => {
                for rec in admin::audit_export(&dir.dir)? {
                    if json {
                        jit_common::outln!("{rec}");
                    } else {
                        jit_common::outln!(
                            "{}\t{}\t{}\t{}\t{}",
                            rec["seq"],
                            rec["time_utc"].as_str().unwrap_or(""),
                            rec["actor"].as_str().unwrap_or(""),
                            rec["event"].as_str().unwrap_or(""),
                            rec["details"]
                        );
                    }
                }
            }
        },
        Command::Notify { command } => match command {
            NotifyCommand::Status { dir, json } => {
                let report = admin::notify_status(&dir.dir, now)?;
                if json {
                    print_json(&report)?;
                } else {
                    jit_common::out!("{}", admin::render_notify_status(&report));
                }
            }
            NotifyCommand::Retry {
                id,
                sink,
                dir,
                json,
            } => {
                let r = admin::notify_retry(&dir.dir, &id, sink.as_deref(), now)?;
                if json {
                    print_json(&r)?;
                } else {
                    jit_common::outln!(
                        "{} is pending again for {}; a running jit-ca sends it within a few seconds, with the same webhook-id",
                        r.id,
                        r.sinks.join(", ")
                    );
                }
            }
        },
        Command::Db { command } => match command {
            DbCommand::Status { dir, json, check } => {
                let s = admin::db_status(&dir.dir, now)?;
                if json {
                    print_json(&s)?;
                } else {
                    jit_common::out!("{}", admin::render_db_status(&s));
                }
                if check && !s.problems.is_empty() {
                    return Ok(ExitCode::FAILURE);
                }
            }
            DbCommand::Copy {
                dir,
                to,
                password_file,
                ca,
                json,
            } => {
                let r = admin::db_copy(&dir.dir, &to, password_file.as_deref(), ca.as_deref())?;
                if json {
                    print_json(&r)?;
                } else {
                    jit_common::out!("{}", admin::render_db_copy(&r));
                }
                if !r.ok {
                    return Ok(ExitCode::FAILURE);
                }
            }
        },
        Command::GenerateDocs { out } => super::docs::generate_docs(&out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn display_list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}
