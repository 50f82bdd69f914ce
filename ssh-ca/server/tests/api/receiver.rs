//! A real HTTP receiver on 127.0.0.1 for the outgoing calls of the CA (the authorizing
//! webhook, notification sinks): a `TcpListener` thread that records each call's raw headers
//! and body and answers as the test scripts it (an answer, slowly, a redirect, held until a
//! go-ahead, a status the test switches, hanging until the client gives up). Signatures are
//! checked independently of the CA's signer: with the `hmac` crate ([`assert_signed`]) and
//! with the `openssl` command ([`openssl_signature`]).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use hmac::Mac as _;
use jit_test_kit::harness::T0;

/// The secret of the tests' webhooks and sinks (32 bytes).
pub const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// What the receiver answers.
#[derive(Clone)]
pub enum Say {
    /// Status line, then this body.
    Answer(u16, String),
    /// Waits this long before answering yes.
    Slow(Duration),
    /// 302 to this URL.
    Redirect(String),
    /// Waits for a message on the channel (the test's go-ahead), then answers 200 with
    /// this body.
    Gate(Arc<Mutex<mpsc::Receiver<()>>>, String),
    /// Answers the status the test set last (an empty body).
    Switch(Arc<AtomicU16>),
    /// Never answers: holds the connection until the client closes it, then sends `()` on
    /// the channel (the client gave up).
    Hang(mpsc::Sender<()>),
}

/// One call the receiver got: its path, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A local HTTP receiver answering every call with `say`; calls arrive on the channel.
pub fn receiver(say: Say) -> (String, mpsc::Receiver<Got>) {
    receiver_at("/authorize", say)
}

/// [`receiver`], its URL ending in `path`.
pub fn receiver_at(path: &str, say: Say) -> (String, mpsc::Receiver<Got>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    (url, receiver_on(listener, say))
}

/// A receiver on `listener` (bound by the caller: a given port).
pub fn receiver_on(listener: TcpListener, say: Say) -> mpsc::Receiver<Got> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            let say = say.clone();
            std::thread::spawn(move || serve(stream, &say, &tx));
        }
    });
    rx
}

fn serve(stream: TcpStream, say: &Say, tx: &mpsc::Sender<Got>) {
    if let Say::Hang(gave_up) = say {
        let peer = stream.try_clone().unwrap();
        if read_call(stream, tx).is_some() {
            // Wait for the client to close its side (a read of 0 bytes, or an error).
            let mut buf = [0u8; 64];
            let mut peer = peer;
            while matches!(peer.read(&mut buf), Ok(n) if n > 0) {}
            let _ = gave_up.send(());
        }
        return;
    }
    handle(stream, say, tx);
}

/// Reads one call from `s` and reports it; None if the client sent nothing usable.
fn read_call<S: std::io::Read>(mut s: S, tx: &mpsc::Sender<Got>) -> Option<()> {
    let mut headers = HashMap::new();
    let mut r = BufReader::new(&mut s);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || line.is_empty() {
        return None; // e.g. a TLS handshake the client gave up
    }
    assert!(line.starts_with("POST /"), "{line}");
    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
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
    let len: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let _ = tx.send(Got {
        path,
        headers,
        body,
    });
    Some(())
}

/// Reads one request from `s` and answers it as `say` says.
pub fn handle<S: std::io::Read + std::io::Write>(mut s: S, say: &Say, tx: &mpsc::Sender<Got>) {
    if read_call(&mut s, tx).is_none() {
        return;
    }
    let (status, extra, text) = match say {
        Say::Answer(s, b) => (*s, String::new(), b.clone()),
        Say::Slow(d) => {
            std::thread::sleep(*d);
            (200, String::new(), r#"{"approve": true}"#.to_string())
        }
        Say::Redirect(to) => (302, format!("location: {to}\r\n"), String::new()),
        Say::Gate(go, body) => {
            let go = go.lock().unwrap();
            go.recv_timeout(Duration::from_secs(10)).unwrap();
            (200, String::new(), body.clone())
        }
        Say::Switch(status) => (status.load(Ordering::SeqCst), String::new(), String::new()),
        Say::Hang(_) => return,
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = s.flush();
}

/// A receiver that holds its answer (`body`) until the test sends the go-ahead.
pub fn gated_receiver(body: &str) -> (String, mpsc::Receiver<Got>, mpsc::Sender<()>) {
    let (go, wait) = mpsc::channel();
    let (url, calls) = receiver(Say::Gate(Arc::new(Mutex::new(wait)), body.into()));
    (url, calls, go)
}

/// The Standard Webhooks signature of `got` under `secret`, computed with the `hmac` crate
/// (not the CA's signer).
pub fn hmac_signature(secret: &str, got: &Got) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = &got.headers["webhook-id"];
    let ts = &got.headers["webhook-timestamp"];
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&got.body);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

/// Checks the Standard Webhooks signature of `got` (the tests' secret, the CA's clock at
/// [`T0`]) independently of the CA's signer.
pub fn assert_signed(got: &Got) {
    assert_eq!(
        got.headers["webhook-signature"],
        hmac_signature(SECRET, got)
    );
    assert_eq!(
        got.headers["webhook-timestamp"],
        T0.to_string(),
        "the CA's clock"
    );
    assert_eq!(got.headers["content-type"], "application/json");
}

/// The signature of `got` under `secret` as the `openssl` command computes it over the
/// received bytes: an implementation that shares no code with the CA (nor with the `hmac`
/// crate).
pub fn openssl_signature(secret: &str, got: &Got) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-mac", "HMAC", "-macopt"])
        .arg(format!("hexkey:{key_hex}"))
        .arg("-binary")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl (tests/install-deps.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            format!(
                "{}.{}.",
                got.headers["webhook-id"], got.headers["webhook-timestamp"]
            )
            .as_bytes(),
        )
        .unwrap();
    stdin.write_all(&got.body).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("v1,{}", b64.encode(out.stdout))
}
