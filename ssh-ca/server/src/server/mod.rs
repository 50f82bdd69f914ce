//! `jit-ca serve`: binds, optionally wraps connections in TLS, serves the router, reloads
//! the policy (and the notification sinks' secrets) on SIGHUP, expires requests
//! periodically, delivers notifications (`notify::worker`), and shuts down gracefully on
//! SIGTERM/SIGINT (in-flight requests finish; SQLite commits are never cut mid-way). On
//! PostgreSQL it also runs the replica threads (`service::ReplicaThreads`: other replicas'
//! changes, the fallback poll, the heartbeat); the sweep and the notification worker run
//! on the replica leading them.
//! Slow and idle connections are closed ([`conn`]).

/// A line on stdout that a running service does not die for: nobody reading its startup
/// lines (stdout closed) is no reason to stop serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}

mod conn;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::clock::SystemClock;
use crate::config::{Config, TlsConfig};
use crate::error::{CaError, Result};
use crate::service::Ca;

/// How often pending requests and nonces are expired.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// Nonces of read-only calls reach SQLite within this (a write carries them sooner).
const NONCE_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Takes the data directory's service lock (released when the process ends, however it ends).
/// `jit-ca db copy` takes it too: no service may write the store it copies.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CaError::File {
            path: path.clone(),
            detail: format!("cannot open the service lock: {e}"),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CaError::ServiceRunning {
            dir: dir.to_path_buf(),
            lock: path,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(CaError::File {
            path,
            detail: format!("cannot lock: {e}"),
        }),
    }
}

/// Runs the service until SIGTERM/SIGINT.
pub fn serve(dir: &Path, listen: Option<SocketAddr>) -> Result<()> {
    let created = crate::admin::init_if_fresh(dir)?;
    if let Some(w) = crate::admin::loose_dir_warning(dir) {
        jit_common::errln!("{w}");
    }
    // One service per data directory: replay protection keeps the nonces of the window in
    // this process's memory, and the group commit assumes it is the only busy writer.
    let _lock = lock_data_dir(dir)?;
    let ca = Arc::new(Ca::open(dir, Arc::new(SystemClock))?);
    let listen = listen.unwrap_or(ca.config().listen);
    // Handlers run their database and signing work on the blocking pool. Tokio's default of
    // 512 threads only adds contention (and a malloc arena per thread, most of the peak RSS
    // under load): writes are group-committed by whichever thread holds the store and the
    // signing is CPU-bound, so a few threads per core keep every core busy.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads((cores * 8).clamp(16, 128))
        .enable_all()
        .build()
        .map_err(CaError::Runtime)?;
    rt.block_on(run(ca, listen, created))
}

async fn run(ca: Arc<Ca>, listen: SocketAddr, created: bool) -> Result<()> {
    // Fail on a bad TLS setup before listening or announcing anything.
    let acceptor = match &ca.config().tls {
        Some(tls) => Some(tls_acceptor(tls)?),
        None => None,
    };
    let listen_error = |source| CaError::Listen {
        addr: listen,
        source,
    };
    let tcp = TcpListener::bind(listen).await.map_err(listen_error)?;
    let local = tcp.local_addr().map_err(listen_error)?;
    let scheme = if ca.config().tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{local}");
    let dir = ca.config().dir.display().to_string();
    ca.audit(
        "system",
        crate::audit::event::SERVICE_START,
        serde_json::json!({"listen": local.to_string(), "tls": ca.config().tls.is_some(),
            "user_ca_keys": ca.signer().ca_public_keys().iter().map(jit_common::keys::fingerprint).collect::<Vec<_>>(),
            "grant_keys": ca.signer().grant_public_keys().iter().map(jit_common::keys::fingerprint).collect::<Vec<_>>()}),
    )?;
    say!("jit-ca listening on {url} (data in {dir})");
    if created {
        say!("Initialised a new CA in {dir}: keys in {dir}/keys, policy in {dir}/policy.toml.");
    }
    say!(
        "Next steps:\n  jit-ca user add alice --key ~/.ssh/id_ed25519.pub --group dev --dir {dir}\n  jit-ca user add bob --key bob.pub --group dba --dir {dir}\n  jit-ca host-config --dir {dir} > host.toml     # for /etc/jit/host.toml on each host\n  JIT_SERVER={url} jit request db-admin --duration 30m --reason \"...\"\nEdit {dir}/policy.toml, check it with `jit-ca policy check --dir {dir}`, reload with SIGHUP (kill -HUP {}).",
        std::process::id()
    );
    if ca.config().tls.is_none() && !local.ip().is_loopback() {
        jit_common::errln!(
            "warning: serving plain HTTP on a non-loopback address; configure [tls] in config.toml or use a TLS proxy"
        );
    }

    let limits = conn::Limits {
        header: Duration::from_secs(ca.config().header_read_timeout_secs),
        idle: Duration::from_secs(ca.config().idle_timeout_secs),
        max_connections: conn::effective_max_connections(ca.config().max_connections),
    };
    let background = tokio::spawn(housekeeping(ca.clone()));
    // Several replicas on PostgreSQL: other replicas' changes, the fallback poll, the
    // heartbeat (no thread on SQLite).
    let replica = crate::service::ReplicaThreads::start(&ca)?;
    if ca.backend_kind() == "postgresql" {
        say!(
            "Database: PostgreSQL, replica {} (`jit-ca db status --dir {dir}` lists the replicas).",
            ca.config()
                .database
                .as_ref()
                .map_or("?", |d| d.replica.as_str())
        );
    }
    // Notification delivery on threads of its own (one per sink): a receiver that hangs
    // never holds the runtime's blocking pool, which storage and the authorizing webhook use.
    let notify = crate::notify::worker::start(ca.clone())?;
    let sinks = ca.notify_hub().sinks();
    if !sinks.is_empty() {
        let names: Vec<String> = sinks
            .iter()
            .map(|s| format!("{} ({})", s.name, s.format.as_str()))
            .collect();
        say!(
            "Notifications to {}; `jit-ca notify status --dir {dir}` shows their deliveries.",
            names.join(", ")
        );
    }
    let app = crate::api::router(ca.clone());
    conn::serve(tcp, acceptor, app, limits, shutdown_signal()).await;
    background.abort();
    notify.stop();
    drop(replica);
    say!("jit-ca stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    jit_common::errln!("jit-ca: shutting down (finishing in-flight requests)");
}

/// SIGHUP reloads the policy; a timer expires requests and nonces; every second, nonces are
/// flushed, operator changes picked up and the audit checkpoint refreshed.
async fn housekeeping(ca: Arc<Ca>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    let mut flush = tokio::time::interval(NONCE_FLUSH_EVERY);
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = hup_recv => {
                let reloading = ca.clone();
                let r = tokio::task::spawn_blocking(move || reloading.reload_policy()).await;
                match r {
                    Ok(Ok(())) => jit_common::errln!("jit-ca: policy reloaded"),
                    Ok(Err(e)) => jit_common::errln!("jit-ca: policy reload rejected, keeping the old policy: {e}"),
                    Err(e) => jit_common::errln!("jit-ca: policy reload failed: {e}"),
                }
                // The [[notify]] sinks' secret files too (a rotated secret is a new file).
                let ca = ca.clone();
                if let Ok(problems) = tokio::task::spawn_blocking(move || ca.reload_notify_secrets()).await {
                    for p in problems {
                        jit_common::errln!("jit-ca: notify secret not reloaded, keeping the previous one: {p}");
                    }
                }
            }
            _ = flush.tick() => {
                let ca = ca.clone();
                let r = tokio::task::spawn_blocking(move || {
                    if let Err(e) = ca.flush_nonces() {
                        jit_common::errln!("jit-ca: writing nonces failed (retried in a second): {e}");
                    }
                    if let Err(e) = ca.flush_refusals() {
                        jit_common::errln!("jit-ca: writing refusal summaries failed (retried in a second): {e}");
                    }
                    // The summary of registered keys held back in an ended alert period.
                    ca.flush_alerts();
                    // Operator commands on the data directory, then the audit checkpoint.
                    if let Err(e) = ca.pick_up_external_changes() {
                        jit_common::errln!("jit-ca: picking up an operator change failed (retried in a second): {e}");
                    }
                    if let Err(e) = ca.refresh_checkpoint() {
                        jit_common::errln!("jit-ca: signing the audit checkpoint failed (retried in a second): {e}");
                    }
                })
                .await;
                if let Err(e) = r {
                    jit_common::errln!("jit-ca: housekeeping task failed: {e}");
                }
            }
            _ = tick.tick() => {
                let ca = ca.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || ca.sweep()).await {
                    jit_common::errln!("jit-ca: expiry sweep failed: {e}");
                }
            }
        }
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| CaError::File {
            path: tls.cert.clone(),
            detail: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(CaError::File {
            path: tls.cert.clone(),
            detail: "contains no certificate".into(),
        });
    }
    crate::files::read_secret(&tls.key)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| CaError::File {
        path: tls.key.clone(),
        detail: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| CaError::Tls {
            what: "TLS",
            source,
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| CaError::Tls {
            what: "TLS certificate/key",
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Loads the configuration of a directory (for commands that only need it).
pub fn config(dir: &Path) -> Result<Config> {
    Config::load(dir)
}
