//! The web pages' load (issue 16): logged-in sessions fetching `/ui/pending`, `/ui/access`
//! and a request's page (`/ui/requests/{id}`, the last one a page linked to) in turn, next to the issuance load, to measure what the pages cost issuance.
//! Loopback only, bounded in time and in pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use jit_api::wire::WebLoginView;
use serde_json::json;

use crate::issue::{Conn, Identity, Target, call};
use crate::stats::{self_cpu_secs, summary};

/// What `web-load` runs.
#[derive(Debug)]
pub(crate) struct WebSpec {
    pub(crate) server: String,
    pub(crate) seconds: f64,
    pub(crate) max_pages: u64,
    pub(crate) rate: Option<f64>,
    pub(crate) ids: Vec<Arc<Identity>>,
}

/// The pages each session loads, in turn; [`REQUEST_PAGE`] stands for the page of the last
/// request a page linked to (skipped until one did).
const PAGES: [&str; 3] = ["/ui/pending", "/ui/access", REQUEST_PAGE];
const REQUEST_PAGE: &str = "/ui/requests/{id}";

/// The last `/ui/requests/ID` link of a page's HTML.
fn last_request_link(html: &str) -> Option<String> {
    let at = html.rfind("href=\"/ui/requests/")?;
    let rest = &html[at + "href=\"".len()..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

fn loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// Logs in as `jit web` does: the signed call for a one-time link, then its form post; the
/// session cookie (`jit_session=...`).
async fn log_in(conn: &mut Conn, target: &Target, id: &Identity) -> Result<String> {
    let (status, bytes) = call(conn, target, id, "POST", "/v1/web/login", b"{}".to_vec()).await?;
    if status != 200 {
        bail!(
            "POST /v1/web/login: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let view: WebLoginView = serde_json::from_slice(&bytes).context("parsing WebLoginView")?;
    let token = view
        .path
        .strip_prefix("/ui/login?token=")
        .ok_or_else(|| anyhow!("unexpected login path {}", view.path))?;
    // The confirm page, as a browser opens it: it sets the one-time `jit_login` nonce cookie
    // that the form post must carry (and repeat in the form).
    // Page views over the CA's bound are 503 (`Retry-After`): under the flood, try again.
    let mut tries = 0;
    let resp = loop {
        let req = hyper::Request::builder()
            .method("GET")
            .uri(&view.path)
            .header(hyper::header::HOST, &target.host_header)
            .body(Full::new(Bytes::new()))?;
        conn.ready().await?;
        let resp = conn.send_request(req).await?;
        tries += 1;
        if resp.status() != 503 || tries >= 200 {
            break resp;
        }
        let _ = resp.into_body().collect().await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status = resp.status().as_u16();
    let nonce = resp
        .headers()
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .and_then(|kv| kv.strip_prefix("jit_login="))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
        })
        .ok_or_else(|| anyhow!("GET /ui/login: no jit_login cookie (HTTP {status})"))?;
    let _ = resp.into_body().collect().await?;
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/ui/login")
        .header(hyper::header::HOST, &target.host_header)
        .header(hyper::header::COOKIE, format!("jit_login={nonce}"))
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(format!(
            "token={token}&nonce={nonce}"
        ))))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|kv| kv.starts_with("jit_session=") && kv.len() > "jit_session=".len())
                .map(str::to_string)
        });
    let _ = resp.into_body().collect().await?;
    match (status, cookie) {
        (303, Some(c)) => Ok(c),
        (s, _) => bail!("POST /ui/login: HTTP {s} without a session cookie"),
    }
}

async fn page(conn: &mut Conn, target: &Target, cookie: &str, path: &str) -> Result<Bytes> {
    let req = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, &target.host_header)
        .header(hyper::header::COOKIE, cookie)
        .body(Full::new(Bytes::new()))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        bail!("GET {path}: HTTP {status}");
    }
    Ok(body)
}

pub(crate) async fn web_load(spec: WebSpec) -> Result<serde_json::Value> {
    let mut target = Target::parse(&spec.server)?;
    if !loopback(&target.addr) {
        bail!(
            "--server {}: the web load runs against loopback only",
            spec.server
        );
    }
    target.fetch_audience().await?;
    let pages = Arc::new(AtomicU64::new(0));
    let cpu0 = self_cpu_secs();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(spec.seconds.max(0.1));
    let mut tasks = Vec::new();
    for id in spec.ids.clone() {
        let (target, pages) = (target.clone(), pages.clone());
        let (max, rate) = (spec.max_pages, spec.rate);
        tasks.push(tokio::spawn(async move {
            let mut conn = target.connect().await?;
            let cookie = log_in(&mut conn, &target, &id).await?;
            let (mut lat, mut bytes, mut errors) = (Vec::new(), 0usize, 0u64);
            let mut first_error = None;
            let start = Instant::now();
            let mut request: Option<String> = None;
            for i in 0u64.. {
                let now = Instant::now();
                if now >= deadline || pages.fetch_add(1, Ordering::Relaxed) >= max {
                    break;
                }
                if let Some(r) = rate.filter(|r| *r > 0.0) {
                    let at = start + Duration::from_secs_f64(i as f64 / r);
                    if at > now {
                        tokio::time::sleep(at - now).await;
                    }
                }
                let mut path = PAGES[i as usize % PAGES.len()];
                if path == REQUEST_PAGE {
                    match request.as_deref() {
                        Some(r) => path = r,
                        None => path = PAGES[0],
                    }
                }
                let path = path.to_string();
                let t = Instant::now();
                match page(&mut conn, &target, &cookie, &path).await {
                    Ok(body) => {
                        bytes += body.len();
                        if let Some(r) = last_request_link(&String::from_utf8_lossy(&body)) {
                            request = Some(r);
                        }
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        conn = target.connect().await?;
                    }
                }
            }
            anyhow::Ok((lat, bytes, errors, first_error))
        }));
    }
    let (mut lat, mut bytes, mut errors, mut first_error) = (Vec::new(), 0usize, 0u64, None);
    for t in tasks {
        let (l, b, e, f) = t.await??;
        lat.extend(l);
        bytes += b;
        errors += e;
        first_error = first_error.or(f);
    }
    let secs = t0.elapsed().as_secs_f64();
    if lat.is_empty() {
        bail!(
            "no page was loaded: {}",
            first_error.as_deref().unwrap_or("(no error recorded)")
        );
    }
    Ok(json!({
        "sessions": spec.ids.len(),
        "seconds": secs,
        "pages": lat.len(),
        "pages_per_s": lat.len() as f64 / secs,
        "bytes_per_page": bytes / lat.len().max(1),
        "errors": errors,
        "first_error": first_error,
        "latency": summary(lat),
        "client_cpu_s": self_cpu_secs() - cpu0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_page_comes_from_a_link() {
        let html = "<a class=\"request-link\" href=\"/ui/requests/r-1\">r-1</a> \
                    <a href=\"/ui/requests/r-2\">r-2</a>";
        assert_eq!(last_request_link(html).as_deref(), Some("/ui/requests/r-2"));
        assert_eq!(last_request_link("<p>none</p>"), None);
    }

    #[test]
    fn only_loopback() {
        assert!(loopback("127.0.0.1:8443"));
        assert!(loopback("localhost:1"));
        assert!(loopback("[::1]:8443"));
        assert!(!loopback("10.0.0.1:8443"));
        assert!(!loopback("ca.example.com:443"));
    }
}
