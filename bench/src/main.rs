//! `jit-bench`: the load generator and fixture maker behind `bench/run.sh`.
//!
//! ```text
//! jit-bench keys    --out DIR --count N                 ed25519 identities DIR/benchNN{,.pub}
//! jit-bench grants  --key FILE --state-dir DIR ...       a grant store for the sudo-gate benchmark
//! jit-bench issue   --server URL --key-dir DIR ...       signed request -> certificate, closed or open loop
//! jit-bench exec    --runs N --cmd "A" --cmd "B"         per-call wall time of programs, interleaved
//! jit-bench fsync   --dir DIR                            fdatasync latency of the disk under DIR
//! ```
//! Every command prints one JSON object on stdout; `bench/run.sh` turns them into the table.
//! Latencies are measured per operation and reported as percentiles; in open-loop mode
//! (`--rate`) from the *scheduled* start, so a stalled server cannot hide its queueing delay
//! (no coordinated omission).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use jit_api::auth;
use jit_api::wire::{CreateRequest, IssuedView, RequestState, RequestView};
use jit_common::{Approval, Grant};
use serde_json::json;
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(
    name = "jit-bench",
    about = "Load generator and fixtures for bench/run.sh"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes COUNT ed25519 identities DIR/<prefix>NN (0600) and DIR/<prefix>NN.pub.
    Keys {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
    },
    /// Fills STATE_DIR/grants/<user>/<id>.grant: MINE grants for USER (one covering HOST now,
    /// the others for other hosts) and OTHERS grants spread over OTHER_USERS other users.
    Grants {
        /// Grant-signing private key (OpenSSH).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 50)]
        mine: usize,
        #[arg(long, default_value_t = 10_000)]
        others: usize,
        #[arg(long, default_value_t = 1_000)]
        other_users: usize,
    },
    /// Signed `POST /v1/requests` per certificate, as `jit request` does: an auto-approved
    /// request's answer carries the certificate. `--fetch` adds the signed
    /// `GET /v1/requests/{id}/certificate` (two calls per certificate).
    Issue {
        /// `http://HOST:PORT` of jit-ca.
        #[arg(long)]
        server: String,
        /// Directory of identities made by `keys` (registered as users of the same names).
        #[arg(long)]
        key_dir: PathBuf,
        /// How many of them to use (bench00..).
        #[arg(long, default_value_t = 1)]
        users: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// An auto-approved role.
        #[arg(long)]
        role: String,
        #[arg(long, default_value_t = 600)]
        duration_secs: u64,
        /// Concurrent clients, each with one keep-alive connection (closed loop).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Open loop instead: start this many issuances per second, whatever the answers.
        #[arg(long)]
        rate: Option<f64>,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Unmeasured seconds before.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Stop after this many measured certificates instead of after SECONDS.
        #[arg(long)]
        requests: Option<u64>,
        /// Write one issued certificate line here (and its grant to FILE.grant).
        #[arg(long)]
        save_cert: Option<PathBuf>,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also fetch each certificate with a second signed call.
        #[arg(long)]
        fetch: bool,
        /// Ask each certificate for one host PREFIX0 .. PREFIX999 in turn (inside the role's
        /// selectors) instead of the role's selectors: a host's grants document is capped at
        /// 4 MiB by the CA, so long runs of one role's glob would fill it.
        #[arg(long, value_name = "PREFIX")]
        spread_hosts: Option<String>,
    },
    /// Runs each --cmd RUNS times, interleaved (A B A B ...), and reports per-call wall time.
    Exec {
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// A command line, split on whitespace (no shell). Repeat for each variant.
        #[arg(long = "cmd", required = true)]
        cmds: Vec<String>,
        /// NAME=VALUE set for every command (for example LD_PRELOAD for pam_wrapper).
        #[arg(long = "env")]
        envs: Vec<String>,
        /// Each command must exit with this status.
        #[arg(long, default_value_t = 0)]
        expect: i32,
        /// Each command's stdout must contain this text (checked on the first run).
        #[arg(long)]
        expect_stdout: Option<String>,
    },
    /// fdatasync latency: appends 128 bytes and syncs, COUNT times, in a file under DIR.
    Fsync {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let out = match cli.cmd {
        Cmd::Keys { out, count, prefix } => keys(&out, count, &prefix),
        Cmd::Grants {
            key,
            state_dir,
            user,
            host,
            mine,
            others,
            other_users,
        } => grants(&key, &state_dir, &user, &host, mine, others, other_users),
        Cmd::Issue {
            server,
            key_dir,
            users,
            prefix,
            role,
            duration_secs,
            clients,
            rate,
            seconds,
            warmup,
            requests,
            save_cert,
            threads,
            fetch,
            spread_hosts,
        } => {
            let spec = IssueSpec {
                server,
                role,
                duration_secs,
                clients,
                rate,
                seconds,
                warmup,
                requests,
                save_cert,
                fetch,
                spread_hosts,
            };
            load_identities(&key_dir, &prefix, users).and_then(|ids| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
                    .enable_all()
                    .build()
                    .context("starting the tokio runtime")?
                    .block_on(issue(spec, ids))
            })
        }
        Cmd::Exec {
            runs,
            cmds,
            envs,
            expect,
            expect_stdout,
        } => exec(runs, &cmds, &envs, expect, expect_stdout.as_deref()),
        Cmd::Fsync { dir, count } => fsync(&dir, count),
    };
    match out {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("jit-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Statistics

/// Percentile (0..=100) of sorted microsecond samples, in milliseconds.
fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn summary(mut us: Vec<u64>) -> serde_json::Value {
    us.sort_unstable();
    let mean = if us.is_empty() {
        f64::NAN
    } else {
        us.iter().sum::<u64>() as f64 / us.len() as f64 / 1000.0
    };
    json!({
        "n": us.len(),
        "p50_ms": pct_ms(&us, 50.0),
        "p90_ms": pct_ms(&us, 90.0),
        "p99_ms": pct_ms(&us, 99.0),
        "max_ms": us.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        "mean_ms": mean,
    })
}

/// CPU seconds (user + system) this process has used.
fn self_cpu_secs() -> f64 {
    proc_cpu_secs("self").unwrap_or(f64::NAN)
}

/// utime + stime of /proc/PID/stat, in seconds.
fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((utime + stime) / 100.0)
}

// ---------------------------------------------------------------------------------------
// Fixtures

fn keys(out: &Path, count: usize, prefix: &str) -> Result<serde_json::Value> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for i in 0..count {
        let name = format!("{prefix}{i:02}");
        let mut key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519)
            .context("generating a key")?;
        key.set_comment(&name);
        let path = out.join(&name);
        key.write_openssh_file(&path, LineEnding::LF)
            .with_context(|| format!("writing {}", path.display()))?;
        let public = key.public_key().to_openssh().context("encoding a key")?;
        std::fs::write(out.join(format!("{name}.pub")), format!("{public}\n"))?;
    }
    Ok(json!({ "keys": count, "dir": out }))
}

fn read_key(path: &Path) -> Result<PrivateKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PrivateKey::from_openssh(text).with_context(|| format!("parsing {}", path.display()))
}

// The CLI's flags, one to one.
#[allow(clippy::too_many_arguments)]
fn grants(
    key: &Path,
    state_dir: &Path,
    user: &str,
    host: &str,
    mine: usize,
    others: usize,
    other_users: usize,
) -> Result<serde_json::Value> {
    let key = read_key(key)?;
    let now = jit_common::now();
    let grants_dir = state_dir.join("grants");
    let mut written = 0usize;
    let mut write = |g: Grant| -> Result<()> {
        let dir = grants_dir.join(&g.user);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.grant", g.id));
        let doc = g.sign(&key).context("signing a grant")?;
        std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
        written += 1;
        Ok(())
    };
    let grant = |id: String, user: &str, host: String| Grant {
        version: jit_common::grant::VERSION,
        id: id.clone(),
        user: user.to_string(),
        role: "bench".into(),
        hosts: vec![host],
        sudo: true,
        not_before: now - 60,
        not_after: now + 3600,
        issued_at: now - 60,
        request_id: id,
        reason: "benchmark".into(),
        approvers: vec![Approval {
            user: "auto:bench".into(),
            at: now - 60,
        }],
        cert_serial: None,
        key_id: String::new(),
    };
    // The covering grant sorts last, so a decision that stops at the first allowing grant
    // still looks at every other grant of the user first.
    for i in 0..mine.saturating_sub(1) {
        write(grant(format!("a-{i:04}"), user, format!("other-{i}")))?;
    }
    if mine > 0 {
        write(grant("z-covering".into(), user, host.to_string()))?;
    }
    let per_user = others.div_ceil(other_users.max(1));
    for i in 0..others {
        let u = format!("u{:05}", i / per_user.max(1));
        write(grant(format!("g-{i:05}"), &u, host.to_string()))?;
    }
    Ok(json!({ "grants": written, "state_dir": state_dir }))
}

// ---------------------------------------------------------------------------------------
// Issuance load

#[derive(Debug)]
struct IssueSpec {
    server: String,
    role: String,
    duration_secs: u64,
    clients: usize,
    rate: Option<f64>,
    seconds: f64,
    warmup: f64,
    requests: Option<u64>,
    save_cert: Option<PathBuf>,
    fetch: bool,
    spread_hosts: Option<String>,
}

/// One registered user: the private key that signs its API calls and certifies.
#[derive(Debug)]
struct Identity {
    /// Derived once: the load generator shares the CA's two cores, so it should spend as
    /// little as it can per call (ssh-key would re-derive the Ed25519 key every signature).
    key: jit_ca::signer::ReadyKey,
    key_header: String,
    public_key: String,
}

fn load_identities(dir: &Path, prefix: &str, users: usize) -> Result<Vec<Arc<Identity>>> {
    (0..users.max(1))
        .map(|i| {
            let key = read_key(&dir.join(format!("{prefix}{i:02}")))?;
            let key_header = auth::key_header(key.public_key()).context("encoding a key")?;
            let key = jit_ca::signer::ReadyKey::new(key).map_err(|e| anyhow!("{e}"))?;
            Ok(Arc::new(Identity {
                key_header: key_header.clone(),
                public_key: key_header,
                key,
            }))
        })
        .collect()
}

type Conn = SendRequest<Full<Bytes>>;

#[derive(Debug, Clone)]
struct Target {
    addr: String,
    host_header: String,
    /// The CA's audience for signed calls (fetched from `GET /v1/ca.pub`).
    audience: String,
}

impl Target {
    fn parse(server: &str) -> Result<Self> {
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
    async fn fetch_audience(&mut self) -> Result<()> {
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

    async fn connect(&self) -> Result<Conn> {
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

async fn call(
    conn: &mut Conn,
    target: &Target,
    id: &Identity,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Bytes)> {
    // An entry point: the request timestamp the CA checks.
    #[allow(clippy::disallowed_methods)]
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let nonce = auth::new_nonce();
    let msg = auth::message(&target.audience, method, path, &body, ts, &nonce);
    let sig = auth::sign_with(&id.key, &msg).context("signing")?;
    let sig = auth::encode_signature(&sig).context("encoding the signature")?;
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, &target.host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(auth::HDR_AUDIENCE, &target.audience)
        .header(auth::HDR_KEY, &id.key_header)
        .header(auth::HDR_TIMESTAMP, ts.to_string())
        .header(auth::HDR_NONCE, nonce)
        .header(auth::HDR_SIGNATURE, sig)
        .body(Full::new(Bytes::from(body)))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

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
    })?;
    let (status, bytes) = call(conn, target, id, "POST", "/v1/requests", body).await?;
    if status != 201 && status != 200 {
        bail!(
            "POST /v1/requests: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let mut view: RequestView = serde_json::from_slice(&bytes).context("parsing RequestView")?;
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
    let path = format!("/v1/requests/{}/certificate", view.id);
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

async fn issue(spec: IssueSpec, ids: Vec<Arc<Identity>>) -> Result<serde_json::Value> {
    let mut target = Target::parse(&spec.server)?;
    target.fetch_audience().await?;
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
                let (spec, target, tally) = (spec.clone(), target.clone(), tally.clone());
                let id = ids[c % ids.len()].clone();
                tasks.push(tokio::spawn(async move {
                    closed_loop(&spec, &target, &id, &tally, measure_from, deadline).await
                }));
            }
            for t in tasks {
                t.await??;
            }
            (deadline.min(Instant::now()) - measure_from, "closed")
        }
        Some(rate) => {
            open_loop(&spec, &target, &ids, &tally, rate, measure_from, deadline).await?;
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
    Ok(json!({
        "mode": mode,
        "clients": spec.clients,
        "rate_target": spec.rate,
        "seconds": secs,
        "ok": t.ok,
        "all_ok": t.all_ok,
        "errors": t.errors,
        "late": t.late,
        "first_error": t.first_error,
        "certs_per_s": t.ok as f64 / secs,
        "latency": summary(lat),
        "client_cpu_s": cpu,
    }))
}

async fn closed_loop(
    spec: &IssueSpec,
    target: &Target,
    id: &Identity,
    tally: &Mutex<Tally>,
    measure_from: Instant,
    deadline: Instant,
) -> Result<()> {
    let mut conn = target.connect().await?;
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
        match issue_one(&mut conn, target, id, spec).await {
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
                conn = target.connect().await?;
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
    target: &Target,
    ids: &[Arc<Identity>],
    tally: &Arc<Mutex<Tally>>,
    rate: f64,
    measure_from: Instant,
    deadline: Instant,
) -> Result<()> {
    if rate.is_nan() || rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
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
        let (spec, target, tally, pool, in_flight) = (
            spec.clone(),
            target.clone(),
            tally.clone(),
            pool.clone(),
            in_flight.clone(),
        );
        let id = ids[i as usize % ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => Ok(c),
                None => target.connect().await,
            };
            let res = match conn {
                Ok(mut c) => {
                    let r = issue_one(&mut c, &target, &id, &spec).await;
                    if r.is_ok()
                        && let Ok(mut p) = pool.lock()
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

// ---------------------------------------------------------------------------------------
// Programs per call

fn exec(
    runs: usize,
    cmds: &[String],
    envs: &[String],
    expect: i32,
    expect_stdout: Option<&str>,
) -> Result<serde_json::Value> {
    let argvs: Vec<Vec<&str>> = cmds
        .iter()
        .map(|c| c.split_whitespace().collect::<Vec<_>>())
        .collect();
    if argvs.iter().any(Vec::is_empty) {
        bail!("--cmd must not be empty");
    }
    let envs: Vec<(&str, &str)> = envs
        .iter()
        .map(|e| {
            e.split_once('=')
                .ok_or_else(|| anyhow!("--env {e}: expected NAME=VALUE"))
        })
        .collect::<Result<_>>()?;
    let run = |argv: &[&str], capture: bool| -> Result<(Duration, String)> {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]).envs(envs.iter().copied());
        c.stdin(Stdio::null()).stderr(Stdio::null());
        c.stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let t = Instant::now();
        let out = c
            .output()
            .with_context(|| format!("running {}", argv.join(" ")))?;
        let d = t.elapsed();
        if out.status.code() != Some(expect) {
            bail!(
                "{} exited with {} (expected {expect})",
                argv.join(" "),
                out.status
            );
        }
        Ok((d, String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    // One checked, unmeasured run each (warms the page cache too).
    for argv in &argvs {
        let (_, stdout) = run(argv, true)?;
        if let Some(want) = expect_stdout
            && !stdout.contains(want)
        {
            bail!(
                "{}: stdout {:?} does not contain {want:?}",
                argv.join(" "),
                stdout.trim()
            );
        }
    }
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); argvs.len()];
    for _ in 0..runs {
        for (i, argv) in argvs.iter().enumerate() {
            let (d, _) = run(argv, false)?;
            samples[i].push(d.as_micros() as u64);
        }
    }
    // Paired differences against the first command: the robust way to compare on a noisy
    // machine (each pair ran back to back).
    let base = samples[0].clone();
    let results: Vec<serde_json::Value> = samples
        .into_iter()
        .zip(cmds)
        .map(|(s, cmd)| {
            let mut diffs: Vec<i64> = s
                .iter()
                .zip(&base)
                .map(|(a, b)| *a as i64 - *b as i64)
                .collect();
            diffs.sort_unstable();
            let median_diff = diffs[diffs.len() / 2] as f64 / 1000.0;
            json!({ "cmd": cmd, "time": summary(s), "median_paired_diff_ms": median_diff })
        })
        .collect();
    Ok(json!({ "runs": runs, "results": results }))
}

// ---------------------------------------------------------------------------------------
// Disk

fn fsync(dir: &Path, count: usize) -> Result<serde_json::Value> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;
    let path = dir.join(format!(".jit-bench-fsync-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    // Appending (the file grows: a WAL before its first reset) ...
    let mut append = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let t = Instant::now();
        f.write_all(&[b'x'; 128])?;
        f.sync_data()?;
        append.push(t.elapsed().as_micros() as u64);
    }
    drop(f);
    // ... and overwriting in place (a WAL reused after a checkpoint).
    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
    let mut overwrite = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        let t = Instant::now();
        f.write_all_at(&[b'y'; 128], (i * 128) as u64)?;
        f.sync_data()?;
        overwrite.push(t.elapsed().as_micros() as u64);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(
        json!({ "dir": dir, "fdatasync": summary(append), "fdatasync_overwrite": summary(overwrite) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let us: Vec<u64> = (1..=100).collect();
        assert_eq!(pct_ms(&us, 0.0), 0.001);
        assert_eq!(pct_ms(&us, 100.0), 0.1);
        assert_eq!(pct_ms(&us, 99.0), 0.099);
        assert!(pct_ms(&[], 50.0).is_nan());
        let s = summary(vec![3000, 1000, 2000]);
        assert_eq!(s["p50_ms"], 2.0);
        assert_eq!(s["max_ms"], 3.0);
        assert_eq!(s["n"], 3);
    }

    #[test]
    fn only_plain_http_targets() {
        let t = Target::parse("http://127.0.0.1:8443/").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8443");
        assert!(Target::parse("https://ca.example:8443").is_err());
        assert!(Target::parse("127.0.0.1:8443").is_err());
    }

    #[test]
    fn proc_stat_parses_this_process() {
        assert!(proc_cpu_secs("self").is_some_and(|s| s >= 0.0));
    }
}
