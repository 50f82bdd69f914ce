//! Host reads (`jit-bench hosts`): many distinct host names fetch their grants document, as
//! a fleet's sync timers do; and a notification receiver (`jit-bench receive`) that answers
//! every POST with 200, for the outbox A/B.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::json;

use crate::issue::Target;
use crate::stats::summary_with_failures;

#[derive(Debug)]
pub(crate) struct HostsSpec {
    pub(crate) server: String,
    pub(crate) prefix: String,
    pub(crate) count: u64,
    pub(crate) concurrency: usize,
}

/// `GET /v1/hosts/<prefix><i>/grants` for i in 0..count, `concurrency` keep-alive
/// connections taking the next name in turn; each answer must be 200 with a JSON body.
pub(crate) async fn hosts(spec: HostsSpec) -> Result<serde_json::Value> {
    let target = Target::parse(&spec.server)?;
    let next = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(spec.count as usize)));
    let errors = Arc::new(Mutex::new((0u64, None::<String>)));
    let bytes = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..spec.concurrency.max(1) {
        let (target, next, lat, errors, bytes) = (
            target.clone(),
            next.clone(),
            lat.clone(),
            errors.clone(),
            bytes.clone(),
        );
        let (prefix, count) = (spec.prefix.clone(), spec.count);
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let start = Instant::now();
                let r = fetch_one(&target, &mut conn, &format!("{prefix}{i}")).await;
                let d = start.elapsed().as_micros() as u64;
                match r {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                        if let Ok(mut l) = lat.lock() {
                            l.push(d);
                        }
                    }
                    Err(e) => {
                        conn = None;
                        if let Ok(mut er) = errors.lock() {
                            er.0 += 1;
                            er.1.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let lat = std::mem::take(&mut *lat.lock().map_err(|_| anyhow!("poisoned"))?);
    let (errs, first) = errors.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let ok = lat.len();
    Ok(json!({
        "count": spec.count,
        "ok": ok,
        "errors": errs,
        "first_error": first,
        "bytes": bytes.load(Ordering::Relaxed),
        "seconds": secs,
        "per_s": ok as f64 / secs,
        "latency": summary_with_failures(lat, errs),
    }))
}

async fn fetch_one(
    target: &Target,
    conn: &mut Option<crate::issue::Conn>,
    host: &str,
) -> Result<u64> {
    if conn.is_none() {
        *conn = Some(target.connect().await?);
    }
    let c = conn.as_mut().ok_or_else(|| anyhow!("no connection"))?;
    let path = format!("/v1/hosts/{host}/grants");
    let req = hyper::Request::builder()
        .method("GET")
        .uri(&path)
        .header(hyper::header::HOST, &target.host_header)
        .body(Full::new(Bytes::new()))?;
    c.ready().await?;
    let resp = c.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        bail!("GET {path}: HTTP {status}");
    }
    serde_json::from_slice::<serde_json::Value>(&body)
        .with_context(|| format!("GET {path}: the body is not JSON"))?;
    Ok(body.len() as u64)
}

/// Answers every HTTP/1.1 request on `listen` with `200 OK` (an empty body), reading each
/// request's body by its Content-Length, one thread per connection; prints the bound
/// address on stdout, then counts the requests into `count_file` (rewritten on each one)
/// if given. Runs until killed.
pub(crate) fn receive(listen: &str, count_file: Option<&std::path::Path>) -> Result<()> {
    let l = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    println!("{}", l.local_addr()?);
    std::io::stdout().flush()?;
    let seen = Arc::new(AtomicU64::new(0));
    for s in l.incoming() {
        let Ok(s) = s else { continue };
        let seen = seen.clone();
        let count_file = count_file.map(std::path::Path::to_path_buf);
        std::thread::spawn(move || {
            let _ = serve(s, &seen, count_file.as_deref());
        });
    }
    Ok(())
}

fn serve(s: TcpStream, seen: &AtomicU64, count_file: Option<&std::path::Path>) -> Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().context("Content-Length")?;
            }
        }
        let mut body = vec![0u8; len.min(1 << 20)];
        r.read_exact(&mut body)?;
        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(f) = count_file {
            let _ = std::fs::write(f, format!("{n}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_answers_200_on_one_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            serve(s, &s2, None).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        for _ in 0..2 {
            c.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            let mut buf = [0u8; 38];
            c.read_exact(&mut buf).unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"), "{buf:?}");
        }
        drop(c);
        h.join().unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 2);
    }
}
