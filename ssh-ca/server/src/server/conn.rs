//! The listener: accepts connections (plain or TLS), serves HTTP/1.1 on them with the router,
//! and closes slow and idle ones.
//!
//! Every connection is registered when TCP accepts it, before any TLS handshake, and watched:
//! - a new connection must complete a request's line and headers within
//!   `header_read_timeout` of being opened; later requests on a kept-alive connection within
//!   `header_read_timeout` of their first byte;
//! - a kept-alive connection with no request in progress is closed after `idle_timeout`; a
//!   request is in progress until its response body is fully written (a streamed export is
//!   neither cut nor evicted), but a body the client stops taking is cut after
//!   `idle_timeout` without progress;
//! - a request body must arrive within `body_read_timeout` (enforced where the body is read,
//!   [`crate::api`], which answers 408 and closes the connection);
//! - a TLS handshake must finish within [`HANDSHAKE_TIMEOUT`];
//! - at most `max_connections` are open (capped below the descriptor limit so `accept`
//!   never fails for want of one); when full, the connection with no request in progress
//!   that has waited longest is closed to admit the new one, so idle sockets cannot lock out
//!   hosts or the health check. When every connection is busy the new one is closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors kept free for the database, logs and the blocking pool.
const RESERVED_FDS: usize = 128;
/// How long shutdown waits for in-flight requests.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Timeouts and the connection limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte (or the connection's opening) to the end of its headers.
    pub header: Duration,
    /// A kept-alive connection with no request in progress.
    pub idle: Duration,
    /// Most open connections.
    pub max_connections: usize,
}

const NONE: u64 = u64::MAX;

/// What the watchdog knows about one connection.
#[derive(Debug)]
struct ConnState {
    /// Requests being handled.
    in_flight: AtomicUsize,
    /// Milliseconds (since the registry's start) of the opening or the end of the last
    /// response.
    boundary: AtomicU64,
    /// Milliseconds of the first byte received after `boundary`, or [`NONE`].
    first_byte: AtomicU64,
    /// A request has been answered on it (it is kept alive, not new).
    served: AtomicBool,
    /// A response body is being written ([`Sending`]).
    sending: AtomicBool,
    /// That body waits for its producer (not for the client to read).
    producing: AtomicBool,
    /// Milliseconds of that body's last frame handed to the connection.
    progress: AtomicU64,
    /// Asked to close by the registry (evicted to admit another).
    evict: Notify,
}

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    start: Instant,
    limits: Limits,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    /// Connections closed to admit a new one, and new ones refused (all busy).
    pub evicted: AtomicU64,
    pub refused: AtomicU64,
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: Limits) -> Self {
        Self {
            start: Instant::now(),
            limits,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a new connection, closing the longest-waiting idle one if full; `None`
    /// when full of busy connections.
    fn admit(self: &Arc<Self>) -> Option<Registered> {
        let now = self.now_ms();
        let mut conns = self.lock();
        if conns.len() >= self.limits.max_connections {
            let victim = conns
                .iter()
                .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.boundary.load(Ordering::Acquire))
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if let Some(c) = conns.remove(&victim) {
                c.evict.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            in_flight: AtomicUsize::new(0),
            boundary: AtomicU64::new(now),
            first_byte: AtomicU64::new(NONE),
            served: AtomicBool::new(false),
            sending: AtomicBool::new(false),
            producing: AtomicBool::new(false),
            progress: AtomicU64::new(now),
            evict: Notify::new(),
        });
        conns.insert(id, state.clone());
        Some(Registered {
            registry: self.clone(),
            id,
            state,
        })
    }

    /// When the connection should be closed unless something changes.
    fn deadline(&self, c: &ConnState) -> Option<u64> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 4);
        if c.in_flight.load(Ordering::Acquire) > 0 {
            // A response body the client does not take (no frame handed over while the
            // body had one ready) is cut after `idle`; one waiting for its producer (an
            // export reading the trail) or a request being handled has no deadline here.
            if c.sending.load(Ordering::Acquire) && !c.producing.load(Ordering::Acquire) {
                return Some(
                    c.progress
                        .load(Ordering::Acquire)
                        .saturating_add(ms(self.limits.idle)),
                );
            }
            return None;
        }
        let first = c.first_byte.load(Ordering::Acquire);
        Some(if first != NONE {
            first.saturating_add(ms(self.limits.header))
        } else if c.served.load(Ordering::Acquire) {
            c.boundary
                .load(Ordering::Acquire)
                .saturating_add(ms(self.limits.idle))
        } else {
            c.boundary
                .load(Ordering::Acquire)
                .saturating_add(ms(self.limits.header))
        })
    }
}

/// A registered connection; unregisters when dropped.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    state: Arc<ConnState>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Counts a request in progress; its end starts the idle clock.
struct InFlight {
    registry: Arc<Registry>,
    state: Arc<ConnState>,
}

impl InFlight {
    fn enter(registry: Arc<Registry>, state: Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        Self { registry, state }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .boundary
            .store(self.registry.now_ms(), Ordering::Release);
        self.state.first_byte.store(NONE, Ordering::Release);
        self.state.served.store(true, Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body being written: its request stays in flight (no idle timeout, never
/// evicted) until the body ends or is dropped, so a streamed export or host body is not cut
/// after its headers. A client that stops reading is still cut: [`Registry::deadline`].
struct Sending {
    guard: Option<InFlight>,
}

impl Sending {
    fn start(guard: InFlight) -> Self {
        let st = &guard.state;
        st.progress
            .store(guard.registry.now_ms(), Ordering::Release);
        st.producing.store(false, Ordering::Release);
        st.sending.store(true, Ordering::Release);
        Self { guard: Some(guard) }
    }

    /// The body was polled: `producing` when it had no frame ready yet.
    fn progress(&self, producing: bool) {
        if let Some(g) = &self.guard {
            g.state
                .progress
                .store(g.registry.now_ms(), Ordering::Release);
            g.state.producing.store(producing, Ordering::Release);
        }
    }

    fn finish(&mut self) {
        if let Some(g) = self.guard.take() {
            g.state.sending.store(false, Ordering::Release);
            g.state.producing.store(false, Ordering::Release);
            drop(g);
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A response body that keeps its request in flight while it is sent ([`Sending`]).
struct SendingBody {
    inner: axum::body::Body,
    sending: Sending,
}

impl hyper::body::Body for SendingBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Pending => this.sending.progress(true),
            Poll::Ready(Some(Ok(_))) => this.sending.progress(false),
            Poll::Ready(_) => this.sending.finish(),
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The transport, noting when the first byte of a request arrives.
struct Tracked<S> {
    inner: S,
    registry: Arc<Registry>,
    state: Arc<ConnState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.registry.now_ms();
            let _ = self.state.first_byte.compare_exchange(
                NONE,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The soft descriptor limit of this process (from /proc/self/limits), if readable.
fn nofile_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return None;
    }
    soft.parse().ok()
}

/// `max_connections`, capped so that accepting never runs out of descriptors; says so
/// when it caps.
pub fn effective_max_connections(configured: usize) -> usize {
    match nofile_limit() {
        Some(nofile) if configured + RESERVED_FDS > nofile => {
            let capped = nofile.saturating_sub(RESERVED_FDS).max(16);
            jit_common::errln!(
                "jit-ca: max_connections {configured} lowered to {capped}: the descriptor limit is {nofile} \
                 (raise LimitNOFILE= in jit-ca.service, or `ulimit -n`, to at least max_connections + {RESERVED_FDS})"
            );
            capped
        }
        _ => configured,
    }
}

/// Serves `app` on `tcp` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            r = tcp.accept() => match r {
                Ok(v) => v,
                Err(_) => {
                    // Out of descriptors or a transient error: back off briefly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(reg) = registry.admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, stop) = (app.clone(), tls.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(stream, addr, tls, app, reg, stop).await;
        });
    }
    drop(tcp);
    let _ = stop_tx.send(true);
    let until = Instant::now() + DRAIN_LIMIT;
    while !registry.is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    reg: Registered,
    mut stop: watch::Receiver<bool>,
) {
    match tls {
        None => serve_io(stream, addr, app, reg, stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    _ => return,
                },
                () = reg.state.evict.notified() => return,
                _ = stop.wait_for(|s| *s) => return,
            };
            serve_io(tls, addr, app, reg, stop).await;
        }
    }
}

async fn serve_io<S>(
    io: S,
    addr: SocketAddr,
    app: Router,
    reg: Registered,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let registry = reg.registry.clone();
    let state = reg.state.clone();
    let io = Tracked {
        inner: io,
        registry: registry.clone(),
        state: state.clone(),
    };
    let (svc_registry, svc_state) = (registry.clone(), state.clone());
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = InFlight::enter(svc_registry.clone(), svc_state.clone());
        req.extensions_mut().insert(ConnectInfo(addr));
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(req.map(axum::body::Body::new))
                .await
                .map_err(|e: Infallible| match e {})?;
            // In flight until the body is written, not only until the handler returned.
            Ok::<_, Infallible>(resp.map(|inner| {
                axum::body::Body::new(SendingBody {
                    inner,
                    sending: Sending::start(guard),
                })
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below enforces the header and idle timeouts.
    builder.header_read_timeout(None).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wait = match registry.deadline(&state) {
            Some(at) => Duration::from_millis(at.saturating_sub(registry.now_ms())),
            // A request in progress: look again later (its body has its own timeout).
            None => Duration::from_millis(500),
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(wait) => {
                let expired = registry
                    .deadline(&state)
                    .is_some_and(|at| registry.now_ms() >= at);
                if expired {
                    return;
                }
            }
            () = state.evict.notified(), if !closing => {
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: max,
        }
    }

    #[test]
    fn a_full_registry_evicts_the_longest_idle() {
        let r = Arc::new(Registry::new(limits(2)));
        let a = r.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = r.admit().unwrap();
        let _busy = InFlight::enter(r.clone(), b.state.clone());
        let c = r.admit().unwrap();
        assert_eq!(r.evicted.load(Ordering::Relaxed), 1);
        assert_eq!(r.len(), 2);
        // a was evicted (idle, oldest); b is busy and c is new: c is the only candidate.
        let _busy_c = InFlight::enter(r.clone(), c.state.clone());
        assert!(r.admit().is_none());
        assert_eq!(r.refused.load(Ordering::Relaxed), 1);
        drop(a);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let r = Arc::new(Registry::new(limits(10)));
        let a = r.admit().unwrap();
        // New: the header timeout from the opening.
        let at = r.deadline(&a.state).unwrap();
        assert!((10_000..11_000).contains(&at), "{at}");
        {
            let _g = InFlight::enter(r.clone(), a.state.clone());
            assert!(r.deadline(&a.state).is_none());
        }
        // Kept alive: the idle timeout.
        let at = r.deadline(&a.state).unwrap();
        assert!(at >= 60_000, "{at}");
        // A request started: the header timeout from its first byte.
        a.state.first_byte.store(5, Ordering::Release);
        assert_eq!(r.deadline(&a.state), Some(10_005));
    }

    /// A streamed body: `n` chunks, one every `every`.
    fn slow_body(n: usize, every: Duration) -> axum::body::Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(1);
        tokio::spawn(async move {
            for i in 0..n {
                tokio::time::sleep(every).await;
                if tx.send(format!("chunk {i}\n").into()).await.is_err() {
                    return;
                }
            }
        });
        axum::body::Body::new(Chunks(rx))
    }

    struct Chunks(tokio::sync::mpsc::Receiver<axum::body::Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = axum::body::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|c| c.map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_response_still_sending_is_not_cut_by_the_idle_timeout() {
        // idle 300 ms; the body takes about 1.2 s, a chunk every 150 ms. (The header timeout
        // is short too: the watchdog first wakes at it.)
        let r = Arc::new(Registry::new(Limits {
            header: Duration::from_millis(300),
            idle: Duration::from_millis(300),
            max_connections: 4,
        }));
        let app = Router::new().route(
            "/slow",
            axum::routing::get(|| async { slow_body(8, Duration::from_millis(150)) }),
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let reg = r.clone();
        let server = tokio::spawn(async move {
            let (s, peer) = l.accept().await.unwrap();
            let conn = reg.admit().unwrap();
            serve_io(s, peer, app, conn, stop).await;
        });
        let got = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Write as _};
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            got
        })
        .await
        .unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(got.contains("chunk 7"), "cut: {got}");
        assert!(got.ends_with("0\r\n\r\n"), "not ended: {got}");
        server.await.unwrap();
    }

    #[test]
    fn a_body_waiting_on_its_reader_times_out_one_waiting_on_its_producer_does_not() {
        let r = Arc::new(Registry::new(limits(10)));
        let a = r.admit().unwrap();
        let g = InFlight::enter(r.clone(), a.state.clone());
        let sending = Sending::start(g);
        // The body was just handed a frame to write: a stalled reader is cut after `idle`.
        sending.progress(false);
        let at = r.deadline(&a.state).unwrap();
        assert!((60_000..61_000).contains(&at), "{at}");
        // The body waits for its producer (the export's reader): no deadline.
        sending.progress(true);
        assert!(r.deadline(&a.state).is_none());
        // The body ended: idle from then on, the connection free to evict.
        drop(sending);
        assert_eq!(a.state.in_flight.load(Ordering::Acquire), 0);
        assert!(r.deadline(&a.state).unwrap() >= 60_000);
    }
}
