//! The sudo decision (`pam_jit_core::decide::decide`, the pure function pam_jit.so and
//! `jit-host check` share) over N stored grants of the invoking user: N-1 valid grants for
//! other hosts, and the one that covers this host sorted last, so an allow has to look at
//! every file. `cargo bench -p jit-bench --bench decide`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jit_common::UnixTime;
use jit_test_kit::{docs, keys};
use pam_jit_core::config::Config;
use pam_jit_core::decide::{
    BindingEvidence, Caller, Evidence, Facts, NoRecords, Verdict, decide, identify,
};
use pam_jit_core::store::{GrantFile, RevocationFile, UserGrants};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

/// A grant of alice's for `host`, signed by the kit's grant key.
fn grant(id: &str, host: &str) -> Vec<u8> {
    docs::grant(id, "alice", &[host], NOW)
        .reason("benchmark")
        .request_id(id)
        .cert_serial(1)
        .sign(&keys::grant())
}

fn bench(c: &mut Criterion) {
    let key = keys::grant();
    let config = Config::parse(&jit_test_kit::fixtures::host_toml(
        std::path::Path::new("/nonexistent"),
        &[&key],
        &[],
        &["services = [\"sudo\"]"],
    ))
    .unwrap();
    let host_names = vec!["bench-host".to_string()];
    let facts = Facts {
        caller: Caller {
            ruser: Some("alice"),
            uid: 1000,
            ruser_uid: Some(1000),
        },
        service: "sudo",
        host_names: &host_names,
        now: NOW,
        session_id: None,
    };
    let mut g = c.benchmark_group("decide");
    for n in [1usize, 50, 256] {
        let mut files: Vec<GrantFile> = (0..n - 1)
            .map(|i| {
                let id = format!("a-{i:04}");
                GrantFile {
                    name: format!("{id}.grant"),
                    bytes: grant(&id, &format!("other-{i}")),
                }
            })
            .collect();
        files.push(GrantFile {
            name: "z-covering.grant".into(),
            bytes: grant("z-covering", "bench-host"),
        });
        let evidence = Evidence {
            grants: Ok(UserGrants {
                files,
                problems: Vec::new(),
                truncated: false,
            }),
            // A fresh signed list, as `jit-host sync` installs: since issue 11 a host that has
            // no list (never synced) denies every normal grant.
            revocations: RevocationFile::Present(docs::revocations(1, NOW - 60).sign(&key)),
            session: BindingEvidence::NotRead,
        };
        // Cold path: every candidate's signature is verified (no root records).
        let invoker = identify(&config, &facts).unwrap();
        let run = |ev: &Evidence| decide(&config, black_box(&facts), invoker, ev, &NoRecords);
        assert_eq!(run(&evidence).verdict, Verdict::Allow);
        g.bench_with_input(BenchmarkId::from_parameter(n), &evidence, |b, ev| {
            b.iter(|| run(black_box(ev)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
