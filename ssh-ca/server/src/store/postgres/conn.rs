//! Connections to PostgreSQL behind a blocking facade.
//!
//! `tokio-postgres` is async; the service's storage is blocking and is called from any
//! thread, inside tokio tasks too (where `Runtime::block_on` panics). So every `Connection`
//! (the socket) is driven by one private runtime thread of this module, and callers wait on
//! the `Client`'s futures with [`block_on`]: a std-only executor (thread park + `Wake`). The
//! client's futures only talk to the connection task over channels, so they need no runtime
//! of their own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

use super::PgSettings;
use crate::error::{CaError, Result};

/// Parameters of a statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The end of a write transaction. No statement timeout on COMMIT: cancelling one that waits
/// for a synchronous standby makes PostgreSQL answer success with a WARNING although the
/// standby may not have it (lock waits before it are bounded by `lock_timeout`).
pub(crate) const COMMIT_SQL: &str = "SET LOCAL statement_timeout = 0; COMMIT";

/// The time a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Session settings of every connection (sent in the startup packet: no extra round trip).
/// `lock_timeout` plays SQLite's busy timeout (→ `CaError::Busy`); a stopped replica cannot
/// hold the audit lock for ever (`idle_in_transaction_session_timeout`). The server side of a
/// TCP session probes its peer after 10 s of silence and gives up within about a minute
/// (keepalives 10 + 3 × 5 s; `tcp_user_timeout` 30 s for unacknowledged data), so a dead or
/// partitioned replica's session, and with it its session advisory locks (job leadership),
/// ends within about a minute, not after the kernel's 2 h default. Ignored on Unix sockets.
pub(crate) const SESSION_OPTIONS: &str = "-c lock_timeout=5s -c statement_timeout=30s \
     -c idle_in_transaction_session_timeout=15s -c tcp_keepalives_idle=10 \
     -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=30000";

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `f` to completion on the calling thread (parked while it waits). Callable from any
/// thread, inside a tokio runtime too: it never enters one.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// The runtime that drives every connection's socket (one worker thread for the process).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jit-ca-pg")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| CaError::Db(format!("cannot start the PostgreSQL I/O thread: {e}")))
}

/// Whether `e` means the database cannot be reached (nothing was done): the connection is
/// gone, refused, or the server is shutting down.
pub(crate) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "25P03" | "53300")
        }
        // No SQLSTATE: an I/O, TLS or protocol failure on the way.
        None => e.as_db_error().is_none(),
    }
}

/// An error with its causes ("error performing TLS handshake: invalid peer certificate: ...").
fn chain(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = c.source();
    }
    s
}

impl From<tokio_postgres::Error> for CaError {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_unavailable(&e) {
            return Self::Unavailable(chain(&e));
        }
        match e.code().map(|c| c.code()) {
            // lock_timeout, statement_timeout, serialization failure, deadlock.
            Some("55P03" | "57014" | "40001" | "40P01") => Self::Busy(e.to_string()),
            _ => match e.as_db_error() {
                Some(db) => Self::Db(format!(
                    "PostgreSQL: {}: {}",
                    db.code().code(),
                    db.message()
                )),
                None => Self::Db(chain(&e)),
            },
        }
    }
}

/// How to connect: the parsed settings, the password (zeroized on drop) and TLS.
pub(crate) struct Target {
    config: Config,
    password: Option<Zeroizing<String>>,
    tls: MakeRustlsConnect,
    replica: String,
    /// Every host is a Unix socket: no TLS (as libpq).
    unix_only: bool,
    /// Whether the last round trip of any connection reached the database.
    pub(crate) health: Arc<AtomicBool>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("user", &self.config.get_user())
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `s` (a URL or libpq key=value conninfo), reads the password file and the CA.
    pub(crate) fn new(s: &PgSettings) -> Result<Self> {
        // libpq's verify-ca / verify-full: rustls always verifies the chain and the host name.
        let conninfo = s
            .conninfo
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config: Config = conninfo.parse().map_err(|e| {
            CaError::Input(format!(
                "database: not a PostgreSQL connection string ({e}); write \
                 \"postgres://USER@HOST:PORT/DB?sslmode=require\" or \"host=... dbname=... user=...\""
            ))
        })?;
        // A Unix socket never speaks TLS (as libpq): the peer is the local server. A
        // `hostaddr` means TCP to that address, whatever `host` says.
        let unix_only = config.get_hostaddrs().is_empty()
            && !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        if unix_only {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        if config.get_password().is_some() {
            return Err(CaError::Input(
                "database: the connection string carries a password; put it in the file named by \
                 database_password_file instead"
                    .into(),
            ));
        }
        let password = match &s.password_file {
            Some(p) => {
                let text = crate::files::read_secret_named(
                    p,
                    "database password",
                    4096,
                    crate::files::Ancestors::Unchecked,
                )?;
                let line = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string());
                if line.is_empty() {
                    return Err(CaError::Input(format!(
                        "database_password_file {}: the file is empty",
                        p.display()
                    )));
                }
                Some(line)
            }
            None => None,
        };
        let tls = MakeRustlsConnect::new(super::tls::tls_config(s.ca_file.as_deref())?);
        Ok(Self {
            config,
            password,
            tls,
            replica: s.replica.clone(),
            unix_only,
            health: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Whether every connection goes to a Unix socket (plain text).
    #[cfg(test)]
    pub(crate) fn unix_only(&self) -> bool {
        self.unix_only
    }

    /// A new connection for `role` (its `application_name` is `jit-ca/<replica>/<role>`);
    /// with `notices`, notifications (`LISTEN`) are forwarded there.
    pub(crate) fn connect(
        &self,
        role: &str,
        notices: Option<mpsc::Sender<String>>,
    ) -> Result<PgConn> {
        let r = self.connect_inner(role, notices);
        self.health.store(r.is_ok(), Ordering::Relaxed);
        r
    }

    fn connect_inner(&self, role: &str, notices: Option<mpsc::Sender<String>>) -> Result<PgConn> {
        let mut config = self.config.clone();
        if let Some(p) = &self.password {
            config.password(p.as_bytes());
        }
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {SESSION_OPTIONS}"),
            _ => SESSION_OPTIONS.to_string(),
        };
        let name: String = format!("jit-ca/{}/{role}", self.replica)
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(63)
            .collect();
        config
            .options(options)
            .application_name(name)
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(30));
        let rt = runtime()?;
        let closed = Arc::new(AtomicBool::new(false));
        let warned = Arc::new(AtomicBool::new(false));
        let handle = if self.unix_only {
            rt.spawn(open(
                config,
                tokio_postgres::NoTls,
                notices,
                closed.clone(),
                warned.clone(),
            ))
        } else {
            rt.spawn(open(
                config,
                self.tls.clone(),
                notices,
                closed.clone(),
                warned.clone(),
            ))
        };
        // Dropped with the config clone: the password copy inside `Config` is not ours to
        // zeroize (tokio-postgres keeps a Vec); it lives only for this connect.
        let client = block_on(handle)
            .map_err(|e| CaError::Db(format!("the PostgreSQL I/O thread failed: {e}")))??;
        let conn = PgConn {
            client,
            stmts: Mutex::new(HashMap::new()),
            health: self.health.clone(),
            closed,
            warned,
            in_tx: AtomicBool::new(false),
        };
        // synchronous_commit = on unless the server is set to something stronger.
        let row = conn.one("SELECT current_setting('synchronous_commit')", &[])?;
        let sync: String = get(&row, 0)?;
        if !matches!(sync.as_str(), "on" | "remote_write" | "remote_apply") {
            conn.batch("SET synchronous_commit = on")?;
        }
        Ok(conn)
    }
}

/// Connects and spawns the task that drives the connection (forwarding notifications to
/// `notices`; `closed` is set when it ends, `warned` when the server sends a WARNING).
async fn open<T>(
    config: Config,
    tls: T,
    notices: Option<mpsc::Sender<String>>,
    closed: Arc<AtomicBool>,
    warned: Arc<AtomicBool>,
) -> std::result::Result<Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(tx) = &notices {
                        let _ = tx.send(n.payload().to_string());
                    }
                }
                // Read before the answer it precedes is handed to the client.
                Some(Ok(AsyncMessage::Notice(n)))
                    if n.parsed_severity() == Some(tokio_postgres::error::Severity::Warning) =>
                {
                    warned.store(true, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        closed.store(true, Ordering::Relaxed);
    });
    Ok(client)
}

/// One column of a row, typed (a type mismatch is an error, never a panic).
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| CaError::Db(format!("PostgreSQL: column {i}: {e}")))
}

/// One connection and its prepared statements.
pub(crate) struct PgConn {
    client: Client,
    stmts: Mutex<HashMap<String, Statement>>,
    health: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    /// The server sent a WARNING (cleared before COMMIT).
    warned: Arc<AtomicBool>,
    /// A transaction was begun and not ended yet.
    pub(crate) in_tx: AtomicBool,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl PgConn {
    /// Whether the connection is gone (reconnect).
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed() || self.closed.load(Ordering::Relaxed)
    }

    fn track<T>(&self, r: std::result::Result<T, tokio_postgres::Error>) -> Result<T> {
        match r {
            Ok(v) => {
                self.health.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                if is_unavailable(&e) {
                    self.health.store(false, Ordering::Relaxed);
                } else {
                    self.health.store(true, Ordering::Relaxed);
                }
                Err(e.into())
            }
        }
    }

    fn stmt(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self
            .stmts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql)
        {
            return Ok(s.clone());
        }
        let s = self.track(block_on(self.client.prepare(sql)))?;
        self.stmts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Runs a query (prepared once per connection) and returns its rows.
    pub(crate) fn rows(&self, sql: &str, p: Params<'_>) -> Result<Vec<Row>> {
        let st = self.stmt(sql)?;
        self.track(block_on(self.client.query(&st, p)))
    }

    /// At most one row.
    pub(crate) fn opt(&self, sql: &str, p: Params<'_>) -> Result<Option<Row>> {
        Ok(self.rows(sql, p)?.into_iter().next())
    }

    /// Exactly one row.
    pub(crate) fn one(&self, sql: &str, p: Params<'_>) -> Result<Row> {
        self.opt(sql, p)?
            .ok_or_else(|| CaError::Db(format!("PostgreSQL: no row from {sql}")))
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) fn exec(&self, sql: &str, p: Params<'_>) -> Result<u64> {
        let st = self.stmt(sql)?;
        self.track(block_on(self.client.execute(&st, p)))
    }

    /// Runs SQL without parameters (one or more statements; simple protocol).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.track(block_on(self.client.batch_execute(sql)))
    }

    /// Begins a transaction (`sql`: BEGIN and what goes with it, one round trip).
    pub(crate) fn begin(&self, sql: &str) -> Result<()> {
        self.in_tx.store(true, Ordering::Relaxed);
        let r = self.batch(sql);
        if r.is_err() {
            self.rollback();
        }
        r
    }

    /// Commits a write transaction. A connection lost while COMMIT was on its way means
    /// the outcome is unknown: said so (never success, never "unavailable").
    pub(crate) fn commit(&self) -> Result<()> {
        if self.is_closed() {
            // Known gone before COMMIT was sent: the server rolled the transaction back.
            self.health.store(false, Ordering::Relaxed);
            return Err(CaError::Unavailable(
                "the connection to the database was lost before COMMIT".into(),
            ));
        }
        self.warned.store(false, Ordering::Relaxed);
        let r = block_on(self.client.batch_execute(COMMIT_SQL));
        match r {
            Ok(()) if self.warned.load(Ordering::Relaxed) => {
                // "canceling wait for synchronous replication ...: committed locally, but
                // might not have been replicated": a COMMIT with a WARNING is not a success.
                self.in_tx.store(false, Ordering::Relaxed);
                Err(CaError::CommitUnknown(
                    "COMMIT answered with a warning (a wait for a synchronous standby was \
                     cancelled?)"
                        .into(),
                ))
            }
            Ok(()) => {
                self.health.store(true, Ordering::Relaxed);
                self.in_tx.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if is_unavailable(&e) => {
                self.health.store(false, Ordering::Relaxed);
                Err(CaError::CommitUnknown(chain(&e)))
            }
            Err(e) => {
                self.health.store(true, Ordering::Relaxed);
                // A failed COMMIT rolled the transaction back (a failed SET LOCAL left it
                // aborted: end it).
                self.rollback();
                Err(e.into())
            }
        }
    }

    /// Ends a read snapshot.
    pub(crate) fn end_read(&self) -> Result<()> {
        self.batch("COMMIT")?;
        self.in_tx.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Rolls back (best effort: on failure the connection stays marked and is replaced on
    /// its next use).
    pub(crate) fn rollback(&self) {
        if self.batch("ROLLBACK").is_ok() {
            self.in_tx.store(false, Ordering::Relaxed);
        }
    }
}

/// A connection slot: reconnected on use when it is gone.
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<Option<PgConn>>);

/// A locked slot.
pub(crate) type SlotGuard<'a> = std::sync::MutexGuard<'a, Option<PgConn>>;

impl Slot {
    /// Locks the slot (waits).
    pub(crate) fn lock(&self) -> SlotGuard<'_> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tries to lock without waiting.
    pub(crate) fn try_lock(&self) -> Option<SlotGuard<'_>> {
        self.0.try_lock().ok()
    }

    /// Stores a connection made elsewhere.
    pub(crate) fn put(&self, c: PgConn) {
        *self.lock() = Some(c);
    }

    /// The slot's connection with a transaction begun (`sql`). A kept connection that turns
    /// out dead on BEGIN (the server restarted since its last use) is replaced once:
    /// nothing was done on it, so trying again is safe.
    pub(crate) fn begin<'g>(
        g: &'g mut SlotGuard<'_>,
        target: &Target,
        role: &str,
        sql: &str,
    ) -> Result<&'g PgConn> {
        let reused = g.as_ref().is_some_and(|c| !c.is_closed());
        match Self::ensure(&mut *g, target, role)?.begin(sql) {
            Ok(()) => {}
            Err(CaError::Unavailable(_)) if reused => {
                **g = None;
                Self::ensure(&mut *g, target, role)?.begin(sql)?;
            }
            Err(e) => return Err(e),
        }
        g.as_ref()
            .ok_or_else(|| CaError::Db("PostgreSQL: no connection".into()))
    }

    /// The slot's connection: made now when there is none, it is closed, or a transaction
    /// of its was left open (a panic mid-way).
    pub(crate) fn ensure<'g>(
        g: &'g mut SlotGuard<'_>,
        target: &Target,
        role: &str,
    ) -> Result<&'g PgConn> {
        if g.as_ref()
            .is_none_or(|c| c.is_closed() || c.in_tx.load(Ordering::Relaxed))
        {
            **g = None;
            **g = Some(target.connect(role, None)?);
        }
        g.as_ref()
            .ok_or_else(|| CaError::Db("PostgreSQL: no connection".into()))
    }
}
