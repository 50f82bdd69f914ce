//! `jit-host principals USER CERT_BASE64`: sshd's `AuthorizedPrincipalsCommand`.
//!
//! The input is attacker-controlled (any client can present any certificate), so every
//! step is checked before anything is stored, and nothing is printed unless every check
//! passed:
//!
//! 1. USER is a valid login name; the base64 is at most 64 KiB and decodes to an OpenSSH
//!    certificate wire blob.
//! 2. The certificate is signed by one of host.toml's `user_ca_keys`, is inside its window
//!    (`Certificate::validate_at`), is a user certificate, and lists USER among its
//!    principals (a certificate without principals is refused).
//! 3. Its serial is not in the local signed revocation list (sshd also checks the KRL), and
//!    that list exists, verifies and is not older than `revocation_max_age_secs` (the same
//!    staleness rule as `pam_jit.so`; a host that never synced refuses every certificate).
//! 4. Its scope ([`check_scope`]): it must carry the `jit-grant@jit` extension (the CA
//!    embeds a grant in every certificate, `sudo = false` for roles without sudo; a
//!    certificate of the user CA without one is refused), and the grant must parse, verify
//!    against `grant_keys` and its window, name this certificate's serial, be for one of
//!    the certificate's principals, not be revoked (by id), and have a host selector that
//!    matches one of this host's names (the kernel host name and host.toml's `hostnames`,
//!    as pam_jit uses them). This holds for every principal: logging into a shared account
//!    (`dbadmin`) with a certificate scoped to `web-*` is refused on `db-1` too.
//! 5. A grant for USER is stored atomically (idempotent: sshd calls this twice per login).
//!    A grant for another user (a certificate with extra principals, logging into a shared
//!    account) passed the same scope check but is not stored.
//!
//! Output: the single line `USER` on stdout. Every failure is logged to syslog (authpriv),
//! exits 1 with nothing on stdout, and prints one line on stderr naming the reason
//! ([`refusal_line`]): sshd reads only the command's stdout (it runs the command with
//! stderr on /dev/null), so the line is for a person running the hook by hand, who would
//! otherwise see a silent exit 1 on a host without a syslog daemon.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine;
use jit_common::log::{MAX_LINE, Severity, Syslog, field, sanitize};
use jit_common::{UnverifiedGrant, VerifiedGrant, VerifiedRevocationList};
use pam_jit_core::config::Config;
use pam_jit_core::decide::revocation_state;
use pam_jit_core::store::read_revocations;
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg};

use crate::failure::{Failure, Result, host_names};
use crate::store_write::{Stored, store_grant};

/// The certificate extension that carries a grant (shared contract with `jit-ca`).
pub use jit_common::grant::CERT_EXTENSION as GRANT_EXTENSION;
/// Longest base64 argument accepted.
pub const MAX_CERT_BASE64: usize = 64 * 1024;

/// What a successful check found.
#[derive(Debug)]
pub struct Accepted {
    /// The principal to print.
    pub principal: String,
    /// Certificate serial.
    pub serial: u64,
    /// Certificate key id.
    pub key_id: String,
    /// What happened to the grant the certificate carries (every accepted certificate
    /// carries one).
    pub grant: GrantOutcome,
}

/// What happened to the carried grant.
#[derive(Debug)]
pub enum GrantOutcome {
    /// Stored (or already there).
    Stored { id: String, changed: bool },
    /// Valid but for another user: not stored.
    OtherUser { id: String, grant_user: String },
}

/// Runs the hook.
pub fn run(config_path: &Path, user: &str, cert_b64: &str) -> Result<ExitCode> {
    let mut log = Syslog::new("jit-host");
    let now = jit_common::now().as_secs();
    let result = jit_common::grant::check_user("user", user)
        .map_err(|e| e.to_string())
        .and_then(|()| Config::load(config_path).map_err(|e| e.to_string()))
        .and_then(|config| verify_and_store(&config, user, cert_b64, now));
    match result {
        Ok(a) => {
            let grant = match &a.grant {
                GrantOutcome::Stored { id, changed: true } => format!("{id} (stored)"),
                GrantOutcome::Stored { id, changed: false } => format!("{id} (unchanged)"),
                GrantOutcome::OtherUser { id, grant_user } => {
                    format!("{id} (for {grant_user}, not stored)")
                }
            };
            log.log(
                Severity::Notice,
                &[
                    field("principals", "accept"),
                    field("user", user),
                    field("serial", &a.serial.to_string()),
                    field("key_id", &a.key_id),
                    field("grant", &grant),
                ]
                .join(" "),
            );
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{}", a.principal)
                .and_then(|()| out.flush())
                .is_err()
            {
                let reason = "cannot write the principal to stdout";
                tell(&refusal_line(user, reason, log.is_connected()));
                return Err(silent(reason));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            log.log(
                Severity::Warning,
                &[
                    field("principals", "refuse"),
                    field("user", user),
                    field("reason", &reason),
                ]
                .join(" "),
            );
            tell(&refusal_line(user, &reason, log.is_connected()));
            Err(silent(&reason))
        }
    }
}

/// The one line a refusal prints on stderr: the user and the reason, control and format
/// characters escaped (the certificate is attacker-controlled), at most [`MAX_LINE`]
/// bytes. Without a syslog daemon it says that this line is the only record.
pub fn refusal_line(user: &str, reason: &str, logged: bool) -> String {
    let note = if logged {
        ""
    } else {
        " (not logged: no syslog daemon on /dev/log)"
    };
    sanitize(
        &format!("jit-host: principals: refused {user:?}: {reason}{note}"),
        MAX_LINE,
    )
}

/// Writes one line on stderr; a closed or failing stderr is ignored (the exit code and
/// syslog still say it).
fn tell(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}").and_then(|()| err.flush());
}

fn silent(reason: &str) -> Failure {
    Failure {
        message: reason.to_string(),
        code: 1,
        silent: true,
    }
}

/// Every check, then the store, on this host (its names: [`host_names`]). Pure except for
/// reading the host name and the revocation list and writing the grant.
pub fn verify_and_store(
    config: &Config,
    user: &str,
    cert_b64: &str,
    now: u64,
) -> std::result::Result<Accepted, String> {
    verify_and_store_on(config, &host_names(config), user, cert_b64, now)
}

/// [`verify_and_store`] on a host known by `host_names`.
pub fn verify_and_store_on(
    config: &Config,
    host_names: &[String],
    user: &str,
    cert_b64: &str,
    now: u64,
) -> std::result::Result<Accepted, String> {
    if cert_b64.len() > MAX_CERT_BASE64 {
        return Err(format!(
            "certificate argument is {} bytes, more than {MAX_CERT_BASE64}",
            cert_b64.len()
        ));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(cert_b64.trim())
        .map_err(|e| format!("certificate is not base64: {e}"))?;
    let cert =
        Certificate::from_bytes(&blob).map_err(|e| format!("not an OpenSSH certificate: {e}"))?;
    if config.user_ca_keys.is_empty() {
        return Err("host.toml has no user_ca_keys; no certificate can be trusted".into());
    }
    let fps: Vec<_> = config
        .user_ca_keys
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .collect();
    cert.validate_at(now, &fps).map_err(|_| {
        format!(
            "certificate serial {} is not signed by a trusted user CA or is outside its window ({}..{})",
            cert.serial(),
            cert.valid_after(),
            cert.valid_before()
        )
    })?;
    if cert.cert_type() != CertType::User {
        return Err("not a user certificate".into());
    }
    if !cert.valid_principals().iter().any(|p| p == user) {
        return Err(format!(
            "certificate serial {} does not list principal {user:?}",
            cert.serial()
        ));
    }
    // The module's staleness rule: a missing, unusable, invalid or stale list refuses the
    // login (fail closed), because revocations could not be checked.
    let revs = revocation_state(config, &read_revocations(&config.state_dir), now.into());
    if let Some(list) = &revs.list
        && list.is_serial_revoked(cert.serial())
    {
        return Err(format!(
            "certificate serial {} is revoked (revocation list #{})",
            cert.serial(),
            list.list().sequence
        ));
    }
    if let Some(problem) = revs.problem {
        return Err(format!(
            "certificate serial {} cannot be checked against revocations: {problem}; run `jit-host sync` as root and enable jit-host-sync.timer",
            cert.serial()
        ));
    }
    let (grant, doc) = check_scope(config, host_names, &cert, revs.list.as_ref(), now)?;
    let grant = take_grant(config, user, &grant, doc)?;
    Ok(Accepted {
        principal: user.to_string(),
        serial: cert.serial(),
        key_id: cert.key_id().to_string(),
        grant,
    })
}

/// Step 4 (issue 11, item 1): the certificate's CA-signed scope. Returns the verified
/// grant and its bytes, or why the certificate must not log in here as anyone.
///
/// Refused: no `jit-grant@jit` extension (a jit certificate that carries no scope); a grant
/// that does not parse or verify or is outside its window; a grant that names another
/// certificate serial (or none); a grant for a user who is not among the certificate's
/// principals; a grant whose id is in the revocation list; a grant none of whose host
/// selectors matches one of `host_names`.
pub fn check_scope<'c>(
    config: &Config,
    host_names: &[String],
    cert: &'c Certificate,
    revocations: Option<&VerifiedRevocationList>,
    now: u64,
) -> std::result::Result<(VerifiedGrant, &'c [u8]), String> {
    let serial = cert.serial();
    let Some(doc) = cert.extensions().get(GRANT_EXTENSION) else {
        return Err(format!(
            "certificate serial {serial} carries no {GRANT_EXTENSION} extension: a jit certificate \
             that carries no scope is refused (request a new certificate from the CA)"
        ));
    };
    let verified = UnverifiedGrant::parse(doc.as_bytes())
        .and_then(|g| g.verify_at(now, &config.grant_keys, config.clock_skew_secs))
        .map_err(|e| format!("the certificate's grant is not valid: {e}"))?;
    let g = verified.grant();
    if g.cert_serial != Some(serial) {
        return Err(match g.cert_serial {
            Some(other) => format!(
                "grant {} names certificate serial {other}, but the certificate's serial is {serial}",
                g.id
            ),
            None => format!(
                "grant {} names no certificate serial; the certificate's serial is {serial}",
                g.id
            ),
        });
    }
    if !cert.valid_principals().contains(&g.user) {
        return Err(format!(
            "grant {} is for user {:?}, who is not among certificate serial {serial}'s principals",
            g.id, g.user
        ));
    }
    if let Some(list) = revocations
        && list.is_grant_revoked(&g.id)
    {
        return Err(format!(
            "grant {} of certificate serial {serial} is revoked (revocation list #{})",
            g.id,
            list.list().sequence
        ));
    }
    let here = g
        .hosts
        .iter()
        .any(|sel| host_names.iter().any(|h| jit_common::host::matches(sel, h)));
    if !here {
        return Err(format!(
            "certificate serial {serial} is scoped to hosts {} (grant {}, role {}), not to this host ({})",
            g.hosts.join(","),
            g.id,
            g.role,
            if host_names.is_empty() {
                "no name known: set hostnames in host.toml".to_string()
            } else {
                host_names.join(",")
            }
        ));
    }
    Ok((verified, doc.as_bytes()))
}

/// Step 5: stores a grant for USER; a grant for another principal is left alone.
fn take_grant(
    config: &Config,
    user: &str,
    verified: &VerifiedGrant,
    doc: &[u8],
) -> std::result::Result<GrantOutcome, String> {
    let g = verified.grant();
    if g.user != user {
        return Ok(GrantOutcome::OtherUser {
            id: g.id.clone(),
            grant_user: g.user.clone(),
        });
    }
    let (_, stored) = store_grant(config, user, &g.id, doc).map_err(|f| f.message)?;
    Ok(GrantOutcome::Stored {
        id: g.id.clone(),
        changed: stored == Stored::Written,
    })
}

#[cfg(test)]
mod tests;
