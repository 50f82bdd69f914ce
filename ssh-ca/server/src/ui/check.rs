//! The pure checks of the web pages: same-origin (Origin, Sec-Fetch-Site), the session
//! cookie in a `Cookie` header, the Set-Cookie lines, and the security headers. No I/O, so
//! each rule has a unit test.

use axum::http::{HeaderMap, HeaderValue, header};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "jit_session";
/// The login form's one-time nonce (set by `GET /ui/login`, compared with the form's `nonce`
/// by `POST /ui/login`): a login form posted from anywhere but this browser's own confirm
/// page is refused, whatever `Origin` says (login CSRF).
pub(crate) const LOGIN_COOKIE: &str = "jit_login";
/// How long the confirm page's nonce lasts (the token's own lifetime).
pub(crate) const LOGIN_COOKIE_SECS: u64 = 60;
/// The one-shot flash message's cookie (set by a POST, shown and cleared by the next page).
pub(crate) const FLASH_COOKIE: &str = "jit_flash";

/// The Content-Security-Policy of every /ui response: no script at all, styles only from
/// /ui/static, forms only to this origin, never framed.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Strict-Transport-Security` of every /ui response served over https (one year; not
/// `includeSubDomains`: other hosts of the domain are not ours to pin).
pub(crate) const HSTS: &str = "max-age=31536000";

/// Why a state-changing POST is refused before its form is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CrossSite {
    /// More than one `Origin` header, or one that is not text.
    BadOrigin,
    /// An `Origin` that is not this CA's.
    ForeignOrigin(String),
    /// `Sec-Fetch-Site` other than `same-origin`.
    FetchSite(String),
}

impl CrossSite {
    /// One line for the page and the audit record (values are clipped and sanitised).
    pub(crate) fn message(&self) -> String {
        match self {
            Self::BadOrigin => "the request's Origin header is malformed".into(),
            Self::ForeignOrigin(o) => format!(
                "the form was sent from another site (Origin {}); only this CA's own pages may post to it",
                jit_common::log::sanitize(o, 100)
            ),
            Self::FetchSite(s) => format!(
                "the browser says the form came from another site (Sec-Fetch-Site: {}); only this CA's own pages may post to it",
                jit_common::log::sanitize(s, 40)
            ),
        }
    }
}

/// The origins this CA's own pages have. When `public_url` is set, its origin only: the
/// login links and chat links point there, a reverse proxy may pass another `Host`, and a
/// `Host` the client chose (DNS rebinding) is then never trusted. Unset: `scheme://Host` as
/// the browser addressed it (scheme `https` when `tls`).
pub(crate) fn own_origins(headers: &HeaderMap, tls: bool, public_url: Option<&str>) -> Vec<String> {
    if let Some(u) = public_url {
        return origin_of_url(u).into_iter().collect();
    }
    let mut out = Vec::new();
    let scheme = if tls { "https" } else { "http" };
    let hosts = headers.get_all(header::HOST);
    let mut it = hosts.iter();
    if let (Some(h), None) = (it.next(), it.next())
        && let Ok(h) = h.to_str()
        && !h.is_empty()
    {
        out.push(format!("{scheme}://{}", h.to_ascii_lowercase()));
    }
    out
}

/// `scheme://authority` of an absolute http(s) URL, lower-cased; None for anything else.
pub(crate) fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The same-origin check of every POST under /ui: when the browser sends `Origin`, it must be
/// one of `own`; when it sends `Sec-Fetch-Site`, it must be `same-origin`. A client that sends
/// neither (curl, an old browser) passes this check; the CSRF token (or the login token)
/// is then what stands.
///
/// `Origin: null` is what a browser sends for a form posted from a page whose
/// `Referrer-Policy` is `no-referrer` (ours: every /ui page, as the issue requires), and also
/// from a sandboxed frame or a data: URL: it cannot tell them apart. Over plain http on a
/// non-loopback address the browser sends no `Sec-Fetch-Site` either. So `null` passes this
/// check unless a `Sec-Fetch-Site` other than `same-origin` is present; what then stands is
/// the secret every form carries: the session's CSRF token, or on the login form the
/// nonce of the `jit_login` cookie (which no other site can read or set for this host).
pub(crate) fn same_origin(headers: &HeaderMap, own: &[String]) -> Result<(), CrossSite> {
    let origins = headers.get_all(header::ORIGIN);
    let mut it = origins.iter();
    match (it.next(), it.next()) {
        (None, _) => {}
        (Some(o), None) => {
            let o = o.to_str().map_err(|_| CrossSite::BadOrigin)?;
            let lower = o.to_ascii_lowercase();
            if lower == "null" {
                return check_fetch_site(headers);
            }
            // Default ports: `Origin` omits them, `Host` may not.
            let found = own.iter().any(|mine| {
                *mine == lower
                    || strip_default_port(mine) == lower
                    || *mine == strip_default_port(&lower)
            });
            if !found {
                return Err(CrossSite::ForeignOrigin(o.to_string()));
            }
        }
        (Some(_), Some(_)) => return Err(CrossSite::BadOrigin),
    }
    check_fetch_site(headers)
}

/// Every `Sec-Fetch-Site` the request carries is `same-origin`.
fn check_fetch_site(headers: &HeaderMap) -> Result<(), CrossSite> {
    for v in headers.get_all("sec-fetch-site") {
        let s = v.to_str().unwrap_or("(not text)");
        if s != "same-origin" {
            return Err(CrossSite::FetchSite(s.to_string()));
        }
    }
    Ok(())
}

fn strip_default_port(origin: &str) -> String {
    if let Some(o) = origin.strip_suffix(":80")
        && o.starts_with("http://")
    {
        return o.to_string();
    }
    if let Some(o) = origin.strip_suffix(":443")
        && o.starts_with("https://")
    {
        return o.to_string();
    }
    origin.to_string()
}

/// The value of cookie `name` in the request's `Cookie` headers: None when absent, and
/// also when it is there more than once (a cookie planted under another path or by a
/// sibling domain next to the real one: neither is trusted).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for h in headers.get_all(header::COOKIE) {
        let Ok(h) = h.to_str() else { continue };
        for pair in h.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k.trim() == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// How many cookies named `name` the request carries.
pub(crate) fn cookie_count(headers: &HeaderMap, name: &str) -> usize {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter(|pair| pair.split_once('=').is_some_and(|(k, _)| k.trim() == name))
        .count()
}

/// A `Set-Cookie` value scoped to /ui: HttpOnly, SameSite=Strict, `Secure` under TLS.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The login nonce's `Set-Cookie` value: only sent back to `/ui/login`, for 60 s (0: cleared).
pub(crate) fn login_cookie(value: &str, max_age: u64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{LOGIN_COOKIE}={value}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// The `Set-Cookie` value that removes cookie `name`.
pub(crate) fn clear_cookie(name: &str, tls: bool) -> String {
    set_cookie(name, "", 0, tls)
}

/// Sets the security headers of a /ui response. `Cache-Control: no-store` unless the
/// handler chose (the stylesheet).
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn own_origins_come_from_host_and_public_url() {
        let h = headers(&[("host", "CA.example:8443")]);
        // public_url set: its origin only (a Host the client chose is not trusted then).
        assert_eq!(
            own_origins(&h, true, Some("https://jit.example.com/base/")),
            vec!["https://jit.example.com"]
        );
        assert_eq!(own_origins(&h, true, None), vec!["https://ca.example:8443"]);
        assert_eq!(own_origins(&h, false, None), vec!["http://ca.example:8443"]);
        // Two Host headers: neither is trusted.
        let h = headers(&[("host", "a"), ("host", "b")]);
        assert!(own_origins(&h, false, None).is_empty());
        assert_eq!(origin_of_url("ftp://x"), None);
        assert_eq!(origin_of_url("https://"), None);
    }

    #[test]
    fn same_origin_accepts_own_and_absent_headers() {
        let own = vec!["http://127.0.0.1:8080".to_string()];
        assert_eq!(same_origin(&headers(&[]), &own), Ok(()));
        let h = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(same_origin(&h, &own), Ok(()));
        let own = vec!["https://ca.example:443".to_string()];
        let h = headers(&[("origin", "https://ca.example")]);
        assert_eq!(same_origin(&h, &own), Ok(()));
    }

    #[test]
    fn same_origin_refuses_foreign_null_double_and_cross_site() {
        let own = vec!["http://127.0.0.1:8080".to_string()];
        for o in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8080.evil.example",
        ] {
            assert_eq!(
                same_origin(&headers(&[("origin", o)]), &own),
                Err(CrossSite::ForeignOrigin(o.into())),
                "{o}"
            );
        }
        let h = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(same_origin(&h, &own), Err(CrossSite::BadOrigin));
        for s in ["cross-site", "same-site", "none"] {
            let h = headers(&[("origin", "http://127.0.0.1:8080"), ("sec-fetch-site", s)]);
            assert_eq!(
                same_origin(&h, &own),
                Err(CrossSite::FetchSite(s.into())),
                "{s}"
            );
        }
        // `Origin: null` (a no-referrer page's form, a sandboxed frame, a data: URL) passes
        // with `Sec-Fetch-Site: same-origin` or without Sec-Fetch-Site (plain http on a
        // non-loopback address sends none): the CSRF token or the login nonce stands then.
        let h = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(same_origin(&h, &own), Ok(()));
        assert_eq!(same_origin(&headers(&[("origin", "null")]), &own), Ok(()));
        assert_eq!(same_origin(&headers(&[("origin", "NULL")]), &own), Ok(()));
        for s in ["cross-site", "same-site", "none"] {
            let h = headers(&[("origin", "null"), ("sec-fetch-site", s)]);
            assert!(same_origin(&h, &own).is_err(), "null + {s}");
        }
        let h = headers(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(same_origin(&h, &own).is_err(), "null + two Sec-Fetch-Site");
        // No Host: no origin can match.
        assert!(same_origin(&headers(&[("origin", "http://x")]), &[]).is_err());
        assert!(
            CrossSite::ForeignOrigin("http://e\u{1b}[31m".into())
                .message()
                .contains("another site")
        );
    }

    #[test]
    fn cookie_is_found_once_or_not_at_all() {
        let h = headers(&[("cookie", "a=1; jit_session=abc; b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "jit_session=x")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("x"));
        let h = headers(&[("cookie", "jit_session=x; jit_session=y")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        let h = headers(&[("cookie", "jit_session=")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        let h = headers(&[("cookie", "xjit_session=a")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        assert_eq!(cookie_count(&h, SESSION_COOKIE), 0);
        let h = headers(&[
            ("cookie", "jit_session=x"),
            ("cookie", "a=1; jit_session=y"),
        ]);
        assert_eq!(cookie_count(&h, SESSION_COOKIE), 2);
    }

    #[test]
    fn set_cookie_attributes() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "s3cr3t", 28800, false),
            "jit_session=s3cr3t; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=28800"
        );
        assert_eq!(
            set_cookie(SESSION_COOKIE, "s", 60, true),
            "jit_session=s; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert!(clear_cookie(SESSION_COOKIE, false).contains("jit_session=; Path=/ui;"));
        assert!(clear_cookie(SESSION_COOKIE, false).contains("Max-Age=0"));
        assert_eq!(
            login_cookie("n0nce", 60, true),
            "jit_login=n0nce; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
    }

    #[test]
    fn secure_headers_keep_a_chosen_cache_control() {
        let mut h = HeaderMap::new();
        secure_headers(&mut h);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600"),
        );
        secure_headers(&mut h);
        assert_eq!(h[header::CACHE_CONTROL], "max-age=3600");
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}
