//! The one link a notification carries (issue 16): to the request's page on the CA's web
//! interface, `{public_url}/ui/requests/{id}`, when `public_url` is set (without it the CA
//! does not know the address people reach it at, and no link is sent). The page is a
//! read-only GET (it shows the login page to a browser without a session), so a chat
//! service fetching the link for a preview changes nothing; deciding stays a signed act or
//! a logged-in form post with its CSRF token.
//!
//! Standard Webhooks sinks get it as the payload's top-level `"url"`, inserted first into
//! the stored payload (every other byte is sent as stored; a payload that has a `url`
//! already, from a later version, is left alone). Slack messages get it as one explicit
//! link in a section, never a button.

use std::borrow::Cow;

/// `id` percent-encoded for a URL path segment (ids are `r-` and hex: unchanged).
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of request `id` under `public_url` (a trailing `/` is dropped).
pub fn request_url(public_url: &str, id: &str) -> String {
    format!(
        "{}/ui/requests/{}",
        public_url.trim_end_matches('/'),
        segment(id)
    )
}

/// The request id a payload concerns (`data.request.id`), if it is a JSON object with one.
fn payload_request(payload: &[u8]) -> Option<(serde_json::Map<String, serde_json::Value>, String)> {
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload).ok()?;
    let id = obj
        .get("data")?
        .get("request")?
        .get("id")?
        .as_str()?
        .to_string();
    Some((obj, id))
}

/// The body a Standard Webhooks sink gets: the stored payload, with `"url"` (the request's
/// page) inserted as its first member when `public_url` is set and the payload concerns a
/// request; else the stored payload unchanged.
pub fn with_url<'a>(payload: &'a [u8], public_url: Option<&str>) -> Cow<'a, [u8]> {
    let Some(base) = public_url else {
        return Cow::Borrowed(payload);
    };
    let Some((obj, id)) = payload_request(payload) else {
        return Cow::Borrowed(payload);
    };
    if obj.contains_key("url") {
        return Cow::Borrowed(payload);
    }
    // A JSON object, so its first non-blank byte is `{` and it has at least `data`.
    let Some(open) = payload.iter().position(|&b| b == b'{') else {
        return Cow::Borrowed(payload);
    };
    let member = format!(
        "\"url\":{},",
        serde_json::Value::String(request_url(base, &id))
    );
    let mut out = Vec::with_capacity(payload.len() + member.len());
    out.extend_from_slice(&payload[..=open]);
    out.extend_from_slice(member.as_bytes());
    out.extend_from_slice(&payload[open + 1..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::event::tests::approved;

    #[test]
    fn the_url_is_the_request_page_under_public_url() {
        assert_eq!(
            request_url("https://ca.example.com:8443/", "r-692b7a40a1b2c3d4e5f6"),
            "https://ca.example.com:8443/ui/requests/r-692b7a40a1b2c3d4e5f6"
        );
        assert_eq!(
            request_url("https://ca.example.com/jit", "a/b?c#d e"),
            "https://ca.example.com/jit/ui/requests/a%2Fb%3Fc%23d%20e"
        );
    }

    #[test]
    fn a_payload_gets_the_url_first_and_keeps_every_other_byte() {
        let payload = approved().payload();
        assert!(matches!(with_url(&payload, None), Cow::Borrowed(_)));
        let body = with_url(&payload, Some("https://ca.example.com"));
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"url\":\"https://ca.example.com/ui/requests/r-692b7a40a1b2c3d4e5f6\",{}",
                &std::str::from_utf8(&payload).unwrap()[1..]
            )
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["request"]["id"], "r-692b7a40a1b2c3d4e5f6");
        // No request (an alert without one), a url already there, not JSON: as stored.
        for p in [
            &br#"{"id":"evt_1","data":{"alert":{}}}"#[..],
            br#"{"url":"x","data":{"request":{"id":"r-1"}}}"#,
            b"{not json",
        ] {
            assert_eq!(&*with_url(p, Some("https://ca.example.com")), p);
        }
    }
}
