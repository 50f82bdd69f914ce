//! Verified-document records: root's note that the exact bytes of one grant or revocation
//! list were verified against the exact keyring in force, so that a fresh process (the PAM
//! module inside sudo) can skip the Ed25519 verification and nothing else.
//!
//! ```text
//! <state_dir>/verified/                 root, 0755 (never the grant writer's)
//!   <sha256 of the document, hex>       root, 0644, written atomically:
//!       jit-verified v1
//!       kind grant                      grant | revocations
//!       sha256 <hex>                    SHA-256 of the exact document bytes
//!       keyring <hex>                   KeyringDigest of grant_keys + break_glass_keys
//!       ring grant                      grant | break-glass: which keys verified it
//!       signer SHA256:...               fingerprint of the verifying key
//! ```
//!
//! Trust argument, in short:
//! * A record is only written by `write_grant_record` / `write_revocations_record`,
//!   which verify the signature themselves before writing (callers cannot pass a verdict
//!   in), and which the host tool runs as root only. They (and `prune`) exist only with the
//!   `write` feature, which pam_jit.so is built without.
//! * A record is only believed when read by [`read_trusted`]: a regular file owned by root,
//!   not group/world-writable, in directories owned by root and not writable by others
//!   ([`crate::secure_file`], `Policy::root_only`). Anything else is ignored, which means
//!   the signature is verified as if there were no record: never an allow.
//! * A record applies only to a document whose SHA-256 is the one it names (a forged or
//!   edited file has another hash) and only while the configured keys hash to the same
//!   [`KeyringDigest`] (adding, removing or moving a key between the grant and break-glass
//!   lists invalidates every record).
//! * A record replaces only the signature check. Window, user, host, sudo flag, revocation
//!   and staleness checks all still run on the claims of the exact bytes that were verified
//!   ([`crate::VerifiedGrant::from_record`], [`crate::VerifiedRevocationList::from_record`]).
//!
//! The grant writer (the user sshd runs `jit-host principals` as) owns the per-user grant
//! directories but not `<state_dir>` nor `verified/`, so it can add, replace or delete grant
//! files but cannot create or change a record: a grant it forges has no record and fails
//! verification; a verified grant it copies elsewhere carries the same claims (user, hosts,
//! window) and is judged by them.

use std::collections::BTreeSet;
use std::fmt;
#[cfg(any(test, feature = "write"))]
use std::fs;
use std::path::{Path, PathBuf};

// ssh-key's own sha2 (re-exported): no extra dependency.
use ssh_key::sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::secure_file::{self, FileError, Policy};

/// The directory under `state_dir` that holds the records.
pub const DIR_NAME: &str = "verified";
/// Largest record file accepted, in bytes.
pub const MAX_RECORD_SIZE: u64 = 1024;
const MAGIC: &str = "jit-verified v1";

/// What kind of document a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A grant (`jit-grant@jit`).
    Grant,
    /// A revocation list (`jit-revocations@jit`).
    Revocations,
}

impl Kind {
    #[cfg(any(test, feature = "write"))]
    fn word(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Revocations => "revocations",
        }
    }
}

/// Which configured keys verified the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// `grant_keys`.
    Grant,
    /// `break_glass_keys` (grants only).
    BreakGlass,
}

impl Ring {
    #[cfg(any(test, feature = "write"))]
    fn word(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::BreakGlass => "break-glass",
        }
    }
}

/// SHA-256 of a document, the name of its record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocDigest([u8; 32]);

impl DocDigest {
    /// The digest of `doc`'s exact bytes.
    pub fn of(doc: &[u8]) -> Self {
        Self(Sha256::digest(doc).into())
    }

    /// Lower-case hex, the record's file name.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for DocDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocDigest({})", self.hex())
    }
}

/// A digest of the keys in force: `grant_keys` and `break_glass_keys`, each as a sorted set
/// of OpenSSH wire encodings, domain-separated. Comments and order in host.toml do not
/// matter; any added, removed or moved key changes it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyringDigest([u8; 32]);

impl KeyringDigest {
    /// The digest of the configured rings.
    pub fn of(grant_keys: &KeyRing, break_glass_keys: &KeyRing) -> Result<Self> {
        let mut h = Sha256::new();
        h.update(b"jit-keyring v1\0");
        for (name, ring) in [("grant", grant_keys), ("break-glass", break_glass_keys)] {
            let mut blobs = BTreeSet::new();
            for k in ring.keys() {
                let blob = k.to_bytes().map_err(|e| Error::BadKey {
                    detail: e.to_string(),
                })?;
                blobs.insert(blob);
            }
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update((blobs.len() as u64).to_be_bytes());
            for b in blobs {
                h.update((b.len() as u64).to_be_bytes());
                h.update(&b);
            }
        }
        Ok(Self(h.finalize().into()))
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for KeyringDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyringDigest({})", self.hex())
    }
}

/// A record read from a root-owned, not group/world-writable file. The only way to get one
/// outside this module is [`read_trusted`], so holding one means root wrote it. It still has
/// to match the document and the keyring ([`TrustedRecord::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRecord {
    kind: Kind,
    doc: DocDigest,
    keyring: KeyringDigest,
    ring: Ring,
    signer: String,
}

impl TrustedRecord {
    /// The document kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Which configured keys verified the document.
    pub fn ring(&self) -> Ring {
        self.ring
    }

    /// The verifying key's fingerprint.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// The keyring digest the document was verified under.
    pub fn keyring(&self) -> KeyringDigest {
        self.keyring
    }

    /// Whether this record applies to `doc` of `kind` under `keyring`; `Err` says why not.
    pub fn check(&self, kind: Kind, doc: &[u8], keyring: &KeyringDigest) -> Result<()> {
        let bad = |detail: &str| {
            Err(Error::Record {
                detail: detail.to_string(),
            })
        };
        if self.kind != kind {
            return bad("it is about another kind of document");
        }
        if self.keyring != *keyring {
            return bad("it was made under other keys than host.toml trusts now");
        }
        if self.doc != DocDigest::of(doc) {
            return bad("it names other document bytes");
        }
        if kind == Kind::Revocations && self.ring != Ring::Grant {
            return bad("revocation lists are verified with grant keys only");
        }
        Ok(())
    }

    #[cfg(any(test, feature = "write"))]
    fn encode(&self) -> String {
        format!(
            "{MAGIC}\nkind {}\nsha256 {}\nkeyring {}\nring {}\nsigner {}\n",
            self.kind.word(),
            self.doc.hex(),
            self.keyring.hex(),
            self.ring.word(),
            self.signer
        )
    }

    /// Parses record text strictly (exact lines, exact order, nothing else).
    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| "does not end with a newline".to_string())?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [magic, kind, sha, keyring, ring, signer] = lines.as_slice() else {
            return Err(format!("has {} lines, expected 6", lines.len()));
        };
        if *magic != MAGIC {
            return Err(format!("first line is not {MAGIC:?}"));
        }
        let field = |line: &str, name: &str| -> std::result::Result<String, String> {
            line.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| format!("expected a {name:?} line"))
        };
        let kind = match field(kind, "kind")?.as_str() {
            "grant" => Kind::Grant,
            "revocations" => Kind::Revocations,
            other => return Err(format!("unknown kind {other:?}")),
        };
        let doc = DocDigest(unhex(&field(sha, "sha256")?)?);
        let keyring = KeyringDigest(unhex(&field(keyring, "keyring")?)?);
        let ring = match field(ring, "ring")?.as_str() {
            "grant" => Ring::Grant,
            "break-glass" => Ring::BreakGlass,
            other => return Err(format!("unknown ring {other:?}")),
        };
        let signer = field(signer, "signer")?;
        if !signer.starts_with("SHA256:")
            || signer.len() > 128
            || signer.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("the signer is not an OpenSSH SHA256 fingerprint".into());
        }
        Ok(Self {
            kind,
            doc,
            keyring,
            ring,
            signer,
        })
    }
}

/// Why a record could not be read or written.
#[derive(Debug)]
pub enum RecordError {
    /// The file is missing or may not be trusted (owner, mode, symlink, size, I/O).
    File(FileError),
    /// The file is not a record, or not the record of this document.
    Malformed { path: PathBuf, detail: String },
    /// The document did not verify: no record is written.
    Document(Error),
    /// Writing failed.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(e) => write!(f, "{e}"),
            Self::Malformed { path, detail } => write!(
                f,
                "{}: not a usable record: {detail} (jit-host sync rewrites it)",
                path.display()
            ),
            Self::Document(e) => write!(f, "{e}"),
            Self::Write { path, source } => write!(f, "cannot write {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for RecordError {}

/// `<dir>/<hex>`.
pub fn record_path(dir: &Path, doc: &DocDigest) -> PathBuf {
    dir.join(doc.hex())
}

/// Reads the record of `doc` from `dir` if root wrote it: root-owned, not group/world
/// writable, root-owned ancestors ([`Policy::root_only`]), at most [`MAX_RECORD_SIZE`],
/// well-formed and naming `doc`'s digest. Whether it applies to the keys in force is
/// [`TrustedRecord::check`]'s question.
pub fn read_trusted(dir: &Path, doc: &[u8]) -> std::result::Result<TrustedRecord, RecordError> {
    read_with(dir, doc, &Policy::root_only(MAX_RECORD_SIZE))
}

/// A records directory checked once: it and every directory above it owned by root and not
/// writable by others ([`secure_file::check_dir`], [`Policy::root_only`]). Records read
/// through it ([`RecordDir::read_trusted`]) get the same checks as [`read_trusted`] on the
/// file itself (root-owned regular file, no symlink, not group/world-writable, size cap),
/// without the ancestors' `lstat`s for every record: only root can change a directory that
/// passed the check, so within one decision checking them once is as good as each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDir {
    dir: PathBuf,
}

impl RecordDir {
    /// Checks `dir` and its ancestors (root-owned, not writable by others).
    pub fn open(dir: &Path) -> std::result::Result<Self, RecordError> {
        secure_file::check_dir(dir, &Policy::root_only(MAX_RECORD_SIZE))
            .map_err(RecordError::File)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// [`read_trusted`] in this checked directory.
    pub fn read_trusted(&self, doc: &[u8]) -> std::result::Result<TrustedRecord, RecordError> {
        let policy = Policy {
            check_ancestors: false,
            ..Policy::root_only(MAX_RECORD_SIZE)
        };
        read_with(&self.dir, doc, &policy)
    }
}

fn read_with(
    dir: &Path,
    doc: &[u8],
    policy: &Policy,
) -> std::result::Result<TrustedRecord, RecordError> {
    let digest = DocDigest::of(doc);
    let path = record_path(dir, &digest);
    let bytes = secure_file::read(&path, policy).map_err(RecordError::File)?;
    let rec = TrustedRecord::parse(&bytes).map_err(|detail| RecordError::Malformed {
        path: path.clone(),
        detail,
    })?;
    if rec.doc != digest {
        return Err(RecordError::Malformed {
            path,
            detail: "it names another document".into(),
        });
    }
    Ok(rec)
}

/// Verifies the grant `doc` (signature and `key_id`, not the window: a grant installed ahead
/// of its window gets a record too) against `grant_keys`, else `break_glass_keys`, and
/// writes its record atomically into `dir` (mode 0644). Run by root only; `dir` must be
/// root's. Returns which ring verified it.
#[cfg(any(test, feature = "write"))]
pub fn write_grant_record(
    dir: &Path,
    doc: &[u8],
    grant_keys: &KeyRing,
    break_glass_keys: &KeyRing,
) -> std::result::Result<Ring, RecordError> {
    // The full, strict parse (envelope, canonical signature block, body), then the signature.
    let parsed = crate::UnverifiedGrant::parse(doc).map_err(RecordError::Document)?;
    let (ring, signer) = match parsed.verify_signature(grant_keys) {
        Ok(s) => (Ring::Grant, s),
        Err(Error::UntrustedKey { .. }) if !break_glass_keys.is_empty() => (
            Ring::BreakGlass,
            parsed
                .verify_signature(break_glass_keys)
                .map_err(RecordError::Document)?,
        ),
        Err(e) => return Err(RecordError::Document(e)),
    };
    let keyring = KeyringDigest::of(grant_keys, break_glass_keys).map_err(RecordError::Document)?;
    write(dir, Kind::Grant, doc, keyring, ring, signer)?;
    Ok(ring)
}

/// Verifies the revocation list `doc` against `grant_keys` and writes its record into `dir`.
/// `break_glass_keys` only enter the keyring digest.
#[cfg(any(test, feature = "write"))]
pub fn write_revocations_record(
    dir: &Path,
    doc: &[u8],
    grant_keys: &KeyRing,
    break_glass_keys: &KeyRing,
) -> std::result::Result<(), RecordError> {
    // The full, strict parse and the signature, exactly as the module would check it.
    let list = crate::UnverifiedRevocationList::parse(doc)
        .and_then(|l| l.verify(grant_keys))
        .map_err(RecordError::Document)?;
    let signer = list.list().key_id.clone();
    let keyring = KeyringDigest::of(grant_keys, break_glass_keys).map_err(RecordError::Document)?;
    write(dir, Kind::Revocations, doc, keyring, Ring::Grant, signer)
}

#[cfg(any(test, feature = "write"))]
fn write(
    dir: &Path,
    kind: Kind,
    doc: &[u8],
    keyring: KeyringDigest,
    ring: Ring,
    signer: String,
) -> std::result::Result<(), RecordError> {
    let rec = TrustedRecord {
        kind,
        doc: DocDigest::of(doc),
        keyring,
        ring,
        signer,
    };
    let path = record_path(dir, &rec.doc);
    let text = rec.encode();
    // Unchanged records are not rewritten (sync runs every few minutes); one root did not
    // write (another owner, writable by others) is replaced.
    let root_only = Policy {
        owners: vec![0],
        max_size: MAX_RECORD_SIZE,
        check_ancestors: false,
    };
    if secure_file::read(&path, &root_only).is_ok_and(|b| b == text.as_bytes()) {
        return Ok(());
    }
    secure_file::write_atomic(&path, text.as_bytes(), 0o644)
        .map_err(|source| RecordError::Write { path, source })
}

/// Removes from `dir` every entry that is not a root-owned record of a document in `keep`
/// made under `keyring` (stale documents, old keys, files root did not write, junk).
/// Temporary files of a concurrent writer (dot files) are left alone. Returns the names
/// removed.
#[cfg(any(test, feature = "write"))]
pub fn prune(
    dir: &Path,
    keep: &BTreeSet<DocDigest>,
    keyring: &KeyringDigest,
) -> std::io::Result<Vec<String>> {
    let keep_names: BTreeSet<String> = keep.iter().map(DocDigest::hex).collect();
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Kept only if the module would trust it: root's, not group/world-writable, current.
        let root_only = Policy {
            owners: vec![0],
            max_size: MAX_RECORD_SIZE,
            check_ancestors: false,
        };
        let current = keep_names.contains(&name)
            && secure_file::read(&entry.path(), &root_only)
                .ok()
                .and_then(|b| TrustedRecord::parse(&b).ok())
                .is_some_and(|r| r.keyring == *keyring && r.doc.hex() == name);
        if !current {
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                continue;
            }
            fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    Ok(removed)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn unhex(s: &str) -> std::result::Result<[u8; 32], String> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return Err("a digest must be 64 lower-case hex digits".into());
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err("a digest must be 64 lower-case hex digits".to_string()),
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        if let (Some(o), [hi, lo]) = (out.get_mut(i), pair) {
            *o = (digit(*hi)? << 4) | digit(*lo)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
