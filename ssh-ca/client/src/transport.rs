//! The HTTP side of [`crate::api`]: the agent (TLS roots), one attempt's outcome for
//! [`jit_api::servers::retry_policy`], and the errors people see (one server, or each of
//! several named).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, Result};
use jit_api::servers::Outcome;
use jit_api::wire::ErrorBody;

/// The HTTP agent: web PKI roots, or only the roots in `ca_cert` (a PEM bundle) when set.
pub fn http_agent(ca_cert: Option<&Path>) -> Result<ureq::Agent> {
    agent_builder(ca_cert).map(ureq::AgentBuilder::build)
}

/// Like [`http_agent`], keeping no idle connection: each call connects anew.
pub fn http_agent_unpooled(ca_cert: Option<&Path>) -> Result<ureq::Agent> {
    agent_builder(ca_cert).map(|b| b.max_idle_connections(0).build())
}

fn agent_builder(ca_cert: Option<&Path>) -> Result<ureq::AgentBuilder> {
    let mut b = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
        .redirects(0);
    if let Some(path) = ca_cert {
        b = b.tls_config(Arc::new(tls_config(path)?));
    }
    Ok(b)
}

fn tls_config(path: &Path) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad = |e: &dyn std::fmt::Display| {
        Error::Usage(format!(
            "{}: not a PEM certificate bundle: {e} (JIT_CA_CERT / ca_cert name the CA that signed \
             the server's TLS certificate)",
            path.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::Io(io) => Error::file(path, io),
        e => bad(&e),
    })? {
        let cert = cert.map_err(|e| bad(&e))?;
        roots.add(cert).map_err(|e| bad(&e))?;
        n += 1;
    }
    if n == 0 {
        return Err(bad(&"no certificates in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Unauthenticated GET returning text (`/v1/keys`, `/v1/ca.pub`).
pub fn get_public(http: &ureq::Agent, server: &str, path: &str) -> Result<String> {
    match get_public_once(http, server, path) {
        Ok(text) => Ok(text),
        Err((_, e)) => Err(e),
    }
}

/// One unauthenticated GET, with how it ended when it failed.
pub(crate) fn get_public_once(
    http: &ureq::Agent,
    server: &str,
    path: &str,
) -> std::result::Result<String, (Failed, Error)> {
    let url = format!("{server}{path}");
    match http.get(&url).call() {
        Ok(resp) => resp.into_string().map_err(|e| {
            (
                Failed::AnswerLost,
                Error::Protocol(format!("reading the answer from {url}: {e}")),
            )
        }),
        Err(e) => Err(classify(server, &url, e)),
    }
}

/// How a failed attempt ended, for [`jit_api::servers::retry_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Nothing was sent: the call could not be signed here (the same on every server).
    Local,
    NotConnected,
    AnswerLost,
    Status(u16, Option<String>),
}

impl Failed {
    pub(crate) fn outcome(&self) -> Outcome<'_> {
        match self {
            Self::Local | Self::NotConnected => Outcome::NotConnected,
            Self::AnswerLost => Outcome::AnswerLost,
            Self::Status(status, code) => Outcome::Status {
                status: *status,
                jit_code: code.as_deref(),
            },
        }
    }
}

/// The error of a failed attempt and how it ended: DNS, connect and the TLS handshake
/// (which ureq completes while connecting) sent nothing; every other transport failure
/// happened after the request may have gone out.
pub(crate) fn classify(server: &str, url: &str, e: ureq::Error) -> (Failed, Error) {
    let failed = match &e {
        ureq::Error::Status(status, _) => Failed::Status(*status, None),
        ureq::Error::Transport(t) => match t.kind() {
            ureq::ErrorKind::Dns
            | ureq::ErrorKind::ConnectionFailed
            | ureq::ErrorKind::InvalidUrl
            | ureq::ErrorKind::UnknownScheme
            | ureq::ErrorKind::InvalidProxyUrl
            | ureq::ErrorKind::ProxyConnect
            | ureq::ErrorKind::ProxyUnauthorized
            | ureq::ErrorKind::InsecureRequestHttpsOnly => Failed::NotConnected,
            _ => Failed::AnswerLost,
        },
    };
    let error = map_ureq_error(server, url, e);
    let failed = match (failed, &error) {
        (Failed::Status(status, _), Error::Api { code, .. }) => {
            Failed::Status(status, Some(code.as_str().to_string()))
        }
        (f, _) => f,
    };
    (failed, error)
}

/// The error when every server failed: with one server, its own error; with several, each
/// server's failure named. All of them refusing alike (e.g. 503 `unavailable`) keeps the
/// refusal (code and exit status), naming the others.
pub(crate) fn all_failed(failures: Vec<(String, Error)>) -> Error {
    if failures.len() <= 1 {
        return failures
            .into_iter()
            .next()
            .map(|(_, e)| e)
            .unwrap_or_else(|| Error::Usage("no CA server configured".to_string()));
    }
    let servers: Vec<&str> = failures.iter().map(|(s, _)| s.as_str()).collect();
    let servers = servers.join(", ");
    let each = failures
        .iter()
        .map(|(s, e)| format!("{s}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let all_refused = failures.iter().all(|(_, e)| matches!(e, Error::Api { .. }));
    match failures.into_iter().next_back() {
        Some((_, Error::Api { status, code, .. })) if all_refused => Error::Api {
            status,
            code,
            message: format!("every server failed: {each}"),
        },
        _ => Error::Transport {
            server: servers,
            detail: format!("every server failed: {each}"),
        },
    }
}

fn map_ureq_error(server: &str, url: &str, e: ureq::Error) -> Error {
    match e {
        ureq::Error::Status(status, resp) => {
            let body = resp.into_string().unwrap_or_default();
            match serde_json::from_str::<ErrorBody>(&body) {
                Ok(b) => Error::Api {
                    status,
                    code: b.error.received_code(),
                    message: b.error.message,
                },
                Err(_) => Error::Protocol(format!(
                    "HTTP {status} from {url} without a jit error body ({}); is {server} a jit-ca?",
                    jit_common::log::sanitize(body.trim(), 200)
                )),
            }
        }
        ureq::Error::Transport(t) => {
            let mut detail = t.to_string();
            if detail.contains("certificate") || detail.contains("UnknownIssuer") {
                detail.push_str(
                    "; if the CA's TLS certificate comes from a private CA, set JIT_CA_CERT=FILE \
                     or ca_cert = \"FILE\" in the config file",
                );
            }
            Error::Transport {
                server: server.to_string(),
                detail,
            }
        }
    }
}
