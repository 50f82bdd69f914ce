//! What the session hook binds: from sshd's `SSH_AUTH_INFO_0` (read by `pam_jit.so` through
//! `pam_getenv`) to a [`Binding`], or the reason there is nothing to bind. Pure: the module
//! passes in the text, the user, the time and the kernel's facts.
//!
//! `SSH_AUTH_INFO_0` lists the authentications that completed, one per line
//! (`publickey ssh-ed25519-cert-v01@openssh.com AAAA...`). It is sshd's, but treated as
//! untrusted input: bounded in size and lines, every certificate verified against
//! host.toml's `user_ca_keys` (signature, user certificate, window, `PAM_USER` among its
//! principals) and its `jit-grant@jit` grant against `grant_keys` (signature, window with
//! the clock skew), which must be for `PAM_USER`, name this certificate's serial and be
//! session-bound. The first certificate that passes everything is bound: one connection
//! binds one session-bound grant. Every other certificate in the same connection whose
//! session-bound grant also passes ([`unbound_others`], e.g. `AuthenticationMethods
//! publickey,publickey` with two jit certificates) is not bound; the hook logs a `no-bind`
//! line for each, and its sudo is denied in that connection ("not bound to SSH session N
//! (grant G is)").

use jit_common::log::sanitize;
use jit_common::{UnixTime, UnverifiedGrant};
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg};

use super::{BINDING_VERSION, Binding, Liveness, MAX_TEXT};
use crate::config::Config;

/// Longest `SSH_AUTH_INFO_0` looked at, in bytes.
pub const MAX_AUTH_INFO: usize = 64 * 1024;
/// Most lines of `SSH_AUTH_INFO_0` looked at.
pub const MAX_AUTH_LINES: usize = 16;
/// The certificate extension that carries a grant.
pub use jit_common::grant::CERT_EXTENSION;

/// What the session hook knows besides `SSH_AUTH_INFO_0`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `PAM_USER`.
    pub user: &'a str,
    /// Now.
    pub now: UnixTime,
    /// This process's audit session id (`None`: unset, no `pam_loginuid` before pam_jit).
    pub session_id: Option<u32>,
    /// The parent's (the sshd listener's) audit session id. Equal to `session_id` when
    /// `pam_loginuid` did not run and the listener itself was started from a login session:
    /// every connection would then share the listener's id.
    pub parent_session_id: Option<u32>,
    /// This process's login uid (`/proc/self/loginuid`), which `pam_loginuid` sets to the
    /// user's uid.
    pub loginuid: Option<u32>,
    /// `PAM_USER`'s uid in the passwd database.
    pub user_uid: Option<u32>,
    /// This process (the session leader): pid and start time.
    pub leader_pid: u32,
    /// Field 22 of `/proc/self/stat`.
    pub leader_start: u64,
    /// The current boot id.
    pub boot_id: &'a str,
    /// `PAM_RHOST`.
    pub client: Option<&'a str>,
    /// `PAM_TTY`.
    pub tty: Option<&'a str>,
}

/// The outcome for one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Write this binding.
    Bind(Binding),
    /// Nothing to bind and nothing wrong: no certificate, no jit certificate, or a grant that
    /// is not session-bound (why, for a debug log line).
    Nothing(String),
    /// A session-bound grant was presented but cannot be bound (why, for the log: its sudo
    /// will be denied). `grant` and `serial` when known.
    Refused {
        /// Why.
        reason: String,
        /// The grant id, when its claims were read.
        grant: Option<String>,
        /// The certificate serial.
        serial: Option<u64>,
    },
}

/// The certificates in `SSH_AUTH_INFO_0` (`publickey <cert-type> <base64>` lines), and one
/// line per line that looked like a certificate but did not parse. Plain keys, other methods
/// and blank lines are skipped; at most [`MAX_AUTH_LINES`] lines of a text of at most
/// [`MAX_AUTH_INFO`] bytes are looked at.
pub fn certificates(auth_info: &str) -> (Vec<Certificate>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    if auth_info.len() > MAX_AUTH_INFO {
        problems.push(format!(
            "SSH_AUTH_INFO_0 is {} bytes, more than {MAX_AUTH_INFO}; ignored",
            auth_info.len()
        ));
        return (certs, problems);
    }
    for (n, line) in auth_info.lines().enumerate() {
        if n >= MAX_AUTH_LINES {
            problems.push(format!(
                "SSH_AUTH_INFO_0 has more than {MAX_AUTH_LINES} lines; the rest is ignored"
            ));
            break;
        }
        let Some(rest) = line.strip_prefix("publickey ") else {
            continue;
        };
        let rest = rest.trim();
        let kind = rest.split(' ').next().unwrap_or_default();
        if !kind.ends_with("-cert-v01@openssh.com") {
            continue;
        }
        match Certificate::from_openssh(rest) {
            Ok(c) => certs.push(c),
            Err(e) => problems.push(format!(
                "line {}: a {} that does not parse: {e}",
                n + 1,
                sanitize(kind, 64)
            )),
        }
    }
    (certs, problems)
}

/// A time inside `[after, before)` within `skew` of `now`, if there is one (so a host clock
/// a little behind or ahead of sshd's is not a reason to refuse).
fn skewed(now: u64, after: u64, before: u64, skew: u64) -> u64 {
    if now < after && after - now <= skew {
        after
    } else if now >= before && before > after && now - before < skew {
        before - 1
    } else {
        now
    }
}

/// Why one certificate cannot bind: not a jit certificate or grant that is not
/// session-bound (`Err(None)`: nothing to bind), or a refusal.
type Why = Option<(String, Option<String>)>;

/// Checks one certificate; returns the binding's grant fields on success.
fn check(config: &Config, req: &Request<'_>, cert: &Certificate) -> Result<jit_common::Grant, Why> {
    let serial = cert.serial();
    let Some(doc) = cert.extensions().get(CERT_EXTENSION) else {
        return Err(None);
    };
    // Only a grant that claims to be session-bound is worth verifying here: nothing else is
    // written (the claims are verified below before anything is).
    let claims = jit_common::grant::parse_claims_unverified(doc.as_bytes()).map_err(|e| {
        Some((
            format!("certificate serial {serial}'s grant does not parse: {e}"),
            None,
        ))
    })?;
    if !claims.session_bound {
        return Err(None);
    }
    let gid = Some(claims.id.clone());
    let refuse = |why: String| Some((why, gid.clone()));
    if config.user_ca_keys.is_empty() {
        return Err(refuse(
            "host.toml has no user_ca_keys, so no certificate can be trusted".into(),
        ));
    }
    let fps: Vec<_> = config
        .user_ca_keys
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .collect();
    let at = skewed(
        req.now.as_secs(),
        cert.valid_after(),
        cert.valid_before(),
        config.clock_skew_secs,
    );
    cert.validate_at(at, &fps).map_err(|_| {
        refuse(format!(
            "certificate serial {serial} is not signed by a user_ca_keys key or is outside its window"
        ))
    })?;
    if cert.cert_type() != CertType::User {
        return Err(refuse(format!(
            "certificate serial {serial} is not a user certificate"
        )));
    }
    if !cert.valid_principals().iter().any(|p| p == req.user) {
        return Err(refuse(format!(
            "certificate serial {serial} does not list principal {}",
            req.user
        )));
    }
    let verified = UnverifiedGrant::parse(doc.as_bytes())
        .and_then(|g| g.verify_at(req.now, &config.grant_keys, config.clock_skew_secs))
        .map_err(|e| refuse(format!("the certificate's grant is not valid: {e}")))?;
    let g = verified.grant().clone();
    if g.user != req.user {
        return Err(refuse(format!(
            "grant {} is for user {}, not {}",
            g.id, g.user, req.user
        )));
    }
    if g.cert_serial != Some(serial) {
        return Err(refuse(format!(
            "grant {} does not name certificate serial {serial}",
            g.id
        )));
    }
    if !g.session_bound {
        return Err(None);
    }
    Ok(g)
}

/// `PAM_RHOST`/`PAM_TTY` as a binding field: `-` when unset or empty, control and format
/// characters escaped, bounded.
fn text(v: Option<&str>) -> String {
    match v.map(|s| sanitize(s, MAX_TEXT)) {
        Some(s) if !s.is_empty() => s,
        _ => "-".into(),
    }
}

/// The fix for a login whose audit session was not set up for it.
const LOGINUID_FIX: &str = "/etc/pam.d/sshd needs `session required pam_loginuid.so` before pam_jit.so (jit-host setup --session)";

/// This login's own audit session id: set, not the sshd listener's (inherited when
/// `pam_loginuid` did not run), and with the user's login uid (`pam_loginuid` sets both).
pub fn own_session(req: &Request<'_>) -> Result<u32, String> {
    let Some(id) = req.session_id.filter(|id| super::is_session_id(*id)) else {
        return Err(format!(
            "this login has no audit session id: {LOGINUID_FIX}"
        ));
    };
    if req.parent_session_id == Some(id) {
        return Err(format!(
            "this login's audit session id {id} is the sshd listener's, shared by every connection: {LOGINUID_FIX}"
        ));
    }
    match (req.loginuid, req.user_uid) {
        (Some(l), Some(u)) if l == u => Ok(id),
        (l, u) => Err(format!(
            "this login's loginuid ({}) is not the uid of {} ({}): {LOGINUID_FIX}",
            l.map_or("unset".into(), |l| l.to_string()),
            req.user,
            u.map_or("no passwd entry".into(), |u| u.to_string()),
        )),
    }
}

/// What to bind for this login, given `SSH_AUTH_INFO_0` (`None` if sshd set none).
pub fn choose(config: &Config, req: &Request<'_>, auth_info: Option<&str>) -> Outcome {
    let Some(info) = auth_info else {
        return Outcome::Nothing("no SSH_AUTH_INFO_0 in the PAM environment".into());
    };
    let (certs, problems) = certificates(info);
    let mut refused: Option<Outcome> = None;
    for cert in &certs {
        match check(config, req, cert) {
            Ok(g) => {
                let session_id = match own_session(req) {
                    Ok(id) => id,
                    Err(reason) => {
                        return Outcome::Refused {
                            reason,
                            grant: Some(g.id),
                            serial: Some(cert.serial()),
                        };
                    }
                };
                return Outcome::Bind(Binding {
                    version: BINDING_VERSION,
                    session_id,
                    user: req.user.to_string(),
                    grant_id: g.id,
                    role: g.role,
                    serial: cert.serial(),
                    leader_pid: req.leader_pid,
                    leader_start: req.leader_start,
                    boot_id: req.boot_id.to_string(),
                    since: req.now,
                    client: text(req.client),
                    tty: text(req.tty),
                    not_after: g.not_after,
                    ended_at: None,
                    ended_by: None,
                });
            }
            Err(Some((reason, grant))) => {
                refused.get_or_insert(Outcome::Refused {
                    reason,
                    grant,
                    serial: Some(cert.serial()),
                });
            }
            Err(None) => {}
        }
    }
    if let Some(r) = refused {
        return r;
    }
    match (certs.len(), problems.first()) {
        (0, Some(p)) => Outcome::Nothing(format!("no certificate ({p})")),
        (0, None) => Outcome::Nothing("no certificate among the authentications".into()),
        _ => Outcome::Nothing("no session-bound jit grant in the certificate".into()),
    }
}

/// The other session-bound grants of `auth_info` that pass every check but are not the one
/// bound (`bound_serial`): `(grant id, certificate serial)` each, in order. One connection
/// binds one; the session hook logs these as `no-bind`.
pub fn unbound_others(
    config: &Config,
    req: &Request<'_>,
    auth_info: &str,
    bound_serial: u64,
) -> Vec<(String, u64)> {
    certificates(auth_info)
        .0
        .iter()
        .filter(|c| c.serial() != bound_serial)
        .filter_map(|c| check(config, req, c).ok().map(|g| (g.id, c.serial())))
        .collect()
}

/// Whether `new` may be written over what its file holds now (`existing`, with its
/// liveness): nothing, a tombstone, a dead binding (leader gone, earlier boot), or the very
/// same binding of this same leader (same grant and certificate serial). A live binding is
/// never replaced by one of another leader (two live connections with one audit session id
/// mean ids are not per login), nor by another grant or serial even from the same leader (a
/// second or misplaced `pam_jit.so` session line after `pam_env` could otherwise bind a
/// certificate the login did not present, read from the user's ~/.pam_environment).
pub fn may_replace(existing: Option<(&Binding, &Liveness)>, new: &Binding) -> Result<(), String> {
    let Some((old, Liveness::Alive)) = existing else {
        return Ok(());
    };
    if (old.leader_pid, old.leader_start) != (new.leader_pid, new.leader_start) {
        return Err(format!(
            "session {} already has a live binding of another connection (leader pid {}, grant {}): audit session ids are not per login; {LOGINUID_FIX}",
            new.session_id, old.leader_pid, old.grant_id
        ));
    }
    if (&old.grant_id, old.serial) != (&new.grant_id, new.serial) {
        return Err(format!(
            "session {} is already bound to grant {} (certificate serial {}); a live binding is never replaced by another grant: remove any second or misplaced `pam_jit.so` session line (jit-host check)",
            new.session_id, old.grant_id, old.serial
        ));
    }
    Ok(())
}
