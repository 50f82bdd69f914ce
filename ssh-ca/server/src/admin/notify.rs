//! `jit-ca notify status` and `jit-ca notify retry`: the operator's view of notification
//! deliveries, on the data directory (allowed while `jit-ca serve` runs: status only reads,
//! and a retry is one small transaction the running worker picks up by polling).

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::dir::{actor, log, open_store};
use crate::audit::event;
use crate::config::Config;
use crate::error::{CaError, Result};
use crate::store::{DeadLetter, LastError};

/// One sink as `notify status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkView {
    /// The sink's name.
    pub name: String,
    /// `standard` or `slack`; None when config.toml no longer has this sink (its
    /// deliveries wait: nothing sends them).
    pub format: Option<&'static str>,
    /// Deliveries not made yet.
    pub pending: u64,
    /// Deliveries given up.
    pub dead: u64,
    /// The time of the oldest event not delivered yet to this sink.
    pub oldest_undelivered: Option<u64>,
    /// Its age, seconds.
    pub oldest_undelivered_secs: Option<u64>,
    /// The most recent failed attempt.
    pub last_error: Option<LastError>,
}

/// What `jit-ca notify status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyReport {
    /// When it was read.
    pub now: u64,
    /// The configured sinks in config order, then sinks with stored deliveries that
    /// config.toml no longer names.
    pub sinks: Vec<SinkView>,
    /// Dead letters, oldest first (the most recent ones when there are very many).
    pub dead: Vec<DeadLetter>,
    /// Dead letters stored in all.
    pub dead_total: u64,
    /// Outbox rows not fanned out to the sinks yet (`jit-ca serve` does it within a
    /// second; a number that stays, or grows, means the fan-out is stuck).
    pub not_fanned_out: u64,
    /// The age (seconds) of the oldest of them.
    pub not_fanned_out_oldest_secs: Option<u64>,
}

/// `jit-ca notify status`: reads the data directory only.
pub fn notify_status(dir: &Path, now: u64) -> Result<NotifyReport> {
    let cfg = Config::load(dir)?;
    let status = open_store(dir)?.read(|c| c.notify_status(now))??;
    let mut sinks: Vec<SinkView> = cfg
        .notify
        .iter()
        .map(|s| SinkView {
            name: s.name.clone(),
            format: Some(s.format.as_str()),
            pending: 0,
            dead: 0,
            oldest_undelivered: None,
            oldest_undelivered_secs: None,
            last_error: None,
        })
        .collect();
    for s in status.sinks {
        let i = match sinks.iter().position(|v| v.name == s.sink) {
            Some(i) => i,
            None => {
                sinks.push(SinkView {
                    name: s.sink.clone(),
                    format: None,
                    pending: 0,
                    dead: 0,
                    oldest_undelivered: None,
                    oldest_undelivered_secs: None,
                    last_error: None,
                });
                sinks.len() - 1
            }
        };
        let v = &mut sinks[i];
        v.pending = s.pending;
        v.dead = s.dead;
        v.oldest_undelivered = s.oldest_undelivered;
        v.oldest_undelivered_secs = s.oldest_undelivered_secs;
        v.last_error = s.last_error;
    }
    Ok(NotifyReport {
        now,
        sinks,
        dead: status.dead,
        dead_total: status.dead_total,
        not_fanned_out: status.backlog,
        not_fanned_out_oldest_secs: status.backlog_oldest.map(|t| now.saturating_sub(t)),
    })
}

/// The human rendering of a report (every stored string is shown escaped: ids and errors
/// come from the CA, but a damaged database must not write terminal controls).
pub fn render_status(r: &NotifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if r.sinks.is_empty() {
        out.push_str(
            "no sinks: config.toml has no [[notify]] table and the outbox has no deliveries \
             (docs/notify.md)\n",
        );
    }
    for s in &r.sinks {
        let what = s
            .format
            .unwrap_or("not in config.toml: nothing sends these");
        let _ = write!(out, "sink {} ({what}): ", clean(&s.name));
        if s.pending == 0 {
            out.push_str("nothing pending");
        } else {
            let _ = write!(out, "{} pending", s.pending);
            if let Some(age) = s.oldest_undelivered_secs {
                let _ = write!(
                    out,
                    ", oldest undelivered {} old",
                    jit_common::time::format_duration(age)
                );
            }
        }
        let _ = write!(out, "; {} dead", s.dead);
        if let Some(e) = &s.last_error {
            let _ = write!(
                out,
                "; last error {}: {} ({})",
                jit_common::time::format_utc(e.at),
                clean(&e.error),
                clean(&e.id)
            );
        }
        out.push('\n');
    }
    if r.not_fanned_out > 0 {
        let _ = write!(
            out,
            "{} event(s) not fanned out to the sinks yet",
            r.not_fanned_out
        );
        if let Some(age) = r.not_fanned_out_oldest_secs {
            let _ = write!(
                out,
                ", oldest {} old",
                jit_common::time::format_duration(age)
            );
        }
        out.push_str(" (jit-ca serve fans out within a second: a count that stays means the fan-out is stuck; see its log)\n");
    }
    if r.dead_total == 0 {
        out.push_str("no dead letters\n");
        return out;
    }
    let _ = writeln!(
        out,
        "dead letters ({} of {}; resend one with `jit-ca notify retry ID [--sink NAME]`):",
        r.dead.len(),
        r.dead_total
    );
    for d in &r.dead {
        let _ = writeln!(
            out,
            "  {} {} {} to {}: {} attempts, last {}{} (event at {})",
            clean(&d.id),
            clean(&d.kind),
            d.request_id.as_deref().map_or_else(|| "-".into(), clean),
            clean(&d.sink),
            d.attempts,
            d.last_status
                .map_or_else(String::new, |s| format!("status {s}: ")),
            d.last_error.as_deref().map_or_else(|| "-".into(), clean),
            jit_common::time::format_utc(d.time),
        );
    }
    out
}

/// A stored string as one line of printable text.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What `jit-ca notify retry` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// The event id.
    pub id: String,
    /// The sinks it is sent to again.
    pub sinks: Vec<String>,
}

/// `jit-ca notify retry ID [--sink NAME]`: the dead deliveries of event `id` (to `sink`
/// only, if given) become pending, due now, with a fresh retry schedule; audited as
/// `notify_retry`. The event keeps its id and payload, so receivers deduplicate.
pub fn notify_retry(dir: &Path, id: &str, sink: Option<&str>, now: u64) -> Result<Retried> {
    let cfg = Config::load(dir)?;
    if let Some(name) = sink
        && !cfg.notify.iter().any(|s| s.name == name)
    {
        return Err(CaError::Input(format!(
            "--sink {name:?}: config.toml has no [[notify]] sink of that name{}",
            names(&cfg)
        )));
    }
    let mut db = open_store(dir)?;
    // The id is found with a scan of the outbox: on a read, before the write lock is taken
    // (a long scan under it would stall every writer of the running service).
    let Some(seq) = db.read(|c| c.notify_event_seq(id))?? else {
        return Err(CaError::UnknownEvent { id: id.to_string() });
    };
    // Only the sinks config.toml names: nothing would send a delivery to another.
    let targets: Vec<&str> = match sink {
        Some(s) => vec![s],
        None => cfg.notify.iter().map(|s| s.name.as_str()).collect(),
    };
    let (sinks, rec) = db.with_tx(|tx| {
        let mut sinks = Vec::new();
        for t in targets {
            sinks.extend(
                tx.notify_retry_seq(seq, id, Some(t), now)?
                    .into_iter()
                    .map(|(_, s)| s),
            );
        }
        if sinks.is_empty() {
            return Err(CaError::Input(format!(
                "{id} has no dead delivery{}; only dead letters to sinks config.toml names are \
                 sent again (jit-ca notify status lists them; a pending one is still being retried)",
                sink.map_or_else(String::new, |s| format!(" to sink {s:?}"))
            )));
        }
        let rec = tx.append_audit(
            now,
            &actor(),
            event::NOTIFY_RETRY,
            &json!({"id": id, "sinks": sinks}),
        )?;
        Ok((sinks, rec))
    })?;
    log(&[rec]);
    Ok(Retried {
        id: id.to_string(),
        sinks,
    })
}

fn names(cfg: &Config) -> String {
    if cfg.notify.is_empty() {
        return " (it has none)".into();
    }
    let names: Vec<&str> = cfg.notify.iter().map(|s| s.name.as_str()).collect();
    format!("; it has {}", names.join(", "))
}
