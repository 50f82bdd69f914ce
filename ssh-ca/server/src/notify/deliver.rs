//! One delivery attempt's request and its outcome, pure: what is sent to a sink for an
//! event (headers and exact body), and how the client's answer is classified. The worker
//! ([`super::worker`]) sends it with [`crate::webhook::client::post`] from its sink's own thread.
//!
//! `standard`: the body is the stored payload, byte for byte (with `public_url` set, the
//! request's page as `"url"` inserted first, [`super::link::with_url`]), signed with the Standard
//! Webhooks headers ([`crate::webhook::Secret::headers`]): `webhook-id` is the event id (the
//! same on every retry and resend), `webhook-timestamp` this attempt's time. `slack`: the
//! body is [`super::slack::render`]'s message, unsigned.

use std::time::Duration;

use super::backoff;
use super::config::{Format, Sink};
use super::event::Event;
use crate::webhook::client::{Failure, Reply, Target};

/// Largest answer body read (only the status matters).
pub const MAX_ANSWER: usize = 4096;
/// The deadline of one attempt.
pub const TIMEOUT: Duration = Duration::from_secs(crate::webhook::DEFAULT_TIMEOUT_SECS);

/// What one attempt sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Headers besides `content-type: application/json` (which the client sets).
    pub headers: Vec<(&'static str, String)>,
    /// The exact body.
    pub body: Vec<u8>,
}

/// The request for `event` (stored as `payload`, the bytes [`Event::payload`] made) to
/// `sink` at `attempt_time`; `approvers` are contact handles for Slack mentions;
/// `public_url` (config) adds the link to the request's page ([`super::link`]).
pub fn outgoing(
    sink: &Sink,
    event: &Event,
    payload: &[u8],
    approvers: &[String],
    attempt_time: u64,
    public_url: Option<&str>,
) -> Result<Outgoing, String> {
    match sink.format {
        Format::Standard => signed(
            sink,
            &event.id,
            &super::link::with_url(payload, public_url),
            attempt_time,
        ),
        Format::Slack => Ok(Outgoing {
            headers: Vec::new(),
            body: serde_json::to_vec(&super::slack::render(event, approvers, public_url))
                .map_err(|e| format!("notify.{}: {e}", sink.name))?,
        }),
    }
}

/// The call to a `standard` sink: the stored `payload` exactly, signed for event `id` at
/// `attempt_time` (the payload is not read: a row whose payload this build would not parse,
/// written by a later version, is still sent as stored).
pub fn signed(
    sink: &Sink,
    id: &str,
    payload: &[u8],
    attempt_time: u64,
) -> Result<Outgoing, String> {
    let secret = sink.secret.as_ref().ok_or_else(|| {
        format!(
            "notify.{}: the secret file was not read; nothing is sent unsigned",
            sink.name
        )
    })?;
    Ok(Outgoing {
        headers: secret
            .headers(id, attempt_time, payload)
            .into_iter()
            .collect(),
        body: payload.to_vec(),
    })
}

/// Where an attempt goes.
pub fn target(sink: &Sink) -> Target<'_> {
    Target {
        url: &sink.url,
        timeout: TIMEOUT,
        ca_pem: sink.ca_pem.as_deref(),
        max_body: MAX_ANSWER,
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// Anything else: retried (see [`backoff`]) until it is dead.
    Failed {
        /// The answer's status, if there was one.
        status: Option<u16>,
        /// One line for `jit-ca notify status`: never the URL (see `webhook::client`).
        error: String,
    },
}

/// Classifies the client's result.
pub fn classify(result: Result<Reply, Failure>) -> Attempt {
    match result {
        Ok(r) if backoff::delivered(r.status) => Attempt::Delivered { status: r.status },
        Ok(r) => Attempt::Failed {
            status: Some(r.status),
            error: format!("answered {}", r.status),
        },
        Err(f) => Attempt::Failed {
            status: f.status,
            error: format!("{}: {}", f.kind.as_str(), f.detail),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;
    use crate::notify::event::tests::approved;
    use crate::webhook::Secret;
    use crate::webhook::client::{FailKind, post};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn sink(format: Format, url: &str) -> Sink {
        Sink {
            name: "t".into(),
            url: url.into(),
            format,
            secret_file: None,
            filter: crate::notify::filter::Filter::all(),
            secret: (format == Format::Standard).then(|| Secret::parse(SECRET).unwrap()),

            ca_file: None,
            ca_pem: None,
        }
    }

    /// One call a receiver got: its headers (lower-case names) and body.
    type Got = (HashMap<String, String>, Vec<u8>);

    /// A receiver on 127.0.0.1 answering one call with `status`; returns the URL and a
    /// channel with the call's headers (lower-case names) and body.
    fn receiver(status: u16) -> (String, std::sync::mpsc::Receiver<Got>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut headers = HashMap::new();
            let mut r = BufReader::new(&mut s);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /hook "), "{line}");
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (k, v) = l.split_once(':').unwrap();
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            let mut body = vec![0; headers["content-length"].parse().unwrap()];
            r.read_exact(&mut body).unwrap();
            tx.send((headers, body)).unwrap();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        });
        (url, rx)
    }

    /// The signature checked by OpenSSL (no code shared with the CA's signer).
    fn openssl_sign(id: &str, ts: &str, body: &[u8]) -> String {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode(SECRET.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut child = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-mac", "HMAC", "-macopt"])
            .arg(format!("hexkey:{}", hex::encode(key)))
            .arg("-binary")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl (tests/install-deps.sh installs it)");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{id}.{ts}.").as_bytes()).unwrap();
        stdin.write_all(body).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(out.stdout)
        )
    }

    #[test]
    fn a_standard_delivery_is_the_payload_signed_byte_for_byte() {
        let e = approved();
        let payload = e.payload();
        let (url, rx) = receiver(204);
        let s = sink(Format::Standard, &url);
        let out = outgoing(&s, &e, &payload, &[], 1_795_992_007, None).unwrap();
        let result = post(&target(&s), &out.headers, &out.body);
        assert_eq!(classify(result), Attempt::Delivered { status: 204 });
        let (h, body) = rx.recv().unwrap();
        assert_eq!(body, payload);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["webhook-id"], "evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f");
        assert_eq!(h["webhook-timestamp"], "1795992007");
        assert_eq!(
            h["webhook-signature"],
            openssl_sign(&h["webhook-id"], &h["webhook-timestamp"], &body)
        );
        // A retry: same id and body, its own timestamp and signature.
        let again = outgoing(&s, &e, &payload, &[], 1_795_992_100, None).unwrap();
        assert_eq!(again.headers[0], out.headers[0]);
        assert_eq!(again.body, out.body);
        assert_ne!(again.headers[2], out.headers[2]);
    }

    #[test]
    fn a_slack_delivery_is_the_rendered_message_unsigned() {
        let e = approved();
        let (url, rx) = receiver(500);
        let s = sink(Format::Slack, &url);
        let out = outgoing(&s, &e, &e.payload(), &["@U0BOB1".into()], 1, None).unwrap();
        assert!(out.headers.is_empty());
        let result = post(&target(&s), &out.headers, &out.body);
        assert_eq!(
            classify(result),
            Attempt::Failed {
                status: Some(500),
                error: "answered 500".into()
            }
        );
        let (h, body) = rx.recv().unwrap();
        assert!(!h.contains_key("webhook-signature"));
        let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
        crate::notify::slack::check_shape(&msg).unwrap();
    }

    #[test]
    fn nothing_is_sent_unsigned_and_failures_never_name_the_url() {
        let e = approved();
        let mut s = sink(Format::Standard, "http://127.0.0.1:1/x?token=SECRET");
        s.secret = None;
        assert!(
            outgoing(&s, &e, &e.payload(), &[], 1, None)
                .unwrap_err()
                .ends_with("nothing is sent unsigned")
        );
        let s = sink(Format::Standard, "http://127.0.0.1:1/x?token=SECRET");
        let out = outgoing(&s, &e, &e.payload(), &[], 1, None).unwrap();
        match classify(post(&target(&s), &out.headers, &out.body)) {
            Attempt::Failed {
                status: None,
                error,
            } => {
                assert!(error.starts_with(FailKind::Connect.as_str()), "{error}");
                assert!(!error.contains("SECRET"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
