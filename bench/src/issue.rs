//! The issuance load: signed `POST /v1/requests` (and optionally the certificate fetch)
//! over one keep-alive HTTP/1.1 connection per simulated client, closed or open loop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use jit_api::auth;
use jit_api::wire::{CreateRequest, IssuedView, RequestState, RequestView};
use jit_test_kit::request::SignedCall;
use serde_json::json;
use tokio::net::TcpStream;

use crate::fixtures::read_key;
use crate::stats::{self_cpu_secs, summary, summary_with_failures};

#[derive(Debug)]
pub(crate) struct IssueSpec {
    /// One server, or the replicas of one CA (clients spread round-robin over them).
    pub(crate) servers: Vec<String>,
    pub(crate) role: String,
    pub(crate) duration_secs: u64,
    pub(crate) clients: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) requests: Option<u64>,
    pub(crate) save_cert: Option<PathBuf>,
    pub(crate) fetch: bool,
    pub(crate) spread_hosts: Option<String>,
    /// Identities that approve each request (round robin): the role needs one approval, and
    /// one operation is request + approve + certificate fetch. Empty: an auto-approved role.
    pub(crate) approvers: Vec<Arc<Identity>>,
}

/// One registered user: the private key that signs its API calls and certifies.
#[derive(Debug)]
pub(crate) struct Identity {
    /// Derived once: the load generator shares the CA's two cores, so it should spend as
    /// little as it can per call (ssh-key would re-derive the Ed25519 key every signature).
    key: jit_ca::signer::ReadyKey,
    /// The `x-jit-key` form of the public key (what `POST /v1/requests` certifies).
    public_key: String,
}

pub(crate) fn load_identities(
    dir: &Path,
    prefix: &str,
    users: usize,
) -> Result<Vec<Arc<Identity>>> {
    (0..users.max(1))
        .map(|i| {
            let key = read_key(&dir.join(format!("{prefix}{i:02}")))?;
            let public_key = auth::key_header(key.public_key()).context("encoding a key")?;
            let key = jit_ca::signer::ReadyKey::new(key).map_err(|e| anyhow!("{e}"))?;
            Ok(Arc::new(Identity { public_key, key }))
        })
        .collect()
}

pub(crate) type Conn = SendRequest<Full<Bytes>>;

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: String,
    pub(crate) host_header: String,
    /// The CA's audience for signed calls (fetched from `GET /v1/ca.pub`).
    audience: String,
}

impl Target {
    pub(crate) fn parse(server: &str) -> Result<Self> {
        let rest = server
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--server {server}: only http:// URLs are supported"))?;
        let addr = rest.trim_end_matches('/').to_string();
        Ok(Self {
            host_header: addr.clone(),
            addr,
            audience: String::new(),
        })
    }

    /// Fetches the CA's audience (the fingerprint of the first key of `GET /v1/ca.pub`),
    /// which every signed call names.
    pub(crate) async fn fetch_audience(&mut self) -> Result<()> {
        let mut conn = self.connect().await?;
        let req = hyper::Request::builder()
            .method("GET")
            .uri("/v1/ca.pub")
            .header(hyper::header::HOST, &self.host_header)
            .body(Full::new(Bytes::new()))?;
        conn.ready().await?;
        let resp = conn.send_request(req).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        self.audience = auth::audience_from_ca_pub(&String::from_utf8_lossy(&bytes))
            .ok_or_else(|| anyhow!("{}/v1/ca.pub holds no SSH public key", self.addr))?;
        Ok(())
    }

    pub(crate) async fn connect(&self) -> Result<Conn> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

pub(crate) async fn call(
    conn: &mut Conn,
    target: &Target,
    id: &Identity,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Bytes)> {
    // An entry point: the request timestamp the CA checks.
    let ts = jit_common::now().as_secs();
    // Signed exactly as the client signs (the kit's SignedCall, with the pre-derived key).
    let call = SignedCall::new(&id.key, &target.audience, method, path, &body, ts);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, &target.host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in call.headers() {
        req = req.header(name, value);
    }
    let req = req.body(Full::new(Bytes::from(body)))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// Round-robin over the approvers (see [`issue_one`]).
static NEXT_APPROVER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Round-robin over the benchmark's hosts (see [`issue_one`]).
static NEXT_HOST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One certificate: create an (auto-approved) request; its answer carries the certificate
/// (or, with `--fetch`, fetch it with a second signed call).
async fn issue_one(
    conn: &mut Conn,
    target: &Target,
    id: &Identity,
    spec: &IssueSpec,
) -> Result<IssuedView> {
    let body = serde_json::to_vec(&CreateRequest {
        role: spec.role.clone(),
        duration_secs: spec.duration_secs,
        reason: "benchmark".into(),
        // With --spread-hosts, over a fleet of 1,000 hosts (see `Cmd::Issue`).
        hosts: spec.spread_hosts.as_ref().map_or_else(Vec::new, |prefix| {
            vec![format!(
                "{prefix}{}",
                NEXT_HOST.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1000
            )]
        }),
        public_key: id.public_key.clone(),
        start: None,
    })?;
    let (status, bytes) = call(conn, target, id, "POST", "/v1/requests", body).await?;
    if status != 201 && status != 200 {
        bail!(
            "POST /v1/requests: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let mut view: RequestView = serde_json::from_slice(&bytes).context("parsing RequestView")?;
    if !spec.approvers.is_empty() {
        // Request + approve + certificate: what a human-approved request costs the CA.
        if view.state != RequestState::Pending {
            bail!(
                "request {} is {:?}, not pending: role {} must need one approval",
                view.id,
                view.state,
                spec.role
            );
        }
        let n = NEXT_APPROVER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let approver = &spec.approvers[n % spec.approvers.len()];
        let path = format!("/v1/requests/{}/approve", view.id);
        let (status, bytes) = call(conn, target, approver, "POST", &path, b"{}".to_vec()).await?;
        if status != 200 {
            bail!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let approved: RequestView =
            serde_json::from_slice(&bytes).context("parsing RequestView")?;
        if approved.state != RequestState::Approved {
            bail!(
                "request {} is {:?} after its approval",
                view.id,
                approved.state
            );
        }
        return fetch_certificate(conn, target, id, &view.id).await;
    }
    if view.state != RequestState::Approved {
        bail!(
            "request {} is {:?}, not approved: is role {} auto-approved?",
            view.id,
            view.state,
            spec.role
        );
    }
    if !spec.fetch {
        let issued = view.issued.take().ok_or_else(|| {
            anyhow!("POST /v1/requests: an approved request's answer has no certificate")
        })?;
        if !issued.certificate.contains("-cert-v01@openssh.com ") {
            bail!("POST /v1/requests: no OpenSSH certificate in the answer");
        }
        return Ok(issued);
    }
    fetch_certificate(conn, target, id, &view.id).await
}

/// The signed `GET /v1/requests/{id}/certificate` of the requester.
async fn fetch_certificate(
    conn: &mut Conn,
    target: &Target,
    id: &Identity,
    request: &str,
) -> Result<IssuedView> {
    let path = format!("/v1/requests/{request}/certificate");
    let (status, bytes) = call(conn, target, id, "GET", &path, Vec::new()).await?;
    if status != 200 {
        bail!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let issued: IssuedView = serde_json::from_slice(&bytes).context("parsing IssuedView")?;
    if !issued.certificate.contains("-cert-v01@openssh.com ") {
        bail!("GET {path}: no OpenSSH certificate in the answer");
    }
    Ok(issued)
}

#[derive(Debug, Default)]
struct Tally {
    lat_us: Vec<u64>,
    ok: u64,
    /// Certificates issued including warm-up (for the server's CPU time per certificate).
    all_ok: u64,
    errors: u64,
    late: u64,
    first_error: Option<String>,
    saved: bool,
}

impl Tally {
    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{e:#}"));
        }
    }
}

fn save(spec: &IssueSpec, tally: &Mutex<Tally>, issued: &IssuedView) {
    let Some(path) = &spec.save_cert else { return };
    let Ok(mut t) = tally.lock() else { return };
    if t.saved {
        return;
    }
    t.saved = true;
    let _ = std::fs::write(path, format!("{}\n", issued.certificate.trim()));
    if let Some(g) = &issued.grant {
        let _ = std::fs::write(path.with_extension("grant"), g);
    }
}

/// The targets of `--server` (one or several replicas of one CA), each with its audience;
/// every replica must sign for the same CA.
async fn targets(servers: &[String]) -> Result<Arc<Vec<Target>>> {
    if servers.is_empty() {
        bail!("--server: name at least one server");
    }
    let mut out: Vec<Target> = Vec::with_capacity(servers.len());
    for s in servers {
        let mut t = Target::parse(s)?;
        t.fetch_audience().await?;
        if let Some(first) = out.first()
            && first.audience != t.audience
        {
            bail!(
                "--server {s} signs for {} but {} for {}: not replicas of one CA",
                t.audience,
                first.addr,
                first.audience
            );
        }
        out.push(t);
    }
    Ok(Arc::new(out))
}

/// A connection to `targets[first]`, else to the next target that answers (a replica
/// that died): returns which one. Keeps trying (100 ms apart) until `deadline`.
async fn connect_any(targets: &[Target], first: usize, deadline: Instant) -> Result<(usize, Conn)> {
    loop {
        let mut last = None;
        for k in 0..targets.len() {
            let i = (first + k) % targets.len();
            match targets[i].connect().await {
                Ok(c) => return Ok((i, c)),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(last.unwrap_or_else(|| anyhow!("no server")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn issue(spec: IssueSpec, ids: Vec<Arc<Identity>>) -> Result<serde_json::Value> {
    let targets = targets(&spec.servers).await?;
    let spec = Arc::new(spec);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let cpu0 = self_cpu_secs();
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs_f64(spec.warmup.max(0.0));
    let deadline = measure_from + Duration::from_secs_f64(spec.seconds.max(0.1));
    let (elapsed, mode) = match spec.rate {
        None => {
            let mut tasks = Vec::new();
            for c in 0..spec.clients.max(1) {
                let (spec, targets, tally) = (spec.clone(), targets.clone(), tally.clone());
                let id = ids[c % ids.len()].clone();
                let first = c % targets.len();
                tasks.push(tokio::spawn(async move {
                    closed_loop(&spec, &targets, first, &id, &tally, measure_from, deadline).await
                }));
            }
            for t in tasks {
                t.await??;
            }
            (deadline.min(Instant::now()) - measure_from, "closed")
        }
        Some(rate) => {
            open_loop(&spec, &targets, &ids, &tally, rate, measure_from, deadline).await?;
            (deadline - measure_from, "open")
        }
    };
    let cpu = self_cpu_secs() - cpu0;
    let mut t = tally.lock().map_err(|_| anyhow!("poisoned"))?;
    let lat = std::mem::take(&mut t.lat_us);
    let secs = elapsed.as_secs_f64();
    if t.ok == 0 {
        bail!(
            "no certificate was issued: {}",
            t.first_error.as_deref().unwrap_or("(no error recorded)")
        );
    }
    // Every measured error and every late start is a failed operation: +inf latency in the
    // percentiles (`latency`), so failures can never improve a figure. `latency_ok` is the
    // successful operations alone.
    let failed = t.errors + t.late;
    Ok(json!({
        "mode": mode,
        "servers": spec.servers.len(),
        "clients": spec.clients,
        "rate_target": spec.rate,
        "seconds": secs,
        "ok": t.ok,
        "all_ok": t.all_ok,
        "errors": t.errors,
        "late": t.late,
        "first_error": t.first_error,
        "certs_per_s": t.ok as f64 / secs,
        "failed": failed,
        "latency": summary_with_failures(lat.clone(), failed),
        "latency_ok": summary(lat),
        "client_cpu_s": cpu,
        "client_cpu_us_per_cert": cpu * 1e6 / t.all_ok.max(1) as f64,
    }))
}

async fn closed_loop(
    spec: &IssueSpec,
    targets: &[Target],
    first: usize,
    id: &Identity,
    tally: &Mutex<Tally>,
    measure_from: Instant,
    deadline: Instant,
) -> Result<()> {
    let (mut at, mut conn) = connect_any(targets, first, deadline).await?;
    let mut local = Vec::new();
    let (mut ok, mut all_ok, mut errs) = (0u64, 0u64, Vec::new());
    loop {
        let start = Instant::now();
        if start >= deadline {
            break;
        }
        if let Some(n) = spec.requests
            && ok >= n.div_ceil(spec.clients.max(1) as u64)
        {
            break;
        }
        match issue_one(&mut conn, &targets[at], id, spec).await {
            Ok(issued) => {
                all_ok += 1;
                let end = Instant::now();
                if start >= measure_from && end <= deadline {
                    local.push((end - start).as_micros() as u64);
                    ok += 1;
                }
                save(spec, tally, &issued);
            }
            Err(e) => {
                if start >= measure_from {
                    errs.push(e);
                }
                // The same server again if it answers, else the next one.
                (at, conn) = match connect_any(targets, at, deadline).await {
                    Ok(c) => c,
                    Err(_) if Instant::now() >= deadline => break,
                    Err(e) => return Err(e),
                };
            }
        }
    }
    let mut t = tally.lock().map_err(|_| anyhow!("poisoned"))?;
    t.lat_us.extend(local);
    t.ok += ok;
    t.all_ok += all_ok;
    for e in &errs {
        t.error(e);
    }
    Ok(())
}

/// Most issuances in flight in open-loop mode; a start beyond it is counted `late`.
const MAX_IN_FLIGHT: usize = 512;

async fn open_loop(
    spec: &Arc<IssueSpec>,
    targets: &Arc<Vec<Target>>,
    ids: &[Arc<Identity>],
    tally: &Arc<Mutex<Tally>>,
    rate: f64,
    measure_from: Instant,
    deadline: Instant,
) -> Result<()> {
    if rate.is_nan() || rate <= 0.0 {
        bail!("--rate must be positive");
    }
    // One pool of idle connections per server.
    let pools: Arc<Vec<Mutex<Vec<Conn>>>> =
        Arc::new(targets.iter().map(|_| Mutex::new(Vec::new())).collect());
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The schedule is kept by a plain thread: tokio's timer has a 1 ms granularity, which
    // would start requests up to 1 ms late and count that lateness as server latency.
    let start = Instant::now();
    let (tick_tx, mut ticks) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        for i in 0u64.. {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if at >= deadline {
                break;
            }
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tick_tx.send((i, at)).is_err() {
                break;
            }
        }
    });
    let mut tasks = Vec::new();
    while let Some((i, at)) = ticks.recv().await {
        let measured = at >= measure_from;
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= MAX_IN_FLIGHT {
            if measured {
                tally.lock().map_err(|_| anyhow!("poisoned"))?.late += 1;
            }
            continue;
        }
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (spec, targets, tally, pools, in_flight) = (
            spec.clone(),
            targets.clone(),
            tally.clone(),
            pools.clone(),
            in_flight.clone(),
        );
        let id = ids[i as usize % ids.len()].clone();
        let first = i as usize % targets.len();
        tasks.push(tokio::spawn(async move {
            let pooled = pools[first].lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => Ok((first, c)),
                None => connect_any(&targets, first, Instant::now()).await,
            };
            let res = match conn {
                Ok((at, mut c)) => {
                    let r = issue_one(&mut c, &targets[at], &id, &spec).await;
                    if r.is_ok()
                        && let Ok(mut p) = pools[at].lock()
                    {
                        p.push(c);
                    }
                    r
                }
                Err(e) => Err(e),
            };
            let lat = Instant::now().saturating_duration_since(at);
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut t) = tally.lock() {
                match res {
                    Ok(issued) => {
                        t.all_ok += 1;
                        if measured {
                            t.lat_us.push(lat.as_micros() as u64);
                            t.ok += 1;
                        }
                        drop(t);
                        save(&spec, &tally, &issued);
                    }
                    Err(e) if measured => t.error(&e),
                    Err(_) => {}
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_targets() {
        let t = Target::parse("http://127.0.0.1:8443/").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8443");
        assert!(Target::parse("https://ca.example:8443").is_err());
        assert!(Target::parse("127.0.0.1:8443").is_err());
    }
}
