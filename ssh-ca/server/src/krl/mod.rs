//! OpenSSH binary Key Revocation Lists (the `RevokedKeys` file of sshd).
//!
//! No crate on the registry encodes KRLs (ssh-key 0.6 does not; `cargo info` finds no
//! `ssh-krl`, `krl` or `openssh-krl`), so this module writes the small subset we need by hand,
//! following OpenSSH's `PROTOCOL.krl`:
//!
//! ```text
//! uint64  KRL_MAGIC            0x5353484b524c0a00 ("SSHKRL\n\0")
//! uint32  KRL_FORMAT_VERSION   1
//! uint64  krl_version          (we use the revocation-list sequence)
//! uint64  generated_date
//! uint64  flags                0
//! string  reserved             ""
//! string  comment
//! then, per CA key:
//! byte    KRL_SECTION_CERTIFICATES (1)
//! string  section_data:
//!         string  ca_key               (the CA public key blob)
//!         string  reserved             ""
//!         byte    KRL_SECTION_CERT_SERIAL_LIST (0x20)
//!         string  uint64 serial ...    (ascending; serial 0 cannot be revoked)
//! ```
//! No signature section: sshd does not check KRL signatures, and hosts fetch the KRL from the
//! CA (TLS) or via `jit-host sync`. Tests check the output with `ssh-keygen -Q -f krl cert`.

use ssh_key::PublicKey;

use crate::error::{CaError, Result};
/// The magic, shared with `jit-host sync` (which refuses a KRL that does not start with it).
use jit_api::wire::KRL_MAGIC;

const KRL_FORMAT_VERSION: u32 = 1;
const KRL_SECTION_CERTIFICATES: u8 = 1;
const KRL_SECTION_CERT_SERIAL_LIST: u8 = 0x20;

fn put_string(out: &mut Vec<u8>, data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len()).map_err(CaError::KrlTooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

/// Encodes a KRL revoking `serials` (0 is skipped) for certificates signed by any of `ca_keys`.
pub fn encode(
    ca_keys: &[PublicKey],
    serials: &[u64],
    version: u64,
    generated: u64,
    comment: &str,
) -> Result<Vec<u8>> {
    let mut serials: Vec<u64> = serials.iter().copied().filter(|s| *s != 0).collect();
    serials.sort_unstable();
    serials.dedup();
    let mut out = Vec::with_capacity(64 + serials.len() * 8 + ca_keys.len() * 64);
    out.extend_from_slice(KRL_MAGIC);
    out.extend_from_slice(&KRL_FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&generated.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    put_string(&mut out, b"")?;
    put_string(&mut out, comment.as_bytes())?;
    if serials.is_empty() {
        return Ok(out);
    }
    let mut list = Vec::with_capacity(serials.len() * 8);
    for s in &serials {
        list.extend_from_slice(&s.to_be_bytes());
    }
    for ca in ca_keys {
        let blob = ca.to_bytes().map_err(|source| CaError::SshEncoding {
            what: "CA key encoding",
            source,
        })?;
        let mut section = Vec::new();
        put_string(&mut section, &blob)?;
        put_string(&mut section, b"")?;
        section.push(KRL_SECTION_CERT_SERIAL_LIST);
        put_string(&mut section, &list)?;
        out.push(KRL_SECTION_CERTIFICATES);
        put_string(&mut out, &section)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let k = ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
        let empty = encode(&[k.public_key().clone()], &[], 7, 100, "c").unwrap();
        assert_eq!(&empty[..8], b"SSHKRL\n\0");
        assert_eq!(&empty[8..12], &[0, 0, 0, 1]);
        assert_eq!(&empty[12..20], &7u64.to_be_bytes());
        assert_eq!(empty.len(), 8 + 4 + 8 + 8 + 8 + 4 + 4 + 1);
        let one = encode(&[k.public_key().clone()], &[5, 0, 5, 3], 8, 100, "c").unwrap();
        // Two serials (0 dropped, duplicate merged) at the very end, ascending.
        assert_eq!(&one[one.len() - 16..one.len() - 8], &3u64.to_be_bytes());
        assert_eq!(&one[one.len() - 8..], &5u64.to_be_bytes());
    }
}
