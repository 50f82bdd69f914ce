//! TLS to PostgreSQL: the roots `database_ca` names, else the system's (never unverified).

use std::path::Path;
use std::sync::Arc;

use crate::error::{CaError, Result};

/// The TLS client configuration: the roots in `ca` (`database_ca`), else the system's.
pub(crate) fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let bad = |path: &Path, detail: String| CaError::File {
        path: path.to_path_buf(),
        detail,
    };
    match ca {
        Some(path) => {
            let pem = crate::files::read_trusted(path, 1024 * 1024)?;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert =
                    cert.map_err(|e| bad(path, format!("database_ca: not a PEM bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(path, format!("database_ca: unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad(path, "database_ca: no certificate in it".into()));
            }
        }
        None => {
            // The system bundle (Debian, then RHEL); missing: TLS fails to verify (never
            // unverified).
            for p in [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ] {
                if let Ok(pem) = std::fs::read(p) {
                    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                        let _ = roots.add(cert);
                    }
                    break;
                }
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| CaError::Tls {
            what: "the database connection",
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
