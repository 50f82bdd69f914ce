//! The active grants behind the host documents, held **without their documents**: per grant
//! its serial, end, encoded size and interned (lower-cased) host selectors. It serves two
//! things:
//!
//! * the **budget** of a host's document ([`MAX_HOST_DOCUMENT`]): grants are grouped by
//!   their selector set, each group keeps the sum of its sizes, and the groups are indexed
//!   by literal host name (a map) and by glob (a short list). An issuance finds the groups
//!   its selectors may reach through that index (no walk over every group, no allocation in
//!   the overlap check) and is refused if a host could get a document over the limit;
//! * the **serials of one host's grants** on a host-document cache miss; the documents are
//!   then read from the database by serial (`StoreOps::grant_docs_by_serials`).
//!
//! Memory: about 40 bytes per active grant plus the groups (distinct selector sets),
//! whatever the size of the grants (the grant id is not kept: it ends with the serial).
//! An entry ends lazily by its end (`not_after`). The index is updated in O(1) per issuance
//! (a reservation before the commit, kept by `Ca::after_issuance`), rebuilt from lean
//! database rows only after a revocation, an expiry, an operator or a peer change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jit_common::host::matches;

use super::host_docs::{DOCUMENT_OVERHEAD, OverBudget};

/// A grant reserved or committed by an issuance but not yet seen in the database is kept
/// this long when the index is rebuilt (its transaction may still be committing, or the
/// rebuild's read started before it committed).
pub(super) const RESERVATION_GRACE: Duration = Duration::from_secs(120);

/// The serial a grant id ends with (`<request id>.<serial>`, `Ca::sign_grant`).
pub fn serial_of_grant_id(id: &str) -> Option<u64> {
    id.rsplit_once('.')?.1.parse().ok()
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '!'])
}

/// [`super::host_docs::may_overlap`] for selectors already lower-cased: no allocation.
pub fn overlap_lower(a: &str, b: &str) -> bool {
    match (is_glob(a), is_glob(b)) {
        (false, false) => a == b,
        (false, true) => matches(b, a),
        (true, false) => matches(a, b),
        (true, true) => {
            let prefix = |s: &'_ str| -> usize { s.find(['*', '?', '[']).unwrap_or(s.len()) };
            let suffix = |s: &'_ str| -> usize { s.rfind(['*', '?', ']']).map_or(0, |i| i + 1) };
            let (pa, pb) = (&a[..prefix(a)], &b[..prefix(b)]);
            let (sa, sb) = (&a[suffix(a)..], &b[suffix(b)..]);
            (pa.starts_with(pb) || pb.starts_with(pa)) && (sa.ends_with(sb) || sb.ends_with(sa))
        }
    }
}

/// Lower-cased, sorted, deduplicated selectors: the key of a group.
pub fn key_of(hosts: &[String]) -> Box<[Box<str>]> {
    let mut k: Vec<Box<str>> = hosts
        .iter()
        .map(|h| h.to_ascii_lowercase().into_boxed_str())
        .collect();
    k.sort();
    k.dedup();
    k.into_boxed_slice()
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    not_after: u64,
    group: u32,
    /// Encoded size ([`super::host_docs::encoded_len`]); 0 while not known yet (rebuild).
    bytes: u32,
    /// Seconds since the index's base + 1 when an issuance last reserved or committed it
    /// here; 0 when it was read from the database.
    touched: u32,
}

#[derive(Debug)]
struct Group {
    selectors: Box<[Box<str>]>,
    members: Vec<u64>,
    /// Sum of the members' bytes.
    total: u64,
    /// Earliest end among the members (when to prune next).
    first_end: u64,
    /// The check that last counted this group (counted once per check).
    stamp: u64,
}

/// What an issuance's commit changes in the host-document cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Reach<'a> {
    /// The documents of these (lower-cased) host names.
    Names(&'a [Box<str>]),
    /// Any host's (a glob selector).
    Any,
}

/// See the module docs.
#[derive(Debug)]
pub struct GrantIndex {
    base: Instant,
    grants: HashMap<u64, Grant>,
    groups: Vec<Group>,
    group_of: HashMap<Box<[Box<str>]>, u32>,
    /// Literal selector -> groups holding it.
    literal: HashMap<Box<str>, Vec<u32>>,
    /// Glob selector and its group.
    globs: Vec<(Box<str>, u32)>,
    stamp: u64,
    scratch: Vec<u32>,
}

impl Default for GrantIndex {
    fn default() -> Self {
        Self::with_base(Instant::now())
    }
}

/// What an index knows of a grant it holds (see [`GrantIndex::known`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// Its encoded size; 0 when not known.
    pub bytes: u64,
    /// When an issuance last touched it (0: never, loaded from the database).
    touched: u32,
}

impl GrantIndex {
    fn with_base(base: Instant) -> Self {
        Self {
            base,
            grants: HashMap::new(),
            groups: Vec::new(),
            group_of: HashMap::new(),
            literal: HashMap::new(),
            globs: Vec::new(),
            stamp: 0,
            scratch: Vec::new(),
        }
    }

    /// An empty index to rebuild into (same time base).
    pub fn empty_like(&self) -> Self {
        Self::with_base(self.base)
    }

    fn tick(&self) -> u32 {
        u32::try_from(self.base.elapsed().as_secs())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    #[cfg(test)]
    /// Grants indexed (reserved ones included, ended ones until pruned).
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    #[cfg(test)]
    /// Groups (distinct selector sets).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    #[cfg(test)]
    /// An estimate of the heap bytes the index holds (for tests and the docs).
    pub fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, Grant)>() + 1;
        let sel: usize = self
            .groups
            .iter()
            .map(|g| g.selectors.iter().map(|s| s.len() + 16).sum::<usize>() * 2)
            .sum();
        self.grants.capacity() * slot
            + self
                .groups
                .iter()
                .map(|g| g.members.capacity() * 8 + std::mem::size_of::<Group>())
                .sum::<usize>()
            + sel
            + self.literal.capacity() * 48
            + self.globs.capacity() * 24
    }

    fn group(&mut self, key: Box<[Box<str>]>) -> u32 {
        if let Some(g) = self.group_of.get(&key) {
            return *g;
        }
        let id = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        for s in key.iter() {
            if is_glob(s) {
                self.globs.push((s.clone(), id));
            } else {
                self.literal.entry(s.clone()).or_default().push(id);
            }
        }
        self.groups.push(Group {
            selectors: key.clone(),
            members: Vec::new(),
            total: 0,
            first_end: u64::MAX,
            stamp: 0,
        });
        self.group_of.insert(key, id);
        id
    }

    fn insert(
        &mut self,
        serial: u64,
        key: Box<[Box<str>]>,
        bytes: u64,
        not_after: u64,
        touched: u32,
    ) {
        self.remove(serial);
        let group = self.group(key);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let g = &mut self.groups[group as usize];
        g.members.push(serial);
        g.total += u64::from(bytes);
        g.first_end = g.first_end.min(not_after);
        self.grants.insert(
            serial,
            Grant {
                not_after,
                group,
                bytes,
                touched,
            },
        );
    }

    fn remove(&mut self, serial: u64) -> bool {
        let Some(e) = self.grants.remove(&serial) else {
            return false;
        };
        let g = &mut self.groups[e.group as usize];
        if let Some(p) = g.members.iter().position(|s| *s == serial) {
            g.members.swap_remove(p);
        }
        g.total = g.total.saturating_sub(u64::from(e.bytes));
        true
    }

    /// Bytes of a group's members still active at `now` (pruning only once one has ended).
    fn live_bytes(&mut self, group: u32, now: u64) -> u64 {
        let g = &mut self.groups[group as usize];
        if g.first_end <= now {
            let grants = &mut self.grants;
            g.members.retain(|s| match grants.get(s) {
                Some(e) if e.not_after > now => true,
                _ => {
                    grants.remove(s);
                    false
                }
            });
            g.total = 0;
            g.first_end = u64::MAX;
            for s in &g.members {
                if let Some(e) = grants.get(s) {
                    g.total += u64::from(e.bytes);
                    g.first_end = g.first_end.min(e.not_after);
                }
            }
        }
        g.total
    }

    /// Collects into `scratch` the groups a selector in `key` may reach (each once).
    fn reached(&mut self, key: &[Box<str>]) {
        self.stamp += 1;
        let stamp = self.stamp;
        self.scratch.clear();
        let (groups, scratch) = (&mut self.groups, &mut self.scratch);
        let mut visit = |id: u32| {
            let g = &mut groups[id as usize];
            if g.stamp != stamp {
                g.stamp = stamp;
                scratch.push(id);
            }
        };
        for sel in key {
            if is_glob(sel) {
                for (name, ids) in &self.literal {
                    if matches(sel, name) {
                        ids.iter().for_each(|id| visit(*id));
                    }
                }
                for (glob, id) in &self.globs {
                    if overlap_lower(sel, glob) {
                        visit(*id);
                    }
                }
            } else {
                if let Some(ids) = self.literal.get(sel) {
                    ids.iter().for_each(|id| visit(*id));
                }
                for (glob, id) in &self.globs {
                    if matches(glob, sel) {
                        visit(*id);
                    }
                }
            }
        }
    }

    /// Adds grant `serial` (selectors `hosts`, `bytes` as `encoded_len`, ending
    /// `not_after`) unless a host it reaches could then get a document over `limit` bytes:
    /// counted are every active grant whose selectors may overlap (see
    /// [`super::host_docs::may_overlap`]).
    pub fn reserve_within(
        &mut self,
        serial: u64,
        hosts: &[String],
        bytes: u64,
        not_after: u64,
        now: u64,
        limit: u64,
    ) -> Result<(), OverBudget> {
        let key = key_of(hosts);
        self.reached(&key);
        let mut total = DOCUMENT_OVERHEAD + bytes;
        let reached = std::mem::take(&mut self.scratch);
        for id in &reached {
            total += self.live_bytes(*id, now);
        }
        self.scratch = reached;
        if total > limit {
            return Err(OverBudget { would_be: total });
        }
        let touched = self.tick();
        self.insert(serial, key, bytes, not_after, touched);
        Ok(())
    }

    /// Stops counting these serials (revoked, superseded, or not stored).
    pub fn release(&mut self, serials: impl IntoIterator<Item = u64>) {
        for s in serials {
            self.remove(s);
        }
    }

    /// After `serial`'s issuance committed: marks it fresh (a rebuild whose read started
    /// before keeps it) and returns which host documents it changes, or `None` if the index
    /// does not hold it (then only a rebuild brings it in).
    pub fn committed(&mut self, serial: u64) -> Option<Reach<'_>> {
        let tick = self.tick();
        let e = self.grants.get_mut(&serial)?;
        e.touched = tick;
        let g = &self.groups[e.group as usize];
        Some(if g.selectors.iter().any(|s| is_glob(s)) {
            Reach::Any
        } else {
            Reach::Names(&g.selectors)
        })
    }

    /// The serials of the grants active at `now` whose selectors match `host` (lower-cased),
    /// ascending, into `out`.
    pub fn serials_for(&mut self, host: &str, now: u64, out: &mut Vec<u64>) {
        self.stamp += 1;
        let stamp = self.stamp;
        let mut visit = |groups: &mut Vec<Group>, id: u32| {
            let g = &mut groups[id as usize];
            if g.stamp != stamp {
                g.stamp = stamp;
                out.extend(
                    g.members
                        .iter()
                        .filter(|s| self.grants.get(s).is_some_and(|e| e.not_after > now)),
                );
            }
        };
        if let Some(ids) = self.literal.get(host) {
            for id in ids {
                visit(&mut self.groups, *id);
            }
        }
        for (glob, id) in &self.globs {
            if matches(glob, host) {
                visit(&mut self.groups, *id);
            }
        }
        out.sort_unstable();
    }

    /// Adds a grant read from the database; `bytes` 0 when not known yet (see
    /// [`GrantIndex::set_bytes`]).
    #[cfg(test)]
    pub fn insert_loaded(&mut self, serial: u64, hosts: &[String], not_after: u64, bytes: u64) {
        self.insert(serial, key_of(hosts), bytes, not_after, 0);
    }

    /// Adds a grant read from the database with what `known` (from the index being
    /// replaced, [`GrantIndex::known`]) says of it: its size and when an issuance last
    /// touched it. Carrying the tick matters when two rebuilds overlap: the one that
    /// finishes last keeps, by [`GrantIndex::keep_recent`], a grant committed during its
    /// read only if the index it replaces still says the grant was touched.
    pub fn insert_loaded_known(
        &mut self,
        serial: u64,
        hosts: &[String],
        not_after: u64,
        known: Known,
    ) {
        self.insert(serial, key_of(hosts), known.bytes, not_after, known.touched);
    }

    /// The size of a grant this index holds (0: unknown).
    #[cfg(test)]
    pub fn bytes_of(&self, serial: u64) -> u64 {
        self.grants.get(&serial).map_or(0, |e| u64::from(e.bytes))
    }

    /// The size and issuance tick of a grant this index holds (zeros: not held).
    pub fn known(&self, serial: u64) -> Known {
        self.grants
            .get(&serial)
            .map_or(Known::default(), |e| Known {
                bytes: u64::from(e.bytes),
                touched: e.touched,
            })
    }

    /// Sets the size of a grant loaded with size 0.
    pub fn set_bytes(&mut self, serial: u64, bytes: u64) {
        if let Some(e) = self.grants.get_mut(&serial) {
            let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
            let g = &mut self.groups[e.group as usize];
            g.total = g.total - u64::from(e.bytes) + u64::from(bytes);
            e.bytes = bytes;
        }
    }

    /// Drops the grants whose size is still unknown (their document was not found: revoked
    /// or ended since the lean read).
    pub fn drop_unknown(&mut self, serials: &[u64]) {
        for s in serials {
            if self.grants.get(s).is_some_and(|e| e.bytes == 0) {
                self.remove(*s);
            }
        }
    }

    /// Keeps, from `old`, the grants an issuance touched since `read_start` -
    /// [`RESERVATION_GRACE`] that the database read did not return (not committed yet, or
    /// committed after the read started).
    pub fn keep_recent(&mut self, old: &Self, read_start: Instant) {
        for (serial, e) in &old.grants {
            if e.touched == 0 || self.grants.contains_key(serial) {
                continue;
            }
            let at = old.base + Duration::from_secs(u64::from(e.touched));
            if at + RESERVATION_GRACE >= read_start {
                let key = old.groups[e.group as usize].selectors.clone();
                self.insert(*serial, key, u64::from(e.bytes), e.not_after, e.touched);
            }
        }
    }
}

#[cfg(test)]
mod tests;
