//! One reader for every signed document (grants and revocation lists): split the envelope,
//! decode the body (version, field names, typed fields, the kind's own checks), verify the
//! signature under the kind's namespace and check that `key_id` names the signer. Written
//! once here; [`crate::grant`] and [`crate::revocation`] add only what differs (the fields,
//! the namespace, the size cap, a grant's window).
//!
//! ```text
//! bytes --Signed::<D>::parse--> Signed<D> --verify (grant: verify_at)--> Verified...
//! D --Signed::<D>::sign(key)--> Signed<D>          (what the CA produces and hosts parse)
//! bytes + root's record --from_record--> D         (the Ed25519 check replaced, see record)
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use ssh_key::{PublicKey, SigningKey, SshSig};

use crate::envelope::{
    Envelope, SIGNATURE_MARKER, find_fast, seal_parts, split_body, split_strict,
};
use crate::error::{Error, Result};
use crate::keys::{KeyRing, fingerprint};
use crate::record::{KeyringDigest, Kind, TrustedRecord};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::grant::Grant {}
    impl Sealed for crate::revocation::RevocationList {}
}

/// A kind of signed document: the body type and the constants that tell the kinds apart.
/// Implemented by [`crate::Grant`] and [`crate::RevocationList`] only.
pub trait Document: Serialize + DeserializeOwned + sealed::Sealed {
    /// The SSHSIG namespace its signatures are made in.
    const NAMESPACE: &'static str;
    /// Largest document accepted, in bytes.
    const MAX_SIZE: usize;
    /// The field names format version 1 defines.
    const FIELDS: &'static [&'static str];
    /// What a verified-document record about it says it is.
    const KIND: Kind;
    /// The kind's own checks of every field (not the signature, not the time).
    fn check(&self) -> Result<()>;
    /// The fingerprint of the key that signs it, as the body states it.
    fn key_id(&self) -> &str;
    /// Sets the `key_id` before signing.
    fn set_key_id(&mut self, key_id: String);
}

/// A well-formed signed document of kind `D`: its exact bytes, its parsed signature block
/// and its decoded body. The signature has **not** been checked: the claims may be shown to
/// people and used to choose what to verify, never trusted. [`crate::SignedGrant`] is the
/// one grant type from the CA's signer, through a certificate, to the host.
#[derive(Debug, Clone)]
pub struct Signed<D> {
    doc: String,
    body_len: usize,
    signature: SshSig,
    claims: D,
}

impl<D: Document> Signed<D> {
    /// Parses a document strictly: size, framing, canonical signature block, version, field
    /// names, field values.
    pub fn parse(input: &[u8]) -> Result<Self> {
        let (body, signature) = split_strict(input, D::MAX_SIZE)?;
        let claims = decode_body::<D>(body)?;
        let body_len = body.len();
        // Cannot fail once the body is JSON and the armour ASCII; checked all the same.
        let doc = String::from_utf8(input.to_vec()).map_err(|_| Error::Malformed {
            detail: "the document is not UTF-8".into(),
        })?;
        Ok(Self {
            doc,
            body_len,
            signature,
            claims,
        })
    }

    /// Signs `claims` with `key` (setting `key_id` to its fingerprint): the same value
    /// [`Signed::parse`], the parser hosts use, reads back from the document (size cap
    /// included), which the property tests check over arbitrary claims.
    pub fn sign<S: SigningKey>(claims: D, key: &S) -> Result<Self> {
        let key_id = fingerprint(&PublicKey::from(key.public_key()));
        Self::sign_as(claims, key, key_id)
    }

    /// [`Signed::sign`] for a signer that knows its key's fingerprint already (`key_id`,
    /// `SHA256:...`; the CA computes it once at startup, not at every grant). A `key_id` that
    /// does not name `key` makes a document every host refuses (`KeyIdMismatch`).
    ///
    /// The document is not parsed back (that cost a PEM decode, a canonical re-encoding and
    /// a JSON value tree per grant): it is built from the parts just made, which are what
    /// `parse` would return: the body is the pretty JSON of claims `check` accepted, the
    /// signature block is the canonical armour of the signature just made, and the size cap
    /// and the one signature marker are checked here as `parse` checks them.
    pub fn sign_as<S: SigningKey>(mut claims: D, key: &S, key_id: String) -> Result<Self> {
        claims.set_key_id(key_id);
        claims.check()?;
        let mut body = serde_json::to_vec_pretty(&claims).map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?;
        body.push(b'\n');
        // Pretty JSON escapes newlines inside strings, so the marker cannot occur in a body;
        // checked all the same, since `parse` splits at its first occurrence.
        if find_fast(&body, SIGNATURE_MARKER).is_some() {
            return Err(Error::Signing {
                detail: "the body contains a signature marker".into(),
            });
        }
        let body_len = body.len();
        let (doc, signature) = seal_parts(&body, key, D::NAMESPACE)?;
        if doc.len() > D::MAX_SIZE {
            return Err(Error::Oversized {
                len: doc.len(),
                max: D::MAX_SIZE,
            });
        }
        let doc = String::from_utf8(doc).map_err(|_| Error::Malformed {
            detail: "the document is not UTF-8".into(),
        })?;
        Ok(Self {
            doc,
            body_len,
            signature,
            claims,
        })
    }

    /// The claims, unverified. Use only for display and for choosing what to verify.
    pub fn claims_unverified(&self) -> &D {
        &self.claims
    }

    /// The whole document, as stored, sent and embedded in certificates.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// The whole document's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.doc.as_bytes()
    }

    /// The whole document.
    pub fn into_doc(self) -> String {
        self.doc
    }

    /// The signed bytes (the body, up to the signature block).
    pub fn body(&self) -> &[u8] {
        self.doc.as_bytes().get(..self.body_len).unwrap_or_default()
    }

    /// The signature block, parsed, not verified.
    pub fn signature(&self) -> &SshSig {
        &self.signature
    }

    /// Checks the signature against `trusted` in `D`'s namespace and that `key_id` names
    /// the signer. Returns the signer's fingerprint.
    pub(crate) fn verify_signature(&self, trusted: &KeyRing) -> Result<String> {
        let signer = trusted.verify(D::NAMESPACE, self.body(), &self.signature)?;
        if self.claims.key_id() != signer {
            return Err(Error::KeyIdMismatch {
                key_id: self.claims.key_id().to_string(),
                signer,
            });
        }
        Ok(signer)
    }

    /// The claims, once checked (by the caller, with [`Signed::verify_signature`]).
    pub(crate) fn into_claims(self) -> D {
        self.claims
    }
}

/// Signs `claims` (setting `key_id`) and returns the document: the body is the pretty JSON
/// of `claims` and a newline, sealed in `D`'s namespace.
pub(crate) fn seal<D: Document, S: SigningKey>(mut claims: D, key: &S) -> Result<Vec<u8>> {
    claims.set_key_id(fingerprint(&PublicKey::from(key.public_key())));
    claims.check()?;
    let mut body = serde_json::to_vec_pretty(&claims).map_err(|e| Error::Signing {
        detail: e.to_string(),
    })?;
    body.push(b'\n');
    Envelope::seal(&body, key, D::NAMESPACE)
}

/// The claims of a document read from its JSON body only: the signature block is neither
/// decoded nor checked. Strict on the body (same rules as [`Signed::parse`]), so it accepts
/// nothing `parse` would refuse for its body; cheaper (no base64/PEM decode, no canonical
/// re-encoding). Use only to choose what to verify, or after a record vouched for the bytes.
pub(crate) fn claims_unverified<D: Document>(input: &[u8]) -> Result<D> {
    let body = split_body(input, D::MAX_SIZE)?;
    // Typed and in one pass (no JSON value tree): a body this accepts is one `decode_body`
    // accepts too, with the same result (same derive, unknown fields denied, `check`
    // below). Anything else takes the slower path for its precise error.
    match serde_json::from_slice::<D>(body) {
        Ok(claims) => {
            claims.check()?;
            Ok(claims)
        }
        Err(_) => decode_body(body),
    }
}

/// The claims of `input`, whose exact bytes root already verified under the keys in force
/// as `record` (from [`crate::record::read_trusted`]) states: the record must be about a
/// `D`, name `input`'s SHA-256 and `keyring`, and the claims' `key_id` must name the
/// recorded signer. This replaces the Ed25519 verification and nothing else.
pub(crate) fn from_record<D: Document>(
    input: &[u8],
    record: &TrustedRecord,
    keyring: &KeyringDigest,
) -> Result<D> {
    record.check(D::KIND, input, keyring)?;
    let claims = claims_unverified::<D>(input)?;
    if claims.key_id() != record.signer() {
        return Err(Error::KeyIdMismatch {
            key_id: claims.key_id().to_string(),
            signer: record.signer().to_string(),
        });
    }
    Ok(claims)
}

/// Decodes a body: a JSON object of version 1 with only `D`'s fields, then the typed fields
/// and `D`'s own checks.
fn decode_body<D: Document>(body: &[u8]) -> Result<D> {
    let map = parse_body(body, D::FIELDS)?;
    let claims: D = serde_json::from_value(Value::Object(map)).map_err(|e| Error::Malformed {
        detail: e.to_string(),
    })?;
    claims.check()?;
    Ok(claims)
}

/// Parses a body into a JSON object and checks `version` and the field names.
///
/// Unknown versions and unknown fields are their own errors, before any typed parsing.
fn parse_body(body: &[u8], known_fields: &[&str]) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::Malformed {
        detail: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(Error::Malformed {
            detail: "the body is not a JSON object".into(),
        });
    };
    match map.get("version") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => {}
            Some(found) => return Err(Error::UnknownVersion { found }),
            None => {
                return Err(Error::InvalidField {
                    name: "version",
                    detail: "must be a positive integer".into(),
                });
            }
        },
        Some(_) => {
            return Err(Error::InvalidField {
                name: "version",
                detail: "must be an integer".into(),
            });
        }
        None => {
            return Err(Error::Malformed {
                detail: "missing field \"version\"".into(),
            });
        }
    }
    if let Some(name) = map.keys().find(|k| !known_fields.contains(&k.as_str())) {
        return Err(Error::UnknownField { name: name.clone() });
    }
    Ok(map)
}

#[cfg(test)]
mod tests;
