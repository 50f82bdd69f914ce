//! Micro benchmarks of the shared formats and of certificate signing with ssh-key (the
//! in-process ceiling of issuance). `cargo bench -p jit-common --bench micro`; the full
//! suite with the real service and PAM is `bench/run.sh` (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jit_common::{Approval, Grant, KeyRing, UnixTime, UnverifiedGrant};
use rand_core::OsRng;
use ssh_key::certificate::{Builder, CertType, Certificate};
use ssh_key::{Algorithm, HashAlg, PrivateKey};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn grant(id: &str) -> Grant {
    Grant {
        version: jit_common::grant::VERSION,
        id: id.into(),
        user: "alice".into(),
        role: "db-admin".into(),
        hosts: vec!["db-*".into(), "web-[0-9]".into()],
        sudo: true,
        not_before: NOW - 60,
        not_after: NOW + 3600,
        issued_at: NOW - 60,
        request_id: id.into(),
        reason: "INC-1234: rotate the replica's WAL archive".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: NOW - 60,
        }],
        ticket: None,
        cert_serial: Some(42),
        session_bound: false,
        key_id: String::new(),
    }
}

fn key() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
}

fn grants(c: &mut Criterion) {
    let gk = key();
    let mut ring = KeyRing::new();
    ring.push(gk.public_key().clone());
    let doc = grant("g-1").sign(&gk).unwrap();

    let mut g = c.benchmark_group("grant");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter(|| black_box(grant("g-1")).sign(&gk).unwrap())
    });
    g.bench_function("parse", |b| {
        b.iter(|| UnverifiedGrant::parse(black_box(&doc)).unwrap())
    });
    let parsed = UnverifiedGrant::parse(&doc).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| black_box(parsed.clone()).verify_at(NOW, &ring, 60).unwrap())
    });
    g.bench_function("parse_verify_covers", |b| {
        b.iter(|| {
            let v = UnverifiedGrant::parse(black_box(&doc))
                .unwrap()
                .verify_at(NOW, &ring, 60)
                .unwrap();
            v.covers("alice", &["db-7"], NOW).unwrap();
        })
    });
    g.finish();
}

/// A user certificate as jit-ca issues one: principals, the role's extensions and the
/// signed grant embedded as the `jit-grant@jit` extension.
fn build_cert(ca: &PrivateKey, user_key: &ssh_key::PublicKey, grant_doc: &str) -> Certificate {
    let mut b = Builder::new_with_random_nonce(
        &mut OsRng,
        user_key,
        (NOW - 60).as_secs(),
        (NOW + 3600).as_secs(),
    )
    .unwrap();
    b.serial(42).unwrap();
    b.key_id("jit:r-123:alice").unwrap();
    b.cert_type(CertType::User).unwrap();
    b.valid_principal("alice").unwrap();
    b.valid_principal("dbadmin").unwrap();
    b.extension("permit-pty", "").unwrap();
    b.extension(jit_common::grant::CERT_EXTENSION, grant_doc)
        .unwrap();
    b.sign(ca).unwrap()
}

fn certificates(c: &mut Criterion) {
    let ca = key();
    let user = key();
    let gk = key();
    let grant_doc = String::from_utf8(grant("g-1").sign(&gk).unwrap()).unwrap();
    let cert = build_cert(&ca, user.public_key(), &grant_doc);
    let line = cert.to_openssh().unwrap();
    let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);

    let mut g = c.benchmark_group("certificate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("build_sign_encode", |b| {
        b.iter(|| {
            build_cert(&ca, user.public_key(), black_box(&grant_doc))
                .to_openssh()
                .unwrap()
        })
    });
    g.bench_function("parse_validate", |b| {
        b.iter(|| {
            Certificate::from_openssh(black_box(&line))
                .unwrap()
                .validate_at(NOW.as_secs(), [&ca_fp])
                .unwrap()
        })
    });
    g.bench_function("sshsig_sign", |b| {
        b.iter(|| {
            user.sign(
                "jit-api@jit",
                HashAlg::Sha512,
                black_box(b"jit-api-v1\nPOST\n/v1/requests\n"),
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, grants, certificates);
criterion_main!(benches);
