//! Authentication of signed API calls: the headers as received to a [`Caller`], or a
//! refusal that is audited. The nonce set behind replay protection is `commit::Nonces`.

use std::sync::atomic::Ordering;

use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use super::{ApiResult, Ca, lock, refuse};
use crate::audit::event;
use crate::error::ApiError;
use crate::store::{self, KeyPurpose};
use jit_api::auth;
use jit_api::wire::ErrorCode as C;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// The key that signed the call.
    pub key: CallerKey,
    /// The signed call itself (None for callers not made from a signed call, e.g. tests):
    /// what an approval keeps as its evidence.
    pub proof: Option<CallProof>,
    /// The web session the call was made from (`ws-...`, see `service::web`); None for a
    /// signed call. Records of decisions made from a session carry it.
    pub session: Option<String>,
}

/// A signed call as verified: enough for anyone holding the caller's public key to check it
/// again with `ssh-keygen -Y verify -n jit-api@jit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallProof {
    /// The exact message signed ([`auth::message`]).
    pub message: String,
    /// The SSHSIG, armored (`-----BEGIN SSH SIGNATURE-----`).
    pub signature: String,
    /// The signing public key (`ssh-ed25519 AAAA...`, no comment).
    pub key: String,
}

/// What signed a call: which registered key, and whether it is an approval key or a touched
/// FIDO key (a role's `approval_key` may require either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerKey {
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Registered as an approval key (may approve, deny, list, read; never request).
    pub approval: bool,
    /// A FIDO key (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`).
    pub sk: bool,
    /// The FIDO signature asserts user presence (the key was touched).
    pub touched: bool,
}

impl CallerKey {
    /// The `store::KEY_*` bits recorded with an approval.
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.approval {
            f |= store::KEY_APPROVAL;
        }
        if self.sk {
            f |= store::KEY_SK;
        }
        if self.touched {
            f |= store::KEY_TOUCHED;
        }
        f
    }

    /// From recorded `store::KEY_*` bits.
    pub fn from_flags(flags: u32) -> Self {
        Self {
            fingerprint: String::new(),
            approval: flags & store::KEY_APPROVAL != 0,
            sk: flags & store::KEY_SK != 0,
            touched: flags & store::KEY_TOUCHED != 0,
        }
    }
}

/// The signing headers of a request, as received.
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders {
    pub key: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
    /// `X-Jit-Audience` (scheme v2); absent for the legacy scheme v1.
    pub audience: Option<String>,
    /// The peer's address, when the transport knows it (for aggregating refusals).
    pub source: Option<std::net::IpAddr>,
}

/// Whether an SSH signature made by a FIDO key asserts user presence: its data ends with
/// flags (1 byte, bit 0 = user present) and a counter (4 bytes).
fn sk_touched(sig: &ssh_key::SshSig) -> bool {
    let data = sig.signature().as_bytes();
    data.len() > 5 && data[data.len() - 5] & 0x01 != 0
}

impl Ca {
    /// Checks a signed API call; returns the caller. Every failure is audited.
    pub fn authenticate(
        &self,
        method: &str,
        path_and_query: &str,
        h: &AuthHeaders,
        body: &[u8],
    ) -> ApiResult<Caller> {
        let now = self.now();
        match self.authenticate_inner(method, path_and_query, h, body, now) {
            Ok(c) => Ok(c),
            // A server-side failure (database busy) is not the caller's fault: no audit row.
            Err((_, e)) if e.code.is_server_fault() => Err(e),
            Err((actor, e)) => {
                self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                if matches!(
                    e.code,
                    C::BadSignature
                        | C::UnknownKey
                        | C::StaleTimestamp
                        | C::WrongAudience
                        | C::ReplayedNonce
                ) {
                    // Counted for alerts before the refusal rate limit (refusal_at), which
                    // records only the first few of a flood. Replays and calls signed for
                    // another CA carry a valid signature: captured traffic.
                    let fp = h
                        .key
                        .as_deref()
                        .and_then(|k| PublicKey::from_openssh(k.trim()).ok())
                        .map(|k| k.fingerprint(HashAlg::Sha256).to_string());
                    // Every code but unknown_key comes after the key was found registered;
                    // the actor is then "USER (FINGERPRINT)".
                    let user = fp.as_deref().and_then(|fp| {
                        actor
                            .strip_suffix(&format!(" ({fp})"))
                            .filter(|_| e.code != C::UnknownKey)
                    });
                    self.alert_auth_failure(now, h.source, fp.as_deref(), user);
                }
                let details = json!({
                    "method": method,
                    "path": path_and_query,
                });
                Err(self.refusal_at(now, h.source, &actor, event::AUTH_FAILURE, details, e))
            }
        }
    }

    fn authenticate_inner(
        &self,
        method: &str,
        path_and_query: &str,
        h: &AuthHeaders,
        body: &[u8],
        now: u64,
    ) -> std::result::Result<Caller, (String, ApiError)> {
        let anon = || "unknown".to_string();
        let (Some(key), Some(ts), Some(nonce), Some(sig)) =
            (&h.key, &h.timestamp, &h.nonce, &h.signature)
        else {
            return Err((
                anon(),
                refuse(
                    C::Unauthenticated,
                    format!(
                        "this call must be signed: send the {}, {}, {} and {} headers (the jit client does this)",
                        auth::HDR_KEY,
                        auth::HDR_TIMESTAMP,
                        auth::HDR_NONCE,
                        auth::HDR_SIGNATURE
                    ),
                ),
            ));
        };
        let Ok(public) = PublicKey::from_openssh(key.trim()) else {
            return Err((
                anon(),
                refuse(C::UnknownKey, "the key header is not an OpenSSH public key"),
            ));
        };
        let fp = public.fingerprint(HashAlg::Sha256).to_string();
        let key_line =
            auth::key_header(&public).map_err(|e| (fp.clone(), ApiError::internal(e)))?;
        let found = self
            .read_db(|c| c.user_by_key(&key_line))
            .map_err(|e| (fp.clone(), ApiError::from(e)))?;
        let Some((user, groups, purpose)) = found else {
            return Err((
                fp.clone(),
                refuse(
                    C::UnknownKey,
                    format!(
                        "key {fp} is not registered; ask an operator to run `jit-ca user add NAME --key FILE`"
                    ),
                ),
            ));
        };
        let actor = format!("{user} ({fp})");
        let ts: u64 = ts.trim().parse().map_err(|_| {
            (
                actor.clone(),
                refuse(
                    C::StaleTimestamp,
                    "the timestamp header is not a number of Unix seconds",
                ),
            )
        })?;
        if ts.abs_diff(now) > auth::MAX_SKEW_SECS {
            return Err((
                actor,
                refuse(
                    C::StaleTimestamp,
                    format!(
                        "request time {ts} is more than {}s from the server's {now}; check your clock (NTP)",
                        auth::MAX_SKEW_SECS
                    ),
                ),
            ));
        }
        if nonce.len() != auth::NONCE_HEX_LEN
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    format!(
                        "the nonce must be {} lowercase hex characters",
                        auth::NONCE_HEX_LEN
                    ),
                ),
            ));
        }
        let Some(sig) = auth::decode_signature(sig) else {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    "the signature header is not a base64 SSH signature",
                ),
            ));
        };
        let msg = match &h.audience {
            Some(aud) => {
                if aud.len() > auth::MAX_AUDIENCE_LEN {
                    return Err((
                        actor,
                        refuse(C::WrongAudience, "the audience header is too long"),
                    ));
                }
                auth::message(aud, method, path_and_query, body, ts, nonce)
            }
            None if self.config.accept_v1_signatures => {
                auth::message_v1(method, path_and_query, body, ts, nonce)
            }
            None => {
                return Err((
                    actor,
                    refuse(
                        C::LegacySignature,
                        format!(
                            "this call is signed with the legacy scheme v1, which does not name the CA it is for; \
                             upgrade jit (it signs for audience {}), or an operator may set \
                             accept_v1_signatures = true in config.toml during a transition",
                            self.audience
                        ),
                    ),
                ));
            }
        };
        if !auth::verify(&public, &msg, &sig) {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    "the signature does not match this request (method, path, body, timestamp and nonce are signed)",
                ),
            ));
        }
        match &h.audience {
            Some(aud) if *aud != self.audience => {
                return Err((
                    actor,
                    refuse(
                        C::WrongAudience,
                        format!(
                            "this call was signed for the CA {}, but this CA is {}: a call made for another CA \
                             (for example staging) is not accepted here; point jit at the right server, or fix \
                             ca_fingerprint in the jit config",
                            jit_common::log::sanitize(aud, auth::MAX_AUDIENCE_LEN),
                            self.audience
                        ),
                    ),
                ));
            }
            Some(_) => {}
            None => self.note_legacy(&user, &fp, now),
        }
        let fresh = self
            .backend
            .use_nonce(nonce, now)
            .map_err(|e| (actor.clone(), ApiError::from(e)))?;
        if !fresh {
            return Err((
                actor,
                refuse(
                    C::ReplayedNonce,
                    "this nonce was already used: a replayed request",
                ),
            ));
        }
        let sk = matches!(
            public.algorithm(),
            ssh_key::Algorithm::SkEd25519 | ssh_key::Algorithm::SkEcdsaSha2NistP256
        );
        let touched = sk && sk_touched(&sig);
        let proof = match (String::from_utf8(msg), sig.to_pem(ssh_key::LineEnding::LF)) {
            (Ok(message), Ok(signature)) => Some(CallProof {
                message,
                signature,
                key: key_line,
            }),
            _ => None,
        };
        Ok(Caller {
            user,
            groups,
            key: CallerKey {
                fingerprint: fp,
                approval: purpose == KeyPurpose::Approval,
                sk,
                touched,
            },
            proof,
            session: None,
        })
    }

    /// Counts an accepted legacy (v1) call; audits it once per user and hour.
    fn note_legacy(&self, user: &str, fp: &str, now: u64) {
        self.stats.legacy_signatures.fetch_add(1, Ordering::Relaxed);
        let due = {
            let mut seen = lock(&self.legacy_audited);
            if seen.len() > 10_000 {
                seen.retain(|_, t| now.saturating_sub(*t) < 3600);
            }
            match seen.get(user) {
                Some(t) if now.saturating_sub(*t) < 3600 => false,
                _ => {
                    seen.insert(user.to_string(), now);
                    true
                }
            }
        };
        if due {
            let details = json!({"key": fp, "note": "accepted a legacy v1 signature (accept_v1_signatures = true); recorded once per user and hour"});
            if let Err(e) = self.audit_at(now, user, event::LEGACY_SIGNATURE, details) {
                jit_common::errln!("jit-ca: audit of a legacy signature failed: {e}");
            }
        }
    }
}
