//! The per-host grants documents (`GET /v1/hosts/{host}/grants`) and their two bounds:
//!
//! * **Size of one document** ([`MAX_HOST_DOCUMENT`], well below `jit-host sync`'s 8 MiB
//!   cap on a grants response): the grant index (`grant_index`) keeps the encoded size of
//!   every active grant by its host selectors, and an issuance whose grant would make the
//!   document of any host it reaches larger than the cap is refused before anything is
//!   stored. (The [`Budget`] here is the former scan over every group, kept for tests as
//!   the reference the index must agree with.)
//! * **Memory of the cache** under anonymous traffic: documents are cached by the *set* of
//!   grants they contain (shared by every host name with that set), bounded by count and
//!   bytes; the name -> set map holds small entries and is bounded by count. A flood of
//!   distinct host names therefore costs at most [`MAX_CACHED_NAMES`] small entries, not a
//!   copy of the document per name.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
#[cfg(test)]
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Largest per-host grants document the CA lets grow, in bytes: half of `jit-host sync`'s
/// `MAX_GRANTS_RESPONSE` (8 MiB, `jit_api::wire`), so a host never refuses its document for
/// its size.
pub const MAX_HOST_DOCUMENT: u64 = 4 * 1024 * 1024;
// The CA never serves a host a document larger than the host accepts.
const _: () = assert!(MAX_HOST_DOCUMENT <= jit_api::wire::MAX_GRANTS_RESPONSE as u64);
/// What a document costs besides its grants: `{"host":"<at most 253 bytes>","grants":[]}`.
pub(super) const DOCUMENT_OVERHEAD: u64 = 32 + jit_common::host::MAX_LEN as u64;
/// Most host names remembered by the cache (each entry is small: the name and a key).
pub const MAX_CACHED_NAMES: usize = 20_000;
/// Most distinct documents (grant sets) cached.
pub const MAX_CACHED_DOCUMENTS: usize = 1024;
/// Most bytes of cached documents (a document is at most [`MAX_HOST_DOCUMENT`], so at least
/// four of the largest stay cached; the CA's memory target is 64 MiB in all).
pub const MAX_CACHED_BYTES: usize = 16 * 1024 * 1024;
#[cfg(test)]
use super::grant_index::RESERVATION_GRACE;

/// The bytes a grant document adds to a host's document (a JSON string and a comma).
pub fn encoded_len(doc: &str) -> u64 {
    // serde_json escapes `"`, `\` and control characters; a grant contains newlines.
    let escaped: usize = doc
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum();
    escaped as u64 + 3
}

/// Whether some host name could match both selectors. Sound (never `false` when a name
/// matches both), not exact: globs are compared by their literal prefix and suffix.
/// (The grant index uses `grant_index::overlap_lower` on selectors lower-cased once.)
#[cfg(test)]
pub fn may_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let is_glob = |s: &str| s.contains(['*', '?', '[', ']', '!']);
    match (is_glob(&a), is_glob(&b)) {
        (false, false) => a == b,
        (false, true) => jit_common::host::matches(&b, &a),
        (true, false) => jit_common::host::matches(&a, &b),
        (true, true) => {
            let prefix = |s: &str| s[..s.find(['*', '?', '[']).unwrap_or(s.len())].to_string();
            let suffix = |s: &str| s[s.rfind(['*', '?', ']']).map_or(0, |i| i + 1)..].to_string();
            let (pa, pb, sa, sb) = (prefix(&a), prefix(&b), suffix(&a), suffix(&b));
            (pa.starts_with(&pb) || pb.starts_with(&pa)) && (sa.ends_with(&sb) || sb.ends_with(&sa))
        }
    }
}

#[cfg(test)]
#[derive(Debug)]
struct Entry {
    bytes: u64,
    not_after: u64,
    /// Set while the grant has not been seen in the database.
    reserved: Option<Instant>,
}

#[cfg(test)]
#[derive(Debug)]
struct Group {
    entries: HashMap<String, Entry>,
    /// Sum of `entries`' bytes.
    total: u64,
    /// Earliest `not_after` among `entries` (when to prune next).
    first_end: u64,
}

#[cfg(test)]
impl Default for Group {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            total: 0,
            first_end: u64::MAX,
        }
    }
}

#[cfg(test)]
impl Group {
    fn insert(&mut self, id: String, e: Entry) {
        self.total += e.bytes;
        self.first_end = self.first_end.min(e.not_after);
        if let Some(old) = self.entries.insert(id, e) {
            self.total -= old.bytes;
        }
    }

    /// Bytes of the entries still active at `now` (pruning only once one has ended).
    fn live_bytes(&mut self, now: u64) -> u64 {
        if self.first_end <= now {
            self.entries.retain(|_, e| e.not_after > now);
            self.total = self.entries.values().map(|e| e.bytes).sum();
            self.first_end = self
                .entries
                .values()
                .map(|e| e.not_after)
                .min()
                .unwrap_or(u64::MAX);
        }
        self.total
    }
}

/// The refusal of [`Budget::reserve_within`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// The size the fullest reached document could have.
    pub would_be: u64,
}

#[cfg(test)]
/// Encoded sizes of the active grants, grouped by their (lower-cased) host selectors.
#[derive(Debug, Default)]
pub struct Budget {
    groups: HashMap<Vec<String>, Group>,
}

#[cfg(test)]
fn key(hosts: &[String]) -> Vec<String> {
    let mut k: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    k.sort();
    k.dedup();
    k
}

#[cfg(test)]
impl Budget {
    /// Adds grant `id` (selectors `hosts`, `bytes` as [`encoded_len`], ending `not_after`)
    /// unless a host it reaches could then get a document over [`MAX_HOST_DOCUMENT`]:
    /// counted are every active grant whose selectors may overlap (see [`may_overlap`]).
    #[cfg(test)]
    pub fn reserve(
        &mut self,
        id: &str,
        hosts: &[String],
        bytes: u64,
        not_after: u64,
        now: u64,
    ) -> Result<(), OverBudget> {
        self.reserve_within(id, hosts, bytes, not_after, now, MAX_HOST_DOCUMENT)
    }

    /// Adds grant `id` (selectors `hosts`, `bytes` as [`encoded_len`], ending `not_after`)
    /// unless a host it reaches could then get a document over `limit` bytes (at most
    /// [`MAX_HOST_DOCUMENT`]; with N replicas each admits up to its share, see
    /// `Ca::host_document_limit`): counted are every active grant whose selectors may
    /// overlap (see [`may_overlap`]).
    pub fn reserve_within(
        &mut self,
        id: &str,
        hosts: &[String],
        bytes: u64,
        not_after: u64,
        now: u64,
        limit: u64,
    ) -> Result<(), OverBudget> {
        let k = key(hosts);
        let mut total = DOCUMENT_OVERHEAD + bytes;
        for (sel, group) in self.groups.iter_mut() {
            if sel.iter().any(|s| k.iter().any(|h| may_overlap(s, h))) {
                total += group.live_bytes(now);
            }
        }
        self.groups.retain(|_, g| !g.entries.is_empty());
        if total > limit {
            return Err(OverBudget { would_be: total });
        }
        self.groups.entry(k).or_default().insert(
            id.to_string(),
            Entry {
                bytes,
                not_after,
                reserved: Some(Instant::now()),
            },
        );
        Ok(())
    }

    /// Stops counting grants `ids` (revoked, superseded by an extension, or signed for an
    /// issuance that was not stored): without this a recent reservation would keep counting
    /// for [`RESERVATION_GRACE`] even across [`Budget::rebuild`], and a requester revoking or
    /// extending in a loop could fill a host's budget for everyone.
    pub fn release<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            for group in self.groups.values_mut() {
                if let Some(e) = group.entries.remove(id) {
                    group.total -= e.bytes;
                }
            }
        }
        self.groups.retain(|_, g| !g.entries.is_empty());
    }

    /// Replaces the budget with the active grants read from the database (`id`, selectors,
    /// document, end) at `read_start`, keeping recent reservations not in it yet.
    pub fn rebuild<'a>(
        &mut self,
        active: impl Iterator<Item = (&'a str, &'a [String], &'a str, u64)>,
        read_start: Instant,
    ) {
        let mut groups: HashMap<Vec<String>, Group> = HashMap::new();
        for (id, hosts, doc, not_after) in active {
            groups.entry(key(hosts)).or_default().insert(
                id.to_string(),
                Entry {
                    bytes: encoded_len(doc),
                    not_after,
                    reserved: None,
                },
            );
        }
        for (k, old) in self.groups.drain() {
            for (id, e) in old.entries {
                let recent = e
                    .reserved
                    .is_some_and(|t| t + RESERVATION_GRACE >= read_start);
                if recent {
                    let g = groups.entry(k.clone()).or_default();
                    if !g.entries.contains_key(&id) {
                        g.insert(id, e);
                    }
                }
            }
        }
        self.groups = groups;
    }
}

/// A cached grants document: the JSON array of the grants of one set, shared by every host
/// name whose document holds exactly these grants.
#[derive(Debug)]
pub struct SetDoc {
    /// `[...]`: the grant documents as JSON strings (shared, never copied per response).
    grants_json: Arc<[u8]>,
    /// Strong ETag, quoted (the body of one URL is a function of the set alone).
    etag: String,
    /// Stale from this time (the first included grant ends).
    until: u64,
}

/// `GET /v1/hosts/{host}/grants`: one host's document, its body built when sent.
#[derive(Debug, Clone)]
pub struct HostDoc {
    host: String,
    set: Arc<SetDoc>,
}

impl HostDoc {
    /// The strong ETag, quoted.
    pub fn etag(&self) -> &str {
        &self.set.etag
    }

    /// The body `{"host":HOST,"grants":[...]}` (a `HostGrantsView`) in three parts: the
    /// head, the grants and the tail. The grants part is the cached set's bytes, shared: a
    /// response a client is slow to read (or never reads) holds a reference to the set, not
    /// a copy of the document.
    pub fn body_parts(&self) -> [Arc<[u8]>; 3] {
        let host = serde_json::to_string(&self.host).unwrap_or_else(|_| "\"\"".into());
        [
            format!("{{\"host\":{host},\"grants\":").into_bytes().into(),
            self.set.grants_json.clone(),
            Arc::from(&b"}"[..]),
        ]
    }

    /// The whole body, copied (for tests).
    pub fn to_vec(&self) -> Vec<u8> {
        self.body_parts().concat()
    }
}

#[derive(Debug)]
struct NameEntry {
    set: [u8; 32],
    until: u64,
}

/// What `HostCache::stats` reports (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Distinct documents (grant sets) cached.
    pub documents: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Host names remembered.
    pub names: usize,
}

/// The cache of host documents. Documents are keyed by their content (the grant set), so
/// they stay valid; a host name's entry is dropped when a grant its document would hold is
/// committed (`forget`, `forget_names`) and is stored only if nothing was dropped since
/// the read began ([`HostCache::epoch`]).
#[derive(Debug, Default)]
pub struct HostCache {
    /// Bumped by every `forget`/`forget_names`.
    epoch: u64,
    names: HashMap<Box<str>, NameEntry>,
    sets: HashMap<[u8; 32], Arc<SetDoc>>,
    /// Insertion order of `sets`, oldest first (for eviction).
    order: VecDeque<[u8; 32]>,
    bytes: usize,
}

impl HostCache {
    /// The current epoch: pass it to [`HostCache::put`] for a document read after this.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Drops the name entry of `host` (a grant for it was committed).
    pub fn forget(&mut self, host: &str) {
        self.epoch += 1;
        self.names.remove(host);
    }

    /// Drops every name entry (a grant for a glob was committed, or the index was rebuilt).
    pub fn forget_names(&mut self) {
        self.epoch += 1;
        self.names = HashMap::new();
    }

    /// The cached document of `host`, if still fresh at `now`.
    pub fn get(&mut self, host: &str, now: u64) -> Option<HostDoc> {
        let e = self.names.get(host)?;
        if now >= e.until {
            return None;
        }
        let set = self.sets.get(&e.set)?.clone();
        Some(HostDoc {
            host: host.to_string(),
            set,
        })
    }

    /// Caches and returns the document of `host` holding `grants` (in order), stale at
    /// `until`. A document with the same grants is reused rather than built again. The name
    /// is remembered only if the cache's epoch is still `epoch` (no grant committed since
    /// the grants were read).
    pub fn put(
        &mut self,
        host: &str,
        epoch: u64,
        grants: &[&str],
        until: u64,
    ) -> serde_json::Result<HostDoc> {
        let mut h = Sha256::new();
        for g in grants {
            h.update((g.len() as u64).to_le_bytes());
            h.update(g.as_bytes());
        }
        let set_key: [u8; 32] = h.finalize().into();
        let set = match self.sets.get(&set_key) {
            Some(s) => s.clone(),
            None => {
                let grants_json: Arc<[u8]> = serde_json::to_vec(grants)?.into();
                let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&grants_json))[..32]);
                let s = Arc::new(SetDoc {
                    grants_json,
                    etag,
                    until,
                });
                self.bytes += s.grants_json.len();
                self.sets.insert(set_key, s.clone());
                self.order.push_back(set_key);
                while (self.sets.len() > MAX_CACHED_DOCUMENTS || self.bytes > MAX_CACHED_BYTES)
                    && self.order.len() > 1
                {
                    if let Some(old) = self.order.pop_front()
                        && let Some(d) = self.sets.remove(&old)
                    {
                        self.bytes -= d.grants_json.len();
                    }
                }
                s
            }
        };
        if epoch == self.epoch {
            if self.names.len() >= MAX_CACHED_NAMES && !self.names.contains_key(host) {
                // Names are cheap to recompute and their documents stay cached: start over.
                self.names = HashMap::new();
            }
            self.names.insert(
                host.into(),
                NameEntry {
                    set: set_key,
                    until: until.min(set.until),
                },
            );
        }
        Ok(HostDoc {
            host: host.to_string(),
            set,
        })
    }

    /// Sizes for `/metrics`.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            documents: self.sets.len(),
            bytes: self.bytes,
            names: self.names.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_sound_for_globs_and_names() {
        for (a, b) in [
            ("db-1", "db-1"),
            ("db-1", "DB-1"),
            ("db-*", "db-1"),
            ("db-*", "d*"),
            ("*", "web-1"),
            ("*.example.com", "db-*"),
            ("db-[0-9]", "db-?"),
            ("*-1", "db-*"),
        ] {
            assert!(may_overlap(a, b), "{a} {b}");
            assert!(may_overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("db-1", "db-2"),
            ("db-*", "web-*"),
            ("web-*", "db-1"),
            ("*.a.com", "*.b.com"),
        ] {
            assert!(!may_overlap(a, b), "{a} {b}");
        }
    }

    /// A replica's share of the budget (two replicas: half each) is what it admits.
    #[test]
    fn budget_within_a_share() {
        let mut b = Budget::default();
        let db = vec!["db-*".to_string()];
        let half = MAX_HOST_DOCUMENT / 2;
        let big = MAX_HOST_DOCUMENT / 5;
        b.reserve_within("a", &db, big, 100, 0, half).unwrap();
        b.reserve_within("b", &db, big, 100, 0, half).unwrap();
        let over = b.reserve_within("c", &db, big, 100, 0, half).unwrap_err();
        assert!(over.would_be > half && over.would_be < MAX_HOST_DOCUMENT);
        b.reserve_within("c", &db, big, 100, 0, MAX_HOST_DOCUMENT)
            .unwrap();
    }

    #[test]
    fn budget_counts_overlapping_grants_only() {
        let mut b = Budget::default();
        let big = MAX_HOST_DOCUMENT / 3;
        let db = vec!["db-*".to_string()];
        let web = vec!["web-*".to_string()];
        b.reserve("a", &db, big, 100, 0).unwrap();
        b.reserve("b", &db, big, 100, 0).unwrap();
        assert!(b.reserve("c", &db, big, 100, 0).is_err());
        assert!(b.reserve("c", &["db-1".into()], big, 100, 0).is_err());
        b.reserve("c", &web, big, 100, 0).unwrap();
        // Expired grants no longer count.
        b.reserve("d", &db, big, 200, 100).unwrap();
        // A rebuild drops what the database no longer has (revoked), keeps fresh reservations.
        let later = Instant::now() + RESERVATION_GRACE + Duration::from_secs(1);
        b.rebuild(std::iter::empty(), later);
        assert!(b.groups.is_empty());
    }

    #[test]
    fn encoded_len_matches_serde() {
        let doc = "{\n  \"reason\": \"a \\\"b\\\"\"\n}\n-----BEGIN-----\n";
        let json = serde_json::to_string(doc).unwrap();
        assert_eq!(encoded_len(doc), json.len() as u64 + 1);
    }

    #[test]
    fn distinct_names_share_documents() {
        let mut c = HostCache::default();
        for i in 0..3 * MAX_CACHED_NAMES {
            let name = format!("h{i}");
            let d = c.put(&name, c.epoch(), &["g1", "g2"], 1000).unwrap();
            assert!(
                d.to_vec()
                    .starts_with(format!("{{\"host\":\"{name}\"").as_bytes())
            );
        }
        let s = c.stats();
        assert_eq!(s.documents, 1);
        assert!(s.names <= MAX_CACHED_NAMES);
        assert!(
            c.get(&format!("h{}", 3 * MAX_CACHED_NAMES - 1), 0)
                .is_some()
        );
        c.forget_names();
        assert!(c.get("h1", 0).is_none(), "forgotten names start empty");
        assert_eq!(c.stats().documents, 1, "documents stay cached");
    }
}
