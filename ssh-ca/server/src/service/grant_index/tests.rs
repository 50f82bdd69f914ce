#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::*;
use crate::service::host_docs::{Budget, MAX_HOST_DOCUMENT, may_overlap};

const SELECTORS: &[&str] = &[
    "db-1", "db-2", "DB-1", "web-1", "x.a.com", "db-*", "d*", "*", "web-?", "*-1", "db-[12]",
    "*.a.com", "*.b.com", "DB-*", "w*b-1",
];

#[derive(Debug, Clone)]
enum Op {
    Reserve {
        hosts: Vec<usize>,
        bytes: u64,
        not_after: u64,
    },
    Release(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            proptest::collection::vec(0..SELECTORS.len(), 1..4),
            1u64..4000,
            1u64..60,
        )
            .prop_map(|(hosts, bytes, not_after)| Op::Reserve { hosts, bytes, not_after }),
        1 => (0usize..64).prop_map(Op::Release),
        1 => (0u64..10).prop_map(Op::Advance),
    ]
}

proptest! {
    /// The indexed check (literal map + glob list, sums per group) gives the same answers,
    /// with the same `would_be`, as the former scan over every group on random selectors,
    /// releases and expiries.
    #[test]
    fn index_agrees_with_the_scan(ops in proptest::collection::vec(op(), 1..120)) {
        let limit = 12_000;
        let mut scan = Budget::default();
        let mut index = GrantIndex::default();
        let mut now = 0;
        let mut serial = 0u64;
        for op in ops {
            match op {
                Op::Reserve { hosts, bytes, not_after } => {
                    serial += 1;
                    let hosts: Vec<String> = hosts.iter().map(|i| SELECTORS[*i].to_string()).collect();
                    let id = format!("r-{serial}.{serial}");
                    let a = scan.reserve_within(&id, &hosts, bytes, now + not_after, now, limit);
                    let b = index.reserve_within(serial, &hosts, bytes, now + not_after, now, limit);
                    prop_assert_eq!(a, b, "{:?}", hosts);
                }
                Op::Release(i) => {
                    let s = (i as u64 % serial.max(1)) + 1;
                    let id = format!("r-{s}.{s}");
                    scan.release([id.as_str()]);
                    index.release(serial_of_grant_id(&id));
                }
                Op::Advance(d) => now += d,
            }
        }
    }

    /// `overlap_lower` is `may_overlap` on lower-cased selectors.
    #[test]
    fn overlap_lower_is_may_overlap(a in 0..SELECTORS.len(), b in 0..SELECTORS.len()) {
        let (x, y) = (SELECTORS[a], SELECTORS[b]);
        prop_assert_eq!(
            may_overlap(x, y),
            overlap_lower(&x.to_ascii_lowercase(), &y.to_ascii_lowercase())
        );
    }

    /// A host's serials are those of the active grants with a selector matching it.
    #[test]
    fn serials_for_a_host_are_the_matching_grants(
        grants in proptest::collection::vec((proptest::collection::vec(0..SELECTORS.len(), 1..3), 1u64..20), 1..40),
        host in prop_oneof![Just("db-1"), Just("web-1"), Just("x.a.com"), Just("db-3"), Just("zz")],
        now in 0u64..20,
    ) {
        let mut index = GrantIndex::default();
        let mut want = Vec::new();
        for (i, (sel, end)) in grants.iter().enumerate() {
            let hosts: Vec<String> = sel.iter().map(|i| SELECTORS[*i].to_string()).collect();
            let serial = i as u64 + 1;
            index.insert_loaded(serial, &hosts, *end, 10);
            if *end > now && hosts.iter().any(|h| jit_common::host::matches(h, host)) {
                want.push(serial);
            }
        }
        let mut got = Vec::new();
        index.serials_for(host, now, &mut got);
        prop_assert_eq!(got, want);
    }
}

fn hosts(i: u64) -> Vec<String> {
    vec![format!("load-{}", i % 1000)]
}

/// The index holds no grant documents: its memory does not depend on their size, and stays
/// under 64 bytes per grant at 100,000 active grants (the grant snapshot it replaces held
/// every document, about 1 KiB each).
#[test]
fn index_holds_no_documents_and_is_bounded() {
    let fill = |bytes: u64| {
        let mut index = GrantIndex::default();
        for s in 1..=100_000u64 {
            index
                .reserve_within(s, &hosts(s), bytes, 1000, 0, MAX_HOST_DOCUMENT)
                .unwrap();
        }
        index
    };
    let small = fill(100);
    let large = fill(60_000 / 100);
    assert_eq!(small.len(), 100_000);
    assert_eq!(small.groups(), 1000);
    assert_eq!(small.heap_bytes(), large.heap_bytes());
    let per_grant = small.heap_bytes() / small.len();
    assert!(per_grant <= 64, "{per_grant} bytes per grant");
}

/// Ended grants leave the index when their group is next counted.
#[test]
fn ended_grants_are_pruned() {
    let mut index = GrantIndex::default();
    let db = vec!["db-1".to_string()];
    let big = MAX_HOST_DOCUMENT / 3;
    index
        .reserve_within(1, &db, big, 100, 0, MAX_HOST_DOCUMENT)
        .unwrap();
    index
        .reserve_within(2, &db, big, 100, 0, MAX_HOST_DOCUMENT)
        .unwrap();
    assert!(
        index
            .reserve_within(3, &db, big, 200, 0, MAX_HOST_DOCUMENT)
            .is_err()
    );
    index
        .reserve_within(3, &db, big, 200, 100, MAX_HOST_DOCUMENT)
        .unwrap();
    assert_eq!(index.len(), 1);
}

/// A rebuild keeps what an issuance touched recently and the read did not return; sizes
/// still unknown after the documents were read drop out.
#[test]
fn rebuild_keeps_recent_reservations_only() {
    let mut old = GrantIndex::default();
    let db = vec!["db-1".to_string()];
    old.reserve_within(7, &db, 100, 1000, 0, MAX_HOST_DOCUMENT)
        .unwrap();
    old.insert_loaded(8, &db, 1000, 50);
    let mut fresh = old.empty_like();
    fresh.insert_loaded(9, &db, 1000, 0);
    fresh.drop_unknown(&[9]);
    fresh.keep_recent(&old, Instant::now());
    assert_eq!(
        fresh.len(),
        1,
        "7 kept (recent), 8 dropped (not in the read), 9 unknown"
    );
    assert_eq!(fresh.bytes_of(7), 100);
    let later = Instant::now() + RESERVATION_GRACE + Duration::from_secs(2);
    let mut fresh = old.empty_like();
    fresh.keep_recent(&old, later);
    assert_eq!(fresh.len(), 0);
}

/// A committed grant names the host documents it changes.
#[test]
fn committed_reach() {
    let mut index = GrantIndex::default();
    index
        .reserve_within(
            1,
            &["DB-1".into(), "db-2".into()],
            10,
            100,
            0,
            MAX_HOST_DOCUMENT,
        )
        .unwrap();
    index
        .reserve_within(2, &["db-*".into()], 10, 100, 0, MAX_HOST_DOCUMENT)
        .unwrap();
    let names: Vec<Box<str>> = vec!["db-1".into(), "db-2".into()];
    assert_eq!(index.committed(1), Some(Reach::Names(&names)));
    assert_eq!(index.committed(2), Some(Reach::Any));
    assert_eq!(index.committed(3), None);
}

/// Two overlapping rebuilds (a host read's and the sweep's): B read the database after
/// grant G committed, A before; A finishes last and keeps from B what was touched since
/// its read. B must carry G's tick from the index it replaced, or A drops an active grant
/// (found by review: G then vanished from its hosts' documents and from the budget).
#[test]
fn overlapping_rebuilds_keep_a_grant_committed_during_the_first_read() {
    let db = vec!["db-1".to_string()];
    let a_read_start = Instant::now();
    let mut live = GrantIndex::default();
    live.reserve_within(7, &db, 100, 1000, 0, MAX_HOST_DOCUMENT)
        .unwrap();
    assert!(live.committed(7).is_some());
    // B read after the commit: the database returned 7.
    let mut b = live.empty_like();
    b.insert_loaded_known(7, &db, 1000, live.known(7));
    b.keep_recent(&live, Instant::now());
    // A's read started before the commit: the database did not return 7.
    let mut a = live.empty_like();
    a.keep_recent(&b, a_read_start);
    assert_eq!(
        a.bytes_of(7),
        100,
        "the grant committed during A's read is kept"
    );
    assert_eq!(a.len(), 1);
}
