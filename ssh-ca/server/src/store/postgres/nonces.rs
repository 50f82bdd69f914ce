//! Nonce claims, group-committed: concurrent callers' claims go to the database in one
//! INSERT (one commit) on the claims connection; whoever finds no batch running runs the
//! next one (leader/follower), the others wait for their answer. A claim is durable
//! (synchronous_commit) before its caller goes on.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, PoisonError};

use super::conn::{Slot, get};
use super::{Inner, i};
use crate::error::{CaError, Result};

/// Most claims in one INSERT.
const MAX_BATCH: usize = 512;

#[derive(Default)]
struct State {
    /// Claims waiting for the next batch: (ticket, nonce, now).
    queue: Vec<(u64, String, u64)>,
    /// Answers by ticket (Err: the batch failed, as text: CaError is not Clone).
    done: HashMap<u64, std::result::Result<bool, Failed>>,
    next_ticket: u64,
    running: bool,
}

/// A failed batch, for each of its claims (the kind of error is kept: unavailable → 503,
/// busy → 503 "busy", anything else → 500).
#[derive(Clone)]
enum Failed {
    Unavailable(String),
    Busy(String),
    Other(String),
}

impl Failed {
    fn of(e: CaError) -> Self {
        match e {
            CaError::Unavailable(s) => Self::Unavailable(s),
            CaError::Busy(s) => Self::Busy(s),
            CaError::Db(s) => Self::Other(s),
            other => Self::Other(other.to_string()),
        }
    }

    fn into_error(self) -> CaError {
        match self {
            Self::Unavailable(s) => CaError::Unavailable(s),
            Self::Busy(s) => CaError::Busy(s),
            Self::Other(s) => CaError::Db(s),
        }
    }
}

#[derive(Default)]
pub(crate) struct Claims {
    state: Mutex<State>,
    cv: Condvar,
    conn: Slot,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims").finish_non_exhaustive()
    }
}

impl Claims {
    /// Claims `nonce`: true when this call stored it, false when it was there (a replay, on
    /// any replica) or claimed by an earlier claim of the same batch.
    pub(crate) fn claim(&self, inner: &Inner, nonce: &str, now: u64) -> Result<bool> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue.push((ticket, nonce.to_string(), now));
        loop {
            if let Some(r) = st.done.remove(&ticket) {
                return r.map_err(Failed::into_error);
            }
            if !st.running {
                // Lead the next batch (it holds this claim or a later batch will).
                st.running = true;
                let n = st.queue.len().min(MAX_BATCH);
                let batch: Vec<(u64, String, u64)> = st.queue.drain(..n).collect();
                drop(st);
                let answers = self.run(inner, &batch);
                st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                st.running = false;
                match answers {
                    Ok(a) => st.done.extend(a.into_iter().map(|(t, b)| (t, Ok(b)))),
                    Err(e) => {
                        let failed = Failed::of(e);
                        for (t, _, _) in &batch {
                            st.done.insert(*t, Err(failed.clone()));
                        }
                    }
                }
                self.cv.notify_all();
                continue;
            }
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn run(&self, inner: &Inner, batch: &[(u64, String, u64)]) -> Result<Vec<(u64, bool)>> {
        let mut g = self.conn.lock();
        let c = Slot::ensure(&mut g, &inner.target, &inner.name("nonces"))?;
        // One row per distinct nonce; a repeat within the batch is a replay of the first.
        let mut seen = HashSet::new();
        let (mut nonces, mut times) = (Vec::new(), Vec::new());
        for (_, n, t) in batch {
            if seen.insert(n.as_str()) {
                nonces.push(n.as_str());
                times.push(i(*t));
            }
        }
        let stored: HashSet<String> = c
            .rows(
                "INSERT INTO nonce_log (nonce, seen_at) SELECT * FROM unnest($1::text[], $2::bigint[]) \
                 ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                &[&nonces, &times],
            )?
            .iter()
            .map(|r| get::<String>(r, 0))
            .collect::<Result<_>>()?;
        let mut first = HashSet::new();
        Ok(batch
            .iter()
            .map(|(t, n, _)| (*t, first.insert(n.as_str()) && stored.contains(n)))
            .collect())
    }
}
