//! The on-disk encoding shared by grants and revocation lists.
//!
//! ```text
//! {                                   <- body: a UTF-8 JSON object, ends with "\n";
//!   "version": 1,                        these exact bytes are the signed message
//!   ...
//! }
//! -----BEGIN SSH SIGNATURE-----       <- an OpenSSH SSHSIG (as `ssh-keygen -Y sign`
//! ...                                    writes it) over the body, Ed25519, SHA-512
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The body is signed as raw bytes, so no canonical JSON is needed: what is verified is
//! exactly what is parsed. An auditor splits the file at the `BEGIN` line and runs
//! `ssh-keygen -Y verify` (recipe in `docs/grant-format.md`).

use ssh_key::{HashAlg, LineEnding, SigningKey, SshSig};

use crate::error::{Error, Result};

/// Largest grant or revocation list accepted, in bytes. Revocation lists hold many ids, so
/// they get their own, larger cap ([`MAX_REVOCATION_LIST_SIZE`]).
pub const MAX_GRANT_SIZE: usize = 16 * 1024;
/// Largest revocation list accepted, in bytes.
pub const MAX_REVOCATION_LIST_SIZE: usize = 4 * 1024 * 1024;

const BEGIN: &[u8] = b"-----BEGIN SSH SIGNATURE-----\n";
const END: &[u8] = b"-----END SSH SIGNATURE-----\n";
/// Where a document's body ends: the first occurrence splits it ([`split_strict`]).
pub(crate) const SIGNATURE_MARKER: &[u8] = b"\n-----BEGIN SSH SIGNATURE-----";

/// A document split into its signed body and its (parsed, not yet verified) signature.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The signed bytes.
    pub body: Vec<u8>,
    /// The SSHSIG over `body`.
    pub signature: SshSig,
}

impl Envelope {
    /// Splits `input` strictly: size cap, exactly one signature block, nothing after it.
    pub fn parse(input: &[u8], max: usize) -> Result<Self> {
        let (body, signature) = split_strict(input, max)?;
        Ok(Self {
            body: body.to_vec(),
            signature,
        })
    }

    /// Signs `body` (which must end with `\n`) and returns the whole document. `key` is an
    /// `ssh_key::PrivateKey` or any other [`SigningKey`] (the CA passes a key whose
    /// Ed25519 form was derived once, not at every signature).
    pub fn seal<S: SigningKey>(body: &[u8], key: &S, namespace: &str) -> Result<Vec<u8>> {
        Ok(seal_parts(body, key, namespace)?.0)
    }
}

/// [`Envelope::seal`], also returning the signature it made (so that a signer need not parse
/// its own output back).
pub(crate) fn seal_parts<S: SigningKey>(
    body: &[u8],
    key: &S,
    namespace: &str,
) -> Result<(Vec<u8>, SshSig)> {
    if !body.ends_with(b"\n") {
        return Err(Error::Signing {
            detail: "body must end with a newline".into(),
        });
    }
    let sig = SshSig::sign(key, namespace, HashAlg::Sha512, body).map_err(|e| Error::Signing {
        detail: e.to_string(),
    })?;
    let pem = sig.to_pem(LineEnding::LF).map_err(|e| Error::Signing {
        detail: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(body.len() + pem.len() + 1);
    out.extend_from_slice(body);
    out.extend_from_slice(pem.as_bytes());
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    Ok((out, sig))
}

/// Splits `input` strictly (size cap, exactly one signature block in canonical form, nothing
/// after it) into the signed body, borrowed, and the parsed (not verified) signature.
pub(crate) fn split_strict(input: &[u8], max: usize) -> Result<(&[u8], SshSig)> {
    if input.len() > max {
        return Err(Error::Oversized {
            len: input.len(),
            max,
        });
    }
    if input.is_empty() {
        return Err(Error::Truncated {
            detail: "the document is empty",
        });
    }
    let begin = find(input, SIGNATURE_MARKER).ok_or(Error::Truncated {
        detail: "no SSH signature block",
    })?;
    let body = &input[..=begin];
    let armour = &input[begin + 1..];
    if !armour.starts_with(BEGIN) {
        return Err(Error::MalformedSignature {
            detail: "the BEGIN line must end with a newline".into(),
        });
    }
    let end = find(armour, END).ok_or(Error::Truncated {
        detail: "the SSH signature block has no END line",
    })?;
    let armour_len = end + END.len();
    if armour.len() > armour_len {
        return Err(Error::TrailingData {
            len: armour.len() - armour_len,
        });
    }
    let pem = std::str::from_utf8(armour).map_err(|_| Error::MalformedSignature {
        detail: "not ASCII".into(),
    })?;
    let signature = SshSig::from_pem(pem).map_err(|e| Error::MalformedSignature {
        detail: e.to_string(),
    })?;
    // The blob's version field and its base64 layout are not covered by the signature:
    // accept only the one canonical encoding, so that no byte of a document can change
    // without it being refused.
    let canonical = signature
        .to_pem(LineEnding::LF)
        .map_err(|e| Error::MalformedSignature {
            detail: e.to_string(),
        })?;
    if signature.version() != 1 || canonical.trim_end() != pem.trim_end() {
        return Err(Error::MalformedSignature {
            detail: "the signature block is not in canonical OpenSSH form \
                     (version 1, 70-column base64)"
                .into(),
        });
    }
    Ok((body, signature))
}

/// The signed body of a document (everything up to and including the newline before the
/// `BEGIN` line), without decoding or checking the signature block. For reading claims
/// only: nothing split this way is trusted (see [`crate::record`]).
pub(crate) fn split_body(input: &[u8], max: usize) -> Result<&[u8]> {
    if input.len() > max {
        return Err(Error::Oversized {
            len: input.len(),
            max,
        });
    }
    let begin = find_fast(input, SIGNATURE_MARKER).ok_or(Error::Truncated {
        detail: "no SSH signature block",
    })?;
    Ok(&input[..=begin])
}

/// The first occurrence of `needle` (same answer as `find`), skipping to candidate first
/// bytes instead of comparing a window at every offset.
pub(crate) fn find_fast(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    loop {
        let at = from + haystack.get(from..)?.iter().position(|&b| b == first)?;
        if haystack.get(at..at.checked_add(needle.len())?)? == needle {
            return Some(at);
        }
        from = at + 1;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod find_tests {
    use super::{find, find_fast};

    #[test]
    fn find_fast_agrees_with_find() {
        let needle = b"\n-----BEGIN";
        for hay in [
            &b""[..],
            b"\n",
            b"abc\n-----BEGIN",
            b"\n-----BEGI",
            b"x\n-----BEGIN\n-----BEGIN",
            b"\n\n\n-----BEGIN tail",
            b"no match at all \n----- BEGIN",
        ] {
            assert_eq!(find_fast(hay, needle), find(hay, needle), "{hay:?}");
        }
        assert_eq!(find_fast(b"abc", b""), None);
    }
}
