//! The signed HTTP client for the `jit-ca` API ([`jit_api::wire`], [`jit_api::auth`]).

use serde::Serialize;
use serde::de::DeserializeOwned;
use ssh_key::HashAlg;

use super::agent::{self, Agent};
use super::config::{Settings, home_dir};
use super::error::{Error, Result};
use super::identity::{self, KeyFile, Signer};
use super::transport::{Failed, all_failed, classify, get_public_once};
pub use super::transport::{get_public, http_agent, http_agent_unpooled};
use jit_api::auth;
use jit_api::servers::{self, Method, Next};
use jit_api::wire::{
    ApproveRequest, CancelRequest, CreateRequest, DenyRequest, ErrorCode, ExtendRequest,
    IssuedView, KeysView, ReceivedCode, RequestList, RequestView, RevokeRequest, RolesView,
    WebLoginView, WebLogoutView, WhoamiView,
};

/// Which requests `list` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// Pending requests the caller may decide on.
    Pending,
    /// The caller's own requests.
    Mine,
    /// Everything the caller may see.
    All,
}

impl ListFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Mine => "mine",
            Self::All => "all",
        }
    }
}

/// A signed API session with one CA, reached at one or several replica URLs.
///
/// Calls go to the server that answered last; a call that fails in a way that
/// [`jit_api::servers::retry_policy`] says is safe to repeat goes to the next server,
/// signed anew (fresh timestamp and nonce, same audience: the replicas share the CA keys).
#[derive(Debug)]
pub struct Api {
    servers: Vec<String>,
    /// Index into `servers` of the server that answered last.
    current: usize,
    http: ureq::Agent,
    signer: Signer,
    /// The audience signed calls name: pinned, or fetched once from `GET /v1/ca.pub`.
    audience: Option<String>,
}

/// The digest an approval of `shown` names: computed from its fields, and refused when the
/// CA's own digest differs (the CA would show one request and record another); None when
/// the CA shows no digest (an older CA, which ignores it).
pub fn approval_digest(shown: &RequestView) -> Result<Option<String>> {
    let Some(theirs) = &shown.request_digest else {
        return Ok(None);
    };
    let ours = jit_api::evidence::RequestFacts::of_view(shown).map(|f| f.digest());
    match ours {
        Some(ours) if ours == *theirs => Ok(Some(ours)),
        _ => Err(Error::Protocol(format!(
            "the CA's digest of request {} does not match the request it shows; not approving \
             (is this jit older than the CA? upgrade jit)",
            jit_common::log::sanitize(&shown.id, 100)
        ))),
    }
}

impl Api {
    /// A session signing with `signer`, over `http`, with the CA at `server`.
    pub fn new(server: &str, http: ureq::Agent, signer: Signer) -> Self {
        Self::with_servers(&[server.to_string()], http, signer)
    }

    /// A session signing with `signer`, over `http`, with the CA at `servers` (its
    /// replicas, tried in order; at least one).
    pub fn with_servers(servers: &[String], http: ureq::Agent, signer: Signer) -> Self {
        Self {
            servers: servers.to_vec(),
            current: 0,
            http,
            signer,
            audience: None,
        }
    }

    /// Pins the audience (the CA's fingerprint) instead of fetching it from the server.
    #[must_use]
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// The audience of signed calls: the pinned CA fingerprint, else the fingerprint of the
    /// first key of the server's `GET /v1/ca.pub` (fetched once per session).
    pub fn audience(&mut self) -> Result<String> {
        if let Some(a) = &self.audience {
            return Ok(a.clone());
        }
        let text = self.get_text("/v1/ca.pub")?;
        let server = self.server();
        let a = auth::audience_from_ca_pub(&text).ok_or_else(|| {
            Error::Protocol(format!(
                "{server}/v1/ca.pub holds no SSH public key; is {server} a jit-ca?"
            ))
        })?;
        self.audience = Some(a.clone());
        Ok(a)
    }

    /// The base URL of the server that answered last (the first one before any call).
    pub fn server(&self) -> &str {
        self.servers
            .get(self.current)
            .or_else(|| self.servers.first())
            .map_or("", String::as_str)
    }

    /// Every configured server, in the order they are tried.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The servers in the order the next call tries them: the one that answered last,
    /// then the others in their configured order after it.
    fn order(&self) -> Vec<usize> {
        let n = self.servers.len();
        (0..n).map(|i| (self.current + i) % n).collect()
    }

    /// An unauthenticated GET, failing over like every read.
    fn get_text(&mut self, path: &str) -> Result<String> {
        let mut failures = Vec::new();
        for i in self.order() {
            let server = self.servers[i].clone();
            match get_public_once(&self.http, &server, path) {
                Ok(text) => {
                    self.current = i;
                    return Ok(text);
                }
                Err((failed, e)) => {
                    if servers::retry_policy(Method::Get, failed.outcome()) != Next::Retry {
                        self.current = i;
                        return Err(e);
                    }
                    failures.push((server, e));
                }
            }
        }
        Err(all_failed(failures))
    }

    /// The signing identity.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// A signed call, failing over between the servers as [`servers::retry_policy`] allows:
    /// each attempt is signed anew. A change whose answer was lost is not resent.
    fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let body = body.unwrap_or_default();
        let audience = self.audience()?;
        let kind = Method::from_name(method);
        let mut failures = Vec::new();
        for i in self.order() {
            let server = self.servers[i].clone();
            let (failed, e) = match self.attempt(&server, &audience, method, path_and_query, &body)
            {
                Ok(text) => {
                    self.current = i;
                    let url = format!("{server}{path_and_query}");
                    return serde_json::from_str(&text).map_err(|e| {
                        Error::Protocol(format!(
                            "unexpected answer from {url}: {e} ({}); are jit and jit-ca the same version?",
                            jit_common::log::sanitize(text.trim(), 200)
                        ))
                    });
                }
                Err(failed) => failed,
            };
            if failed == Failed::Local {
                return Err(e);
            }
            match servers::retry_policy(kind, failed.outcome()) {
                Next::Retry => failures.push((server, e)),
                Next::Stop => {
                    self.current = i;
                    return Err(e);
                }
                Next::Unknown => {
                    let detail = match e {
                        Error::Transport { detail, .. } => detail,
                        e => e.to_string(),
                    };
                    return Err(Error::Unsure(servers::answer_lost_message(
                        &server, &detail,
                    )));
                }
            }
        }
        Err(all_failed(failures))
    }

    /// One signed attempt against `server`: the answer's text, or how it failed.
    fn attempt(
        &mut self,
        server: &str,
        audience: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> std::result::Result<String, (Failed, Error)> {
        let not_signed = |e: Error| (Failed::Local, e);
        let timestamp = jit_common::now().as_secs();
        let nonce = auth::new_nonce();
        let msg = auth::message(audience, method, path_and_query, body, timestamp, &nonce);
        let sig = self.signer.sign(&msg).map_err(not_signed)?;
        let sig = auth::encode_signature(&sig).map_err(|e| {
            not_signed(Error::Identity(format!("cannot encode the signature: {e}")))
        })?;
        let key = auth::key_header(self.signer.public_key()).map_err(|e| {
            not_signed(Error::Identity(format!(
                "cannot encode the public key: {e}"
            )))
        })?;
        let url = format!("{server}{path_and_query}");
        let mut req = self
            .http
            .request(method, &url)
            .set(auth::HDR_AUDIENCE, audience)
            .set(auth::HDR_KEY, &key)
            .set(auth::HDR_TIMESTAMP, &timestamp.to_string())
            .set(auth::HDR_NONCE, &nonce)
            .set(auth::HDR_SIGNATURE, &sig)
            .set("accept", "application/json");
        let result = if method == "GET" {
            req.call()
        } else {
            req = req.set("content-type", "application/json");
            req.send_bytes(body)
        };
        let resp = result.map_err(|e| classify(server, &url, e))?;
        resp.into_string().map_err(|e| {
            (
                Failed::AnswerLost,
                Error::Protocol(format!("reading the answer from {url}: {e}")),
            )
        })
    }

    fn json<B: Serialize>(body: &B) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(body)
            .map(Some)
            .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&mut self) -> Result<WhoamiView> {
        self.call("GET", "/v1/whoami", None)
    }

    /// `POST /v1/web/login`: a one-time browser login URL.
    pub fn web_login(&mut self) -> Result<WebLoginView> {
        self.call("POST", "/v1/web/login", Some(b"{}".to_vec()))
    }

    /// `POST /v1/web/logout`: ends the caller's web sessions.
    pub fn web_logout(&mut self) -> Result<WebLogoutView> {
        self.call("POST", "/v1/web/logout", Some(b"{}".to_vec()))
    }

    /// `GET /v1/roles`: the roles the caller may request.
    pub fn roles(&mut self) -> Result<RolesView> {
        self.call("GET", "/v1/roles", None)
    }

    /// `GET /v1/keys` (unauthenticated).
    pub fn keys(&mut self) -> Result<KeysView> {
        let text = self.get_text("/v1/keys")?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Protocol(format!("unexpected answer from /v1/keys: {e}")))
    }

    /// `POST /v1/requests`.
    pub fn create(&mut self, req: &CreateRequest) -> Result<RequestView> {
        let body = Self::json(req)?;
        self.call("POST", "/v1/requests", body)
    }

    /// `GET /v1/requests?filter=...`.
    pub fn list(&mut self, filter: ListFilter) -> Result<RequestList> {
        self.call(
            "GET",
            &format!("/v1/requests?filter={}", filter.as_str()),
            None,
        )
    }

    /// `GET /v1/requests/{id}`.
    pub fn show(&mut self, id: &str) -> Result<RequestView> {
        self.call("GET", &request_path(id, "")?, None)
    }

    /// `POST /v1/requests/{id}/approve`, naming the request's digest (computed here from
    /// the request as the CA shows it now), so that the signed call kept as evidence names
    /// the exact request. A CA that shows no digest (older than this client) gets `{}`.
    pub fn approve(&mut self, id: &str) -> Result<RequestView> {
        let shown = self.show(id)?;
        let body = ApproveRequest {
            request_digest: approval_digest(&shown)?,
        };
        self.call("POST", &request_path(id, "/approve")?, Self::json(&body)?)
    }

    /// `POST /v1/requests/{id}/deny`.
    pub fn deny(&mut self, id: &str, reason: &str) -> Result<RequestView> {
        let body = Self::json(&DenyRequest {
            reason: reason.to_string(),
        })?;
        self.call("POST", &request_path(id, "/deny")?, body)
    }

    /// `GET /v1/requests/{id}/certificate`.
    pub fn certificate(&mut self, id: &str) -> Result<IssuedView> {
        self.call("GET", &request_path(id, "/certificate")?, None)
    }

    /// `POST /v1/requests/{id}/revoke`.
    pub fn revoke(&mut self, id: &str, reason: &str) -> Result<RequestView> {
        let body = Self::json(&RevokeRequest {
            reason: reason.to_string(),
        })?;
        self.call("POST", &request_path(id, "/revoke")?, body)
    }

    /// `POST /v1/requests/{id}/cancel`.
    pub fn cancel(&mut self, id: &str, reason: &str) -> Result<RequestView> {
        let body = Self::json(&CancelRequest {
            reason: reason.to_string(),
        })?;
        self.call("POST", &request_path(id, "/cancel")?, body)
    }

    /// `POST /v1/requests/{id}/drop`.
    pub fn drop_own(&mut self, id: &str) -> Result<RequestView> {
        self.call("POST", &request_path(id, "/drop")?, Some(b"{}".to_vec()))
    }

    /// `POST /v1/requests/{id}/extend`.
    pub fn extend(&mut self, id: &str, duration_secs: u64) -> Result<RequestView> {
        let body = Self::json(&ExtendRequest { duration_secs })?;
        self.call("POST", &request_path(id, "/extend")?, body)
    }
}

/// Checks a request id's syntax (1-64 of `[A-Za-z0-9._-]`): a usage error otherwise.
pub fn check_request_id(id: &str) -> Result<()> {
    jit_common::grant::check_id("request id", id).map_err(|_| {
        Error::Usage(format!(
            "invalid request id {:?}: ids are 1-64 characters of A-Z a-z 0-9 . _ - (see `jit list`)",
            jit_common::log::sanitize(id, 80)
        ))
    })
}

/// `/v1/requests/{id}{suffix}` after checking the id's syntax (no path tricks).
fn request_path(id: &str, suffix: &str) -> Result<String> {
    check_request_id(id)?;
    Ok(format!("/v1/requests/{id}{suffix}"))
}

/// Opens a signed session: the configured key file, else the ssh-agent key the CA knows,
/// else the first default key file (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`).
/// Connects with the configured identity, or else finds a registered key in the ssh-agent.
/// `for_approval`: the call approves, so an agent key registered as an approval key is
/// preferred (a role may require one); for every other command approval keys are skipped
/// (they cannot request).
pub fn connect(settings: &Settings, for_approval: bool) -> Result<Api> {
    // Several replicas: every call on a fresh connection, so that a replica that died since
    // the last call shows as "not connected" (the call goes to the next one) rather than as
    // a kept-alive connection breaking under a change, whose outcome would then be unknown
    // (and not resent).
    let http = if settings.servers.len() > 1 {
        http_agent_unpooled(settings.ca_cert.as_deref())?
    } else {
        http_agent(settings.ca_cert.as_deref())?
    };
    let mut pinned = settings.ca_fingerprint.clone();
    if let Some(path) = &settings.identity {
        let signer = identity::from_key_file(path)?;
        return Ok(Api::with_servers(&settings.servers, http, signer).with_audience(pinned));
    }
    let home = home_dir();
    let defaults = home
        .as_deref()
        .map(identity::default_key_files)
        .unwrap_or_default();
    let mut agent_note = String::from("no ssh-agent (SSH_AUTH_SOCK unset)");
    if let Some(sock) = agent::socket_from_env() {
        // A stale SSH_AUTH_SOCK is not fatal: fall through to the key files.
        let keys = match Agent::connect(&sock).and_then(|mut a| a.keys()) {
            Ok(keys) => keys,
            Err(e) => {
                agent_note = e.to_string();
                Vec::new()
            }
        };
        let mut fallback = None;
        // The server that answered the previous key's whoami: asked first for the next.
        let mut current = 0;
        for key in &keys {
            // The certificate goes next to a default key file holding this key, if any.
            let path = defaults.iter().find(|f| {
                let mut p = f.as_os_str().to_owned();
                p.push(".pub");
                matches!(
                    identity::read_key_file(std::path::Path::new(&p)),
                    Ok(KeyFile::Public(pk)) if pk.key_data() == key.key_data()
                )
            });
            let signer = Signer::Agent {
                agent: Box::new(Agent::connect(&sock)?),
                public: key.clone(),
                path: path.cloned(),
            };
            let mut api = Api::with_servers(&settings.servers, http.clone(), signer)
                .with_audience(pinned.clone());
            api.current = current;
            let answered = api.whoami();
            current = api.current;
            match answered {
                Ok(w) if w.approval_key == for_approval => return Ok(api),
                // A login key may approve too (unless the role says otherwise): keep the first
                // as a fallback while looking for an approval key.
                Ok(_) if for_approval => {
                    fallback.get_or_insert(api);
                }
                Ok(_) => {
                    // Fetched once: the next key signs for the same CA.
                    pinned.clone_from(&api.audience);
                    continue;
                }
                Err(Error::Api {
                    code: ReceivedCode::Known(ErrorCode::UnknownKey),
                    ..
                }) => {
                    pinned.clone_from(&api.audience);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(api) = fallback {
            return Ok(api);
        }
        agent_note = if keys.is_empty() {
            if agent_note.starts_with("no ssh-agent") {
                format!("the ssh-agent at {} holds no keys", sock.display())
            } else {
                agent_note
            }
        } else {
            format!(
                "none of the {} keys in the ssh-agent at {} is registered with the CA ({})",
                keys.len(),
                sock.display(),
                keys.iter()
                    .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
    }
    for f in &defaults {
        if f.exists() {
            let signer = identity::from_key_file(f)?;
            return Ok(Api::with_servers(&settings.servers, http, signer).with_audience(pinned));
        }
    }
    Err(Error::Identity(format!(
        "no identity to sign with: {agent_note}, and no ~/.ssh/id_ed25519; pass --identity KEYFILE, \
         set JIT_IDENTITY, put identity = \"~/.ssh/KEY\" in the config file, or `ssh-add` your \
         registered key (an operator registers it with `jit-ca user add NAME --key KEY.pub`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_api::wire::RequestState;

    fn view() -> RequestView {
        RequestView {
            id: "r-1".into(),
            user: "alice".into(),
            role: "db-admin".into(),
            reason: "INC-42".into(),
            state: RequestState::Pending,
            duration_secs: 900,
            hosts: vec!["db-*".into()],
            principals: vec![],
            sudo: true,
            created_at: 0,
            pending_expires_at: 0,
            approvals: vec![],
            approvals_required: 1,
            denied_by: None,
            denial_reason: None,
            valid_after: None,
            valid_before: None,
            serial: None,
            grant_id: None,
            key_fingerprint: Some("SHA256:abc".into()),
            request_digest: None,
            issued: None,
            ticket: None,
            start: None,
            revoked_by: None,
            revoked_at: None,
            revocation_reason: None,
            cancelled_at: None,
            cancel_reason: None,
            denied_at: None,
            session_bound: false,
        }
    }

    #[test]
    fn the_approval_names_the_digest_it_computed_from_what_the_ca_shows() {
        let mut v = view();
        // An older CA shows no digest: none is sent.
        assert_eq!(approval_digest(&v).unwrap(), None);
        let ours = jit_api::evidence::RequestFacts::of_view(&v)
            .unwrap()
            .digest();
        v.request_digest = Some(ours.clone());
        assert_eq!(approval_digest(&v).unwrap(), Some(ours.clone()));
        // A CA whose digest is not that of the request it shows: not approved.
        v.duration_secs = 3600;
        let e = approval_digest(&v).unwrap_err().to_string();
        assert_eq!(
            e,
            "the CA's digest of request r-1 does not match the request it shows; not approving \
             (is this jit older than the CA? upgrade jit)"
        );
        v.duration_secs = 900;
        v.key_fingerprint = None;
        assert!(approval_digest(&v).is_err());
    }
}
