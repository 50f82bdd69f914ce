//! The caller's signing identity: an OpenSSH private key file, or a key held by the
//! ssh-agent (selected by a public key file, or found by asking the CA which agent key is
//! registered).

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};

use super::agent::{self, Agent};
use super::error::{Error, Result};
use jit_api::auth;

/// How requests are signed.
#[derive(Debug)]
pub enum Signer {
    /// A private key read from a file (decrypted, zeroized on drop).
    File {
        /// The private key file.
        path: PathBuf,
        /// The key.
        key: Box<PrivateKey>,
    },
    /// A key held by the ssh-agent.
    Agent {
        /// The agent connection.
        agent: Box<Agent>,
        /// The public key of the agent-held key.
        public: PublicKey,
        /// The key file named by `--identity` (private or `.pub`), if any: the certificate
        /// is written next to it.
        path: Option<PathBuf>,
    },
}

impl Signer {
    /// The public key requests are signed with (and certificates are issued for).
    pub fn public_key(&self) -> &PublicKey {
        match self {
            Self::File { key, .. } => key.public_key(),
            Self::Agent { public, .. } => public,
        }
    }

    /// Signs an API message.
    pub fn sign(&mut self, msg: &[u8]) -> Result<SshSig> {
        match self {
            Self::File { key, path } => auth::sign_with_key(key, msg).map_err(|e| {
                Error::Identity(format!(
                    "{}: cannot sign with this {} key: {e} (use an Ed25519 key, or load it into \
                     the ssh-agent)",
                    path.display(),
                    key.algorithm()
                ))
            }),
            Self::Agent { agent, public, .. } => agent.sign_sshsig(public, msg),
        }
    }

    /// A one-line description for people (`~/.ssh/id_ed25519 (SHA256:...)`).
    pub fn describe(&self) -> String {
        let fp = self.public_key().fingerprint(HashAlg::Sha256);
        match self {
            Self::File { path, .. } => format!("{} ({fp})", path.display()),
            Self::Agent {
                path: Some(p),
                agent,
                ..
            } => format!(
                "{} via ssh-agent {} ({fp})",
                p.display(),
                agent.socket().display()
            ),
            Self::Agent {
                path: None, agent, ..
            } => format!("ssh-agent {} ({fp})", agent.socket().display()),
        }
    }

    /// The private key path the certificate belongs next to (`KEY` for `KEY-cert.pub`),
    /// or `None` for an agent-only key.
    pub fn key_path(&self) -> Option<PathBuf> {
        match self {
            Self::File { path, .. } => Some(path.clone()),
            Self::Agent { path, .. } => path.as_ref().map(|p| strip_pub(p)),
        }
    }

    /// The private key, when it is held in a file here.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        match self {
            Self::File { key, .. } => Some(key),
            Self::Agent { .. } => None,
        }
    }
}

/// `KEY.pub` -> `KEY`; other paths unchanged.
pub fn strip_pub(p: &Path) -> PathBuf {
    match p.to_str().and_then(|s| s.strip_suffix(".pub")) {
        Some(base) => PathBuf::from(base),
        None => p.to_path_buf(),
    }
}

/// What a key file turned out to be.
#[derive(Debug)]
pub enum KeyFile {
    /// An unencrypted private key.
    Private(Box<PrivateKey>),
    /// A passphrase-protected private key (its public half is readable).
    Encrypted(PublicKey),
    /// A public key file.
    Public(PublicKey),
}

/// Reads an OpenSSH private or public key file.
pub fn read_key_file(path: &Path) -> Result<KeyFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Identity(format!(
            "{}: cannot read the identity key file: {e} (pass --identity with an OpenSSH key file, \
             or use an ssh-agent)",
            path.display()
        ))
    })?;
    if text
        .trim_start()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    {
        refuse_loose_private_key(path)?;
        let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| {
            Error::Identity(format!(
                "{}: not a valid OpenSSH private key: {e}",
                path.display()
            ))
        })?;
        if key.is_encrypted() {
            return Ok(KeyFile::Encrypted(key.public_key().clone()));
        }
        return Ok(KeyFile::Private(Box::new(key)));
    }
    if text.contains("-----BEGIN") {
        return Err(Error::Identity(format!(
            "{}: only OpenSSH-format keys are supported (convert with `ssh-keygen -p -f {}`, which \
             rewrites it in OpenSSH format)",
            path.display(),
            path.display()
        )));
    }
    let public = PublicKey::from_openssh(text.trim()).map_err(|e| {
        Error::Identity(format!(
            "{}: neither an OpenSSH private key nor a public key: {e}",
            path.display()
        ))
    })?;
    Ok(KeyFile::Public(public))
}

/// Refuses a private key file that group or others may read, as `ssh` does ("UNPROTECTED
/// PRIVATE KEY FILE"): whoever can read it can act as its owner.
fn refuse_loose_private_key(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::Identity(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::Identity(format!(
            "{}: private key file has mode {:04o}, accessible by group or others; like ssh, jit \
             refuses to use it (anyone who can read it can act as you): run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        )));
    }
    Ok(())
}

/// Builds the signer for an explicit key file (`--identity`, `JIT_IDENTITY`, config).
pub fn from_key_file(path: &Path) -> Result<Signer> {
    match read_key_file(path)? {
        KeyFile::Private(key) => Ok(Signer::File {
            path: path.to_path_buf(),
            key,
        }),
        KeyFile::Encrypted(public) => agent_for(&public, path).map_err(|e| {
            Error::Identity(format!(
                "{}: this key is encrypted with a passphrase and jit does not decrypt key files; \
                 load it into your ssh-agent (`ssh-add {}`) and run jit again ({e})",
                path.display(),
                path.display()
            ))
        }),
        KeyFile::Public(public) => agent_for(&public, path).map_err(|e| {
            Error::Identity(format!(
                "{}: is a public key, so its private half must be in the ssh-agent: {e}",
                path.display()
            ))
        }),
    }
}

fn agent_for(public: &PublicKey, path: &Path) -> Result<Signer> {
    let sock = agent::socket_from_env().ok_or_else(|| {
        Error::Identity("no ssh-agent is running (SSH_AUTH_SOCK is unset)".into())
    })?;
    let mut agent = Agent::connect(&sock)?;
    let held = agent.keys()?;
    if !held.iter().any(|k| k.key_data() == public.key_data()) {
        return Err(Error::Identity(format!(
            "the ssh-agent at {} does not hold {} (`ssh-add -l` lists what it holds)",
            sock.display(),
            public.fingerprint(HashAlg::Sha256)
        )));
    }
    Ok(Signer::Agent {
        agent: Box::new(agent),
        public: public.clone(),
        path: Some(path.to_path_buf()),
    })
}

/// The default key files tried when nothing is configured and no agent key is registered.
pub fn default_key_files(home: &Path) -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .collect()
}
