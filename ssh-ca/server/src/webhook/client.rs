//! The one outgoing HTTP client of `jit-ca`: a signed POST with a deadline, no redirects,
//! no proxy from the environment, and a bounded answer.
//!
//! Blocking (`ureq`, the client's HTTP stack): the service calls it from the blocking pool,
//! where its storage work already runs, so no second HTTP stack or runtime hand-off is
//! needed. Every way a call can go wrong is a [`Failure`] with a stable [`FailKind`], so that
//! callers can fail closed and audit what happened.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

/// Why a call produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// No answer within the deadline (connecting, sending or reading).
    Timeout,
    /// No connection: refused, unreachable, or the name did not resolve.
    Connect,
    /// The TLS handshake or the connection failed after connecting.
    Io,
    /// The answer was not HTTP.
    Protocol,
    /// The URL could not be used.
    InvalidUrl,
    /// The answer's body was larger than allowed.
    TooLarge,
    /// The TLS handshake failed (e.g. a certificate no trusted root signed), or the
    /// `ca_file` could not be used.
    Tls,
}

impl FailKind {
    /// The stable name recorded in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Io => "io",
            Self::Protocol => "protocol",
            Self::InvalidUrl => "invalid_url",
            Self::TooLarge => "too_large",
            Self::Tls => "tls",
        }
    }
}

/// A call that produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailKind,
    /// The status of the answer, when there was one.
    pub status: Option<u16>,
    /// A one-line description: never the URL (it may carry a token), nor any text that
    /// could hold it.
    pub detail: String,
}

impl Failure {
    fn new(kind: FailKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            detail: detail.into(),
        }
    }
}

/// An answer: any status (redirects are not followed: a 3xx is an answer), and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body, at most the `max_body` of the call.
    pub body: Vec<u8>,
}

/// Where and how to call.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `https://...` (or `http://` to a loopback address, checked by the policy).
    pub url: &'a str,
    /// The whole call's deadline: connecting, sending and reading the answer.
    pub timeout: Duration,
    /// PEM certificates: when set, the only roots trusted for `https` (else the web PKI's).
    pub ca_pem: Option<&'a str>,
    /// Largest answer body accepted.
    pub max_body: usize,
}

/// The TLS configuration trusting only the certificates in `pem`.
pub fn tls_config(pem: &str) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("not a PEM certificate bundle: no certificates in it".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// POSTs `body` (JSON) with `headers` to `target`.
pub fn post(
    target: &Target<'_>,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Reply, Failure> {
    let mut b = ureq::AgentBuilder::new()
        .timeout_connect(target.timeout)
        .timeout(target.timeout)
        .redirects(0)
        .user_agent(concat!("jit-ca/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = target.ca_pem {
        let cfg = tls_config(pem).map_err(|e| Failure::new(FailKind::Tls, e))?;
        b = b.tls_config(Arc::new(cfg));
    }
    let mut req = b
        .build()
        .post(target.url)
        .set("content-type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(transport(&t)),
    };
    let status = resp.status();
    let mut out = Vec::new();
    let limit = u64::try_from(target.max_body).unwrap_or(u64::MAX);
    resp.into_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            let mut f = io_failure(&e, format!("reading the answer: {}", io_text(&e)));
            f.status = Some(status);
            f
        })?;
    if out.len() > target.max_body {
        return Err(Failure {
            kind: FailKind::TooLarge,
            status: Some(status),
            detail: format!("the answer is larger than {} bytes", target.max_body),
        });
    }
    Ok(Reply { status, body: out })
}

fn io_failure(e: &std::io::Error, detail: String) -> Failure {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FailKind::Timeout,
        _ => FailKind::Io,
    };
    Failure::new(kind, detail)
}

/// What an I/O error says, without text ureq may have put in it: an operating-system error
/// (`Connection refused (os error 111)`) or a TLS error as such, else only its kind (an
/// error ureq wrapped may carry the URL, and with it a token).
fn io_text(e: &std::io::Error) -> String {
    if e.raw_os_error().is_some() {
        return e.to_string();
    }
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => e.kind().to_string(),
    }
}

/// A transport failure's description, built only from parts that cannot carry the URL
/// (ureq's own text starts with the URL, normalised, so it cannot be cut out reliably): the
/// kind of failure, then the operating system's or TLS's error beneath it.
fn describe(t: &ureq::Transport) -> String {
    let mut parts = vec![t.kind().to_string()];
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            parts.push(tls.to_string());
        } else if let Some(io) = s.downcast_ref::<std::io::Error>() {
            parts.push(io_text(io));
        }
        source = s.source();
    }
    parts.dedup();
    jit_common::log::sanitize(&parts.join(": "), 300)
}

fn transport(t: &ureq::Transport) -> Failure {
    use ureq::ErrorKind as K;
    let detail = describe(t);
    // A deadline passed anywhere shows as an I/O error of kind TimedOut (or WouldBlock); a
    // failed TLS handshake as an I/O error wrapping rustls' error.
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return Failure::new(FailKind::Tls, detail);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                return Failure::new(FailKind::Timeout, detail);
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return Failure::new(FailKind::Tls, detail);
            }
        }
        source = s.source();
    }
    let kind = match t.kind() {
        K::Dns | K::ConnectionFailed | K::ProxyConnect => FailKind::Connect,
        K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly | K::InvalidProxyUrl => {
            FailKind::InvalidUrl
        }
        K::BadStatus | K::BadHeader | K::TooManyRedirects | K::HTTP | K::ProxyUnauthorized => {
            FailKind::Protocol
        }
        K::Io => FailKind::Io,
    };
    Failure::new(kind, detail)
}
