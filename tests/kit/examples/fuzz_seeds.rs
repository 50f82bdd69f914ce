//! Writes the fuzz seeds that need keys or signatures into CORPUS (fuzz/corpus), from the
//! test kit: revocation lists signed with the grant vectors' key, host.toml files trusting
//! the kit's user CA, user and host certificates it signs, and API request bodies carrying a
//! kit user's key. Run by fuzz/seeds/make-seeds.sh (on purpose only, when formats change):
//!
//!   cargo run -p jit-test-kit --example fuzz_seeds -- fuzz/corpus
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use base64::Engine as _;
use jit_test_kit::docs;
use jit_test_kit::keys::{self, openssh_pub, vectors};
use ssh_key::certificate::{Builder, CertType};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// The signed body of a document: everything before its signature block.
fn body(doc: &[u8]) -> &[u8] {
    let text = std::str::from_utf8(doc).unwrap();
    let at = text.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    &doc[..at]
}

fn main() {
    let corpus = std::env::args()
        .nth(1)
        .expect("usage: fuzz_seeds CORPUS_DIR");
    let corpus = Path::new(&corpus);
    let grant_key = vectors::grant_key();

    // Revocation lists, exactly as RevocationList::sign writes them (and their bodies).
    let (parse, bodies) = (
        corpus.join("revocation_parse"),
        corpus.join("revocation_signed_body"),
    );
    for (name, list) in [
        ("empty", docs::revocations(1, vectors::NOW)),
        (
            "one-grant",
            docs::revocations(2, vectors::NOW).grants(&["g-0001"]),
        ),
        (
            "grants-and-serials",
            docs::revocations(7, vectors::NOW - 10_000)
                .grants(&["g-0001", "g-0002", "r.x_y-z"])
                .serials(&[7, u64::MAX]),
        ),
    ] {
        let doc = list.sign(&grant_key);
        write(&parse, name, &doc);
        write(&bodies, name, body(&doc));
    }
    // Not canonical (compact JSON): parses, verifies only if the fuzz invariant is wrong.
    let mut compact = docs::revocations(3, 1).claims();
    compact.key_id = jit_common::keys::fingerprint(grant_key.public_key());
    let mut text = serde_json::to_vec(&compact).unwrap();
    text.push(b'\n');
    write(&bodies, "compact", &text);

    // host.toml: the shape `jit-ca host-config` writes, plus variants.
    let gk = vectors::GRANT_KEY_PUB.trim();
    let ck = openssh_pub(&keys::user_ca());
    let toml = corpus.join("host_toml");
    write(
        &toml,
        "full",
        format!(
            "server = \"http://ca.example.com:8443\"\nmode = \"enforce\"\nservices = [\"sudo\", \"sudo-i\"]\n\
             clock_skew_secs = 60\nrevocation_max_age_secs = 43200\nstate_dir = \"/var/lib/jit\"\n\
             grant_writer = \"jit\"\nhostnames = [\"db-1.example.com\"]\nuser_ca_keys = [\"{ck}\"]\n\
             grant_keys = [\"{gk}\"]\nbreak_glass_keys = []\nbreak_glass_max_window_secs = 86400\n"
        )
        .as_bytes(),
    );
    write(
        &toml,
        "minimal",
        format!("grant_keys = [\"{gk}\"]\n").as_bytes(),
    );
    write(
        &toml,
        "audit-break-glass",
        format!(
            "mode = \"audit\"\nclock_skew_secs = 3600\nrevocation_max_age_secs = 600\nbreak_glass_keys = [\"{gk}\"]\n"
        )
        .as_bytes(),
    );
    write(
        &toml,
        "unknown-key",
        format!("grant_keys = [\"{gk}\"]\nsurprise = 1\n").as_bytes(),
    );

    // A user and a host certificate signed by the kit's user CA, as the raw wire blob that
    // sshd's %k base64-encodes (and once as text, which must be refused).
    let user = keys::user("alice");
    let cert = |ty: CertType, key_id: &str, principals: &[&str], serial: u64| {
        let mut b = Builder::new(
            [9u8; 16],
            user.public_key().key_data().clone(),
            (vectors::NOW - 300).as_secs(),
            (vectors::NOW + 3600).as_secs(),
        )
        .unwrap();
        b.serial(serial).unwrap();
        b.key_id(key_id).unwrap();
        b.cert_type(ty).unwrap();
        for p in principals {
            b.valid_principal(*p).unwrap();
        }
        b.sign(&keys::user_ca()).unwrap().to_bytes().unwrap()
    };
    let certs = corpus.join("principals_cert");
    let user_cert = cert(CertType::User, "jit:r-1:alice", &["alice", "dbadmin"], 7);
    write(&certs, "user-cert", &user_cert);
    write(
        &certs,
        "host-cert",
        &cert(CertType::Host, "host", &["db-1"], 8),
    );
    let mut as_text = vec![0u8];
    as_text.extend(
        base64::engine::general_purpose::STANDARD
            .encode(&user_cert)
            .as_bytes(),
    );
    as_text.push(b'\n');
    write(&certs, "as-text", &as_text);

    // API requests: OP byte then body: 0 create, 1 deny, 2 revoke, 3 extend, 4 approve,
    // 5 show, 6 list.
    let uk = openssh_pub(&user);
    let api = corpus.join("api_request");
    for (name, op, body) in [
        (
            "create",
            0u8,
            format!(
                "{{\"role\":\"db-admin\",\"duration_secs\":600,\"reason\":\"INC-1\",\"hosts\":[\"db-1\"],\"public_key\":\"{uk}\"}}"
            ),
        ),
        (
            "create-auto",
            0,
            format!(
                "{{\"role\":\"quick\",\"duration_secs\":60,\"reason\":\"\",\"public_key\":\"{uk}\"}}"
            ),
        ),
        ("deny", 1, "{\"reason\":\"no\"}".into()),
        ("revoke", 2, "{\"reason\":\"done\"}".into()),
        ("extend", 3, "{\"duration_secs\":600}".into()),
        ("approve", 4, "{}".into()),
        ("show", 5, "r-0000".into()),
        ("list", 6, "filter=pending".into()),
    ] {
        let mut bytes = vec![op];
        bytes.extend(body.as_bytes());
        write(&api, name, &bytes);
    }
    println!("kit seeds written under {}", corpus.display());
}
