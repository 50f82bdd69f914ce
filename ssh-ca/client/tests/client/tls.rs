//! `jit` against a `jit-ca serve` speaking TLS with a certificate from a private CA:
//! refused with a clear hint by default, accepted with `JIT_CA_CERT` or `ca_cert`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use jit_api::wire::WhoamiView;
use jit_test_kit::running::*;

/// A private CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it, made by
/// the `openssl` command.
fn make_pki(dir: &Path) {
    let sh = format!(
        r#"set -e
cd '{d}'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 2 -subj /CN=jit-test-root \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out tls.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext
"#,
        d = dir.display()
    );
    let o = Command::new("sh").arg("-c").arg(sh).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn private_ca_tls() {
    let ca = Ca::start_with(|data| {
        let tls = data.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        make_pki(&tls);
        "\n[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n".to_string()
    });
    assert!(ca.url.starts_with("https://"));
    let alice = ca.user("alice", &["dev"]);
    let root = ca.data().join("tls/ca.pem");

    // Web PKI roots only: the private CA is not trusted, and the error says what to do.
    let (code, _, err) = out(ca.jit(&alice).arg("whoami"));
    assert_eq!(code, 1);
    assert!(err.contains("JIT_CA_CERT"), "{err}");

    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_CA_CERT", &root)
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");

    let cfg = alice.home.join(".config/jit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!("ca_cert = \"{}\"\n", root.display()),
    )
    .unwrap();
    let w: WhoamiView = json(ca.jit(&alice).args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");

    // A file that is not PEM is a configuration error.
    let (code, _, err) = out(ca
        .jit(&alice)
        .env("JIT_CA_CERT", alice.home.join(".ssh/id_ed25519.pub"))
        .arg("whoami"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PEM"), "{err}");
}
