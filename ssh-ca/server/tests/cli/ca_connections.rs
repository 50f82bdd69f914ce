//! Slow and idle connections against a real `jit-ca serve` (issue 11, item 10): a half-sent
//! request line or header block, a half-sent body and an idle kept-alive connection are
//! closed after their timeouts (plain HTTP and TLS), and 1,100 idle connections at the
//! default descriptor limit do not keep the health check from answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_test_kit::running::*;

/// Sets the three timeouts of config.toml to 2 seconds (whether `jit-ca init` wrote them
/// or not).
fn short_timeouts(data: &std::path::Path) {
    set_timeouts(data, "2s");
}

/// Sets the three timeouts of config.toml to `value`.
fn set_timeouts(data: &std::path::Path, value: &str) {
    let path = data.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !["header_read_timeout", "body_read_timeout", "idle_timeout"]
                .iter()
                .any(|k| l.trim_start().starts_with(k))
        })
        .collect();
    let at = kept
        .iter()
        .position(|l| l.starts_with('['))
        .unwrap_or(kept.len());
    let lines = format!(
        "header_read_timeout = \"{value}\"\nbody_read_timeout = \"{value}\"\nidle_timeout = \"{value}\""
    );
    kept.insert(at, &lines);
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
}

fn addr(ca: &Ca) -> String {
    ca.url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string()
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read
/// and how long it took. A reset counts as closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(start.elapsed()),
                );
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(start.elapsed()),
                );
            }
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), None)
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let ca = Ca::start_with(|d| {
        short_timeouts(d);
        String::new()
    });
    let mut line = TcpStream::connect(addr(&ca)).unwrap();
    line.write_all(b"GET /v1/hea").unwrap();
    let mut headers = TcpStream::connect(addr(&ca)).unwrap();
    headers
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        .unwrap();
    let mut silent = TcpStream::connect(addr(&ca)).unwrap();
    for (what, s) in [
        ("request line", &mut line),
        ("headers", &mut headers),
        ("nothing", &mut silent),
    ] {
        let (_, closed) = read_until_closed(s, Duration::from_secs(15));
        let took = closed.unwrap_or_else(|| {
            panic!("a connection that sent a partial {what} was held open for 15s")
        });
        assert!(
            took < Duration::from_secs(8),
            "{what}: closed only after {took:?}"
        );
    }
}

#[test]
fn a_half_sent_body_is_closed_after_the_body_timeout() {
    let ca = Ca::start_with(|d| {
        short_timeouts(d);
        String::new()
    });
    let mut s = TcpStream::connect(addr(&ca)).unwrap();
    s.write_all(
        b"POST /v1/requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"role\":",
    )
    .unwrap();
    let start = Instant::now();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    let took = closed.expect("a connection with a half-sent body was held open for 15s");
    assert!(took < Duration::from_secs(8), "closed only after {took:?}");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("request_timeout"), "{got}");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "closed before the timeout: {got}"
    );
    // The refusal is audited.
    let audit = Command::new(JIT_CA)
        .args(["audit", "export", "--dir"])
        .arg(ca.data())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(text.contains("request_timeout"), "{text}");
}

/// The web pages' forms (issue 16) are bodies too: a half-sent login form is cut off at
/// `body_read_timeout`, with a 408 page.
#[test]
fn a_half_sent_web_form_is_closed_after_the_body_timeout() {
    let ca = Ca::start_with(|d| {
        short_timeouts(d);
        String::new()
    });
    let mut s = TcpStream::connect(addr(&ca)).unwrap();
    s.write_all(
        b"POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=",
    )
    .unwrap();
    let start = Instant::now();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    let took = closed.expect("a connection with a half-sent form was held open for 15s");
    assert!(took < Duration::from_secs(8), "closed only after {took:?}");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("id=\"error\""), "{got}");
    assert!(got.contains("body_read_timeout"), "{got}");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "closed before the timeout: {got}"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let ca = Ca::start_with(|d| {
        short_timeouts(d);
        String::new()
    });
    let mut s = TcpStream::connect(addr(&ca)).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let took = closed.expect("an idle kept-alive connection was held open for 15s");
    assert!(
        took >= Duration::from_millis(1500),
        "closed before the idle timeout"
    );
    assert!(took < Duration::from_secs(8), "closed only after {took:?}");
}

/// Raises this test process's soft RLIMIT_NOFILE to at least `want` (up to its hard limit),
/// with `prlimit --pid`, so that it can hold the idle connections itself.
fn raise_own_descriptor_limit(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line.trim_start_matches("Max open files").split_whitespace();
    let parse = |v: Option<&str>| match v.unwrap() {
        "unlimited" => u64::MAX,
        n => n.parse::<u64>().unwrap(),
    };
    let (soft, hard) = (parse(f.next()), parse(f.next()));
    if soft >= want {
        return;
    }
    assert!(
        hard >= want,
        "this test holds {want} descriptors but the hard limit is {hard}; raise it (ulimit -Hn)"
    );
    let st = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={want}:{hard}"))
        .status()
        .unwrap();
    assert!(st.success(), "prlimit could not raise the descriptor limit");
}

#[test]
fn idle_connections_do_not_starve_the_health_check() {
    raise_own_descriptor_limit(1300);
    // The default descriptor limit of a service (1024), as systemd and shells set it.
    let ca = Ca::start_under(&["prlimit", "--nofile=1024:1024", "--"], |_| String::new());
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match TcpStream::connect_timeout(&addr(&ca).parse().unwrap(), Duration::from_secs(2)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect failed after {} connections: {e}", idle.len()),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..3 {
        let start = Instant::now();
        let mut s = TcpStream::connect_timeout(&addr(&ca).parse().unwrap(), Duration::from_secs(2))
            .unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (got, _) = read_until_closed(&mut s, Duration::from_secs(3));
        assert!(
            got.starts_with("HTTP/1.1 200"),
            "round {round}: the health check did not answer within 3s with {} idle connections open: {got:?}",
            idle.len()
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "round {round}: {:?}",
            start.elapsed()
        );
    }
    drop(idle);
}

/// A private CA and a server certificate for 127.0.0.1, made by `openssl`.
fn make_pki(dir: &std::path::Path) {
    let sh = format!(
        r#"set -e
cd '{d}'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 2 -subj /CN=jit-test-root \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out tls.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext 2>/dev/null
chmod 600 key.pem
"#,
        d = dir.display()
    );
    let o = Command::new("sh").arg("-c").arg(sh).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn tls_connections_have_the_same_timeouts() {
    let ca = Ca::start_with(|data| {
        let tls = data.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        make_pki(&tls);
        short_timeouts(data);
        "\n[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n".to_string()
    });
    // A completed handshake, then half a request: `openssl s_client` exits when the server
    // closes the connection.
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr(&ca)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    let closed = loop {
        if client.try_wait().unwrap().is_some() {
            break Some(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = client.kill();
    let _ = client.wait();
    drop(stdin);
    let took = closed.expect("a TLS connection with a half-sent request was held open for 15s");
    assert!(took < Duration::from_secs(8), "closed only after {took:?}");
}

#[test]
fn a_tls_client_that_never_finishes_the_handshake_is_cut_off() {
    // The HTTP timeouts are 2 minutes here, so only the handshake timeout (10 s,
    // jit_ca's server::conn::HANDSHAKE_TIMEOUT) can close these connections within the
    // test's 30 s.
    let ca = Ca::start_with(|data| {
        let tls = data.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        make_pki(&tls);
        set_timeouts(data, "120s");
        "\n[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n".to_string()
    });
    let start = Instant::now();
    // One client sends nothing at all after connecting...
    let mut silent = TcpStream::connect(addr(&ca)).unwrap();
    // ...the other starts a ClientHello (a TLS record header announcing 512 bytes) and stops.
    let mut partial = TcpStream::connect(addr(&ca)).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    for (name, s) in [
        ("silent", &mut silent),
        ("half a ClientHello", &mut partial),
    ] {
        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
        let (got, closed) = read_until_closed(s, left);
        assert!(
            closed.is_some(),
            "{name}: a TLS connection without a finished handshake was held open for 30 s"
        );
        assert!(
            !got.starts_with("HTTP/"),
            "{name}: the server spoke HTTP on a TLS port: {got}"
        );
    }
    // The server still serves a real TLS client afterwards.
    let o = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr(&ca)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut o = o;
    o.stdin
        .take()
        .unwrap()
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = o.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "health over TLS: {text}");
}
