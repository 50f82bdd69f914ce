//! The audit page's data (issue 16): search of the stored trail, the chain's verification
//! status (verified incrementally, cached in memory), the latest signed checkpoint, and the
//! exports. Only auditors (policy key `auditors`) see any of it: the pages check
//! `Ca::is_auditor` before calling here.
//!
//! **Search.** Filters (user, role, event, time range) run in SQL over a window of at most
//! [`SCAN_WINDOW`] records (a `seq` range of the primary key), newest first, at most `limit`
//! records per page. A page names where the next (older) one starts (`before`), also when it
//! found nothing in its window, so the cost of one page view is bounded by the window however
//! rare the matches are, and no index (no extra write per audit record) is needed.
//!
//! **Chain status.** The first view verifies the whole chain; later views verify only the
//! records appended since the last verified (seq, hash), after checking that this record is
//! still stored with that hash (a cut or rewritten tail shows at once). The whole chain is
//! verified again at most every [`FULL_REVERIFY_SECS`]; the latest signed checkpoint's record
//! is checked on every view, and so is the highest record ever verified (kept across full
//! verifications: a cut tail is found even after a checkpoint was signed over the shortened
//! head). A broken chain names its first bad record and stays broken until the process
//! restarts; its first detection appends an `alert` (kind `checkpoint_failure`).

use serde::{Deserialize, Serialize};

use super::{ApiResult, Ca, lock, refuse};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::{self, Broken, Event, GENESIS, Record};
use crate::error::ApiError;
use crate::store::audit::{AuditFilter, AuditWindow};
use jit_api::wire::ErrorCode as C;

/// Records per page unless asked otherwise.
pub const PAGE_DEFAULT: u32 = 100;
/// At most this many records per page.
pub const PAGE_MAX: u32 = 1000;
/// A page searches at most this many records (a window of `seq`).
pub const SCAN_WINDOW: u64 = 50_000;
/// The chain is verified from its first record again at most this often (seconds).
pub const FULL_REVERIFY_SECS: u64 = 3600;
/// Records read per query while verifying.
const VERIFY_BATCH: u32 = 5_000;
/// Longest user, role or event filter accepted (bytes).
const MAX_FILTER: usize = 256;

/// The query string of the audit page and its exports, as received (empty = not given).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct AuditParams {
    /// A user: the actor, or the owner of the request a record names.
    pub user: Option<String>,
    /// A role: of the request a record names.
    pub role: Option<String>,
    /// An event name (`request`, `approval`, ...).
    pub event: Option<String>,
    /// From this time: RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// To this time (inclusive): RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// Only records before this seq (the next page's cursor).
    pub before: Option<String>,
    /// Records per page (1..=PAGE_MAX).
    pub limit: Option<String>,
}

/// A checked audit query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The filters.
    pub filter: AuditFilter,
    /// Only records below this seq (None: from the newest).
    pub before: Option<u64>,
    /// Records per page.
    pub limit: u32,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn text_filter(what: &str, v: &Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = given(v) else { return Ok(None) };
    jit_common::text::check_line(what, s, MAX_FILTER).map_err(|e| refuse(C::InvalidInput, e))?;
    Ok(Some(s.to_string()))
}

/// A time as the audit filters take it: Unix seconds, or RFC 3339 (`2026-11-23T13:21:32Z`,
/// an offset instead of `Z` also works; fractional seconds are cut to the whole second).
pub fn parse_time(what: &str, s: &str) -> ApiResult<u64> {
    parse_instant(what, s).map(|(t, _)| t)
}

/// `since` as a bound on whole-second record times: a fractional `since` starts at the next
/// whole second (records of the second it falls in are before it).
fn parse_since(s: &str) -> ApiResult<u64> {
    parse_instant("since", s).map(|(t, frac)| t.saturating_add(u64::from(frac)))
}

/// A time: (whole seconds, whether a fraction of a second was cut).
fn parse_instant(what: &str, s: &str) -> ApiResult<(u64, bool)> {
    let s = s.trim();
    let bad = |why: &str| {
        refuse(
            C::InvalidInput,
            format!(
                "{what} {s:?}: {why}; give RFC 3339 (e.g. 2026-11-23T13:21:32Z) or Unix seconds"
            ),
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(|t| (t, false))
            .map_err(|_| bad("too large"));
    }
    let t = s
        .parse::<jiff::Timestamp>()
        .map_err(|_| bad("not a time"))?;
    let secs = u64::try_from(t.as_second()).map_err(|_| bad("before 1970"))?;
    Ok((secs, t.subsec_nanosecond() != 0))
}

impl AuditQuery {
    /// Checks the parameters: each error names the parameter and what it accepts.
    pub fn parse(p: &AuditParams) -> ApiResult<Self> {
        let event = match given(&p.event) {
            None => None,
            Some(e) => match Event::parse(e) {
                Some(ev) => Some(ev.name().to_string()),
                None => {
                    let mut known: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
                    known.sort_unstable();
                    return Err(refuse(
                        C::InvalidInput,
                        format!(
                            "event {:?} is not an audit event; one of: {}",
                            e.chars().take(64).collect::<String>(),
                            known.join(", ")
                        ),
                    ));
                }
            },
        };
        let since = given(&p.since).map(parse_since).transpose()?;
        let until = given(&p.until)
            .map(|s| parse_time("until", s))
            .transpose()?;
        if let (Some(a), Some(b)) = (since, until)
            && a > b
        {
            return Err(refuse(
                C::InvalidInput,
                "since is after until: nothing can match; swap them",
            ));
        }
        let before = match given(&p.before) {
            None => None,
            Some(b) => Some(b.parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(|| {
                refuse(
                    C::InvalidInput,
                    format!("before {b:?} must be a record number (1 or more)"),
                )
            })?),
        };
        let limit = match given(&p.limit) {
            None => PAGE_DEFAULT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| {
                    refuse(
                        C::InvalidInput,
                        format!("limit {l:?} must be a number from 1 to {PAGE_MAX}"),
                    )
                })?,
        };
        Ok(Self {
            filter: AuditFilter {
                user: text_filter("user", &p.user)?,
                role: text_filter("role", &p.role)?,
                event,
                since,
                until,
            },
            before,
            limit,
        })
    }
}

/// One page of an audit search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The matching records, newest first.
    pub records: Vec<Record>,
    /// The records searched: `searched.0 ..= searched.1` (None: the trail is empty or the
    /// cursor is past its start).
    pub searched: Option<(u64, u64)>,
    /// Where the next (older) page starts (its `before`); None: this page reached record 1.
    pub next_before: Option<u64>,
}

/// The chain's verification status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// Intact: every record up to `verified` was checked and the checkpoint's record matches.
    pub intact: bool,
    /// The last record verified (seq): the head when intact.
    pub verified: u64,
    /// The head's hash when intact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The first bad record, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_record: Option<u64>,
    /// What is wrong, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When the whole chain was last verified from record 1 (Unix seconds).
    pub full_check_at: u64,
}

/// What the service remembers of the chain between page views.
#[derive(Debug, Default)]
pub(super) struct ChainCache {
    /// The last verified record (seq, hash).
    verified: Option<(u64, String)>,
    /// The highest record ever verified (seq, hash), kept across full verifications: it must
    /// stay stored with that hash (a cut or rewritten tail is found even after a new
    /// checkpoint was signed over the shortened head).
    mark: Option<(u64, String)>,
    /// The first problem found (its record, what), kept until the process restarts.
    broken: Option<(Option<u64>, String)>,
    /// When the chain was last verified from record 1.
    full_at: Option<u64>,
}

fn bad_seq(b: &Broken) -> u64 {
    match *b {
        Broken::Edited { seq } | Broken::Unlinked { seq } => seq,
        Broken::Gap { expected, .. } => expected,
    }
}

impl Ca {
    /// One page of the audit search, newest first (see the module docs for the window).
    pub fn audit_search(&self, q: &AuditQuery) -> ApiResult<AuditPage> {
        let head = self.read_audit(|c| c.audit_head())?.map_or(0, |h| h.0);
        let top = q.before.map_or(head + 1, |b| b.min(head + 1));
        if top <= 1 {
            return Ok(AuditPage {
                records: Vec::new(),
                searched: None,
                next_before: None,
            });
        }
        let floor = top.saturating_sub(SCAN_WINDOW).max(1);
        let window = AuditWindow {
            before: top,
            floor,
            limit: q.limit,
        };
        let records = self.read_audit(|c| c.audit_search(&q.filter, &window))?;
        let full = records.len() >= q.limit as usize;
        let (searched, next_before) = match records.last() {
            // A full page: the next starts below its last record (not all of the window
            // may have been searched).
            Some(last) if full => (Some((last.seq, top - 1)), Some(last.seq).filter(|&s| s > 1)),
            _ => (Some((floor, top - 1)), Some(floor).filter(|&f| f > 1)),
        };
        Ok(AuditPage {
            records,
            searched,
            next_before,
        })
    }

    /// Streams every record matching `q`'s filters from `q.before` (or the newest) down to
    /// record 1, newest first, one window at a time: `emit` gets each record in turn and
    /// returns false to stop (the client went away). Returns how many were emitted. The
    /// page size does not apply; memory stays bounded by one window's matches of at most
    /// [`PAGE_MAX`] records.
    pub fn audit_export(
        &self,
        q: &AuditQuery,
        mut emit: impl FnMut(&Record) -> bool,
    ) -> ApiResult<u64> {
        let mut q = AuditQuery {
            limit: PAGE_MAX,
            ..q.clone()
        };
        let mut n = 0u64;
        loop {
            let page = self.audit_search(&q)?;
            for r in &page.records {
                if !emit(r) {
                    return Ok(n);
                }
                n += 1;
            }
            match page.next_before {
                Some(b) => q.before = Some(b),
                None => return Ok(n),
            }
        }
    }

    /// The latest signed audit checkpoint's claims, if one was signed.
    pub fn audit_checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint().map(|c| c.1.clone())
    }

    /// The chain's verification status, verifying only what was appended since the last
    /// view (see the module docs).
    pub fn audit_chain_status(&self) -> ApiResult<ChainStatus> {
        let now = self.now();
        let (status, found) = self.chain_status_at(now)?;
        // The first detection is an alert (recorded, notified; outlives the process), raised
        // after the cache's lock is released. The trail may itself be the broken thing:
        // appending to it is still right (the record is chained after whatever is stored).
        if let Some(problem) = found {
            self.alert_chain_broken(now, &problem);
        }
        Ok(status)
    }

    /// [`Ca::audit_chain_status`] at `now`, and the problem when this view found it first.
    fn chain_status_at(&self, now: u64) -> ApiResult<(ChainStatus, Option<String>)> {
        let mut cache = lock(&self.audit_chain);
        // A broken chain stays broken (until a restart): never verified again, never reset.
        if cache.broken.is_none()
            && cache
                .full_at
                .is_none_or(|t| now.saturating_sub(t) >= FULL_REVERIFY_SECS || now < t)
        {
            *cache = ChainCache {
                full_at: Some(now),
                mark: cache.mark.take(),
                ..ChainCache::default()
            };
        }
        let was_broken = cache.broken.is_some();
        // A problem names its record and stays; a failed read (no record named) is an
        // error of this view only, never cached as a broken chain.
        let keep = |r: Result<(), (Option<u64>, String)>, cache: &mut ChainCache| match r {
            Ok(()) => Ok(()),
            Err((None, why)) => Err(ApiError::internal(why)),
            Err(problem) => {
                cache.broken = Some(problem);
                Ok(())
            }
        };
        if cache.broken.is_none() {
            let r = self.verify_increment(&mut cache);
            keep(r, &mut cache)?;
        }
        if cache.broken.is_none()
            && let Some(cp) = self.checkpoint()
        {
            let r = self.check_checkpoint(&cp.1);
            keep(r, &mut cache)?;
        }
        if cache.broken.is_none() {
            let r = self.check_mark(&mut cache);
            keep(r, &mut cache)?;
        }
        let full_check_at = cache.full_at.unwrap_or(now);
        let verified = cache.verified.as_ref().map_or(0, |v| v.0);
        let found = match &cache.broken {
            Some((bad, problem)) if !was_broken => Some(match bad {
                Some(b) => format!("first bad record {b}: {problem}"),
                None => problem.clone(),
            }),
            _ => None,
        };
        let status = match &cache.broken {
            None => ChainStatus {
                intact: true,
                verified,
                head: cache.verified.as_ref().map(|v| v.1.clone()),
                bad_record: None,
                problem: None,
                full_check_at,
            },
            Some((bad, problem)) => ChainStatus {
                intact: false,
                verified,
                head: None,
                bad_record: *bad,
                problem: Some(problem.clone()),
                full_check_at,
            },
        };
        Ok((status, found))
    }

    /// The highest record ever verified must still be stored with its hash; a verification
    /// that reached past it moves the mark up.
    fn check_mark(&self, cache: &mut ChainCache) -> Result<(), (Option<u64>, String)> {
        if let Some((seq, hash)) = cache.mark.clone()
            && cache.verified.as_ref() != cache.mark.as_ref()
        {
            let stored = self
                .read_audit(|c| c.audit_record(seq))
                .map_err(|e| (None, format!("the trail could not be read: {e}")))?;
            match stored {
                None => {
                    return Err((
                        Some(seq),
                        format!(
                            "record {seq}, verified earlier, is missing: records were deleted or the trail truncated"
                        ),
                    ));
                }
                Some(r) if r.hash != hash => {
                    return Err((
                        Some(seq),
                        format!(
                            "record {seq} changed since it was verified: the trail was rewritten"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if cache.verified.as_ref().map(|v| v.0) >= cache.mark.as_ref().map(|m| m.0) {
            cache.mark = cache.verified.clone();
        }
        Ok(())
    }

    /// Verifies the records after the cached head; Err names the first bad record.
    fn verify_increment(&self, cache: &mut ChainCache) -> Result<(), (Option<u64>, String)> {
        let internal = |e: ApiError| (None, format!("the trail could not be read: {e}"));
        if let Some((seq, hash)) = cache.verified.clone() {
            let stored = self
                .read_audit(|c| c.audit_record(seq))
                .map_err(|e| internal(e.into()))?;
            match stored {
                None => {
                    return Err((
                        Some(seq),
                        format!(
                            "record {seq}, verified earlier, is missing: records were deleted or the trail truncated"
                        ),
                    ));
                }
                Some(r) if r.hash != hash => {
                    return Err((
                        Some(seq),
                        format!(
                            "record {seq} changed since it was verified: the trail was rewritten"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        loop {
            let (seq, hash) = cache
                .verified
                .clone()
                .unwrap_or_else(|| (0, GENESIS.to_string()));
            let batch = self
                .read_audit(|c| c.audit_after(seq, VERIFY_BATCH))
                .map_err(|e| internal(e.into()))?;
            if batch.is_empty() {
                return Ok(());
            }
            match audit::verify_from(seq, &hash, batch) {
                Ok(v) => cache.verified = Some(v),
                Err(b) => return Err((Some(bad_seq(&b)), b.to_string())),
            }
        }
    }

    /// The record a signed checkpoint names must be stored with its hash.
    fn check_checkpoint(&self, cp: &Checkpoint) -> Result<(), (Option<u64>, String)> {
        let stored = self
            .read_audit(|c| c.audit_record(cp.seq))
            .map_err(|e| (None, format!("the trail could not be read: {e}")))?;
        let signed = jit_common::time::format_utc(cp.time);
        match stored {
            None => Err((
                Some(cp.seq),
                format!(
                    "record {} named by the signed checkpoint (signed {signed}) is missing: the trail was truncated",
                    cp.seq
                ),
            )),
            Some(r) if r.hash != cp.hash => Err((
                Some(cp.seq),
                format!(
                    "record {} does not match the signed checkpoint (signed {signed}): the trail was rewritten at or before it",
                    cp.seq
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(f: impl FnOnce(&mut AuditParams)) -> AuditParams {
        let mut p = AuditParams::default();
        f(&mut p);
        p
    }

    #[test]
    fn empty_parameters_are_no_filter() {
        let q = AuditQuery::parse(&p(|p| {
            p.user = Some(" ".into());
            p.event = Some(String::new());
        }))
        .unwrap();
        assert_eq!(q.filter, AuditFilter::default());
        assert_eq!((q.before, q.limit), (None, PAGE_DEFAULT));
    }

    #[test]
    fn times_are_rfc_3339_or_unix_seconds() {
        assert_eq!(parse_time("since", "1795435200").unwrap(), 1_795_435_200);
        assert_eq!(
            parse_time("since", "2026-11-23T12:00:00Z").unwrap(),
            1_795_435_200
        );
        assert_eq!(
            parse_time("since", "2026-11-23T13:00:00+01:00").unwrap(),
            1_795_435_200
        );
        for bad in ["yesterday", "2026-11-23", "-5", "1969-12-31T00:00:00Z", ""] {
            let e = parse_time("since", bad).unwrap_err();
            assert!(e.message.contains("RFC 3339"), "{bad}: {}", e.message);
        }
        // Records carry whole seconds: a fractional `since` starts at the next whole second,
        // a fractional `until` ends at the whole second before it.
        let q = AuditQuery::parse(&p(|p| {
            p.since = Some("2026-11-23T12:00:00.5Z".into());
            p.until = Some("2026-11-23T12:00:09.999Z".into());
        }))
        .unwrap();
        assert_eq!(q.filter.since, Some(1_795_435_201));
        assert_eq!(q.filter.until, Some(1_795_435_209));
        let q = AuditQuery::parse(&p(|p| p.since = Some("2026-11-23T12:00:00.000Z".into())));
        assert_eq!(q.unwrap().filter.since, Some(1_795_435_200));
        assert!(
            parse_time("until", "99999999999999999999999")
                .unwrap_err()
                .message
                .contains("too large")
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = AuditQuery::parse(&p(|p| p.event = Some("aprove".into()))).unwrap_err();
        assert!(
            e.message.contains("\"aprove\"") && e.message.contains("approval"),
            "{}",
            e.message
        );
        let e = AuditQuery::parse(&p(|p| {
            p.since = Some("200".into());
            p.until = Some("100".into());
        }))
        .unwrap_err();
        assert!(e.message.contains("since is after until"));
        for (l, ok) in [("0", false), ("1", true), ("1000", true), ("1001", false)] {
            assert_eq!(
                AuditQuery::parse(&p(|p| p.limit = Some(l.into()))).is_ok(),
                ok,
                "{l}"
            );
        }
        assert!(AuditQuery::parse(&p(|p| p.before = Some("0".into()))).is_err());
        assert!(AuditQuery::parse(&p(|p| p.before = Some("x".into()))).is_err());
        let e = AuditQuery::parse(&p(|p| p.user = Some("a\u{202e}b".into()))).unwrap_err();
        assert!(e.message.contains("user"), "{}", e.message);
        let q = AuditQuery::parse(&p(|p| {
            p.user = Some(" alice ".into());
            p.role = Some("db".into());
            p.event = Some("approval".into());
            p.before = Some("42".into());
        }))
        .unwrap();
        assert_eq!(q.filter.user.as_deref(), Some("alice"));
        assert_eq!(q.filter.event.as_deref(), Some("approval"));
        assert_eq!(q.before, Some(42));
    }
}
