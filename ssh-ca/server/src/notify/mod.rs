//! Notifications (issue 15): every state change becomes an [`event::Event`], written to an
//! outbox in the transaction that makes the change, then delivered by a background worker
//! to the `[[notify]]` sinks of config.toml ([`config`]), each with its event filter
//! ([`filter`]), as a signed Standard Webhooks call (the payload, signed by
//! [`crate::webhook::sign`]) or a Slack message ([`slack`]).
//!
//! Messages deliver requests; they never approve one: no message carries a link or a button
//! that changes state, and approving stays a signed act of the approver (`jit approve ID`)
//! or a logged-in web form. The one link a message may carry ([`link`], when `public_url` is
//! set) is to the request's read-only page.
//!
//! Pure (no clock or storage): [`deliver`] (one attempt's headers and body, and its
//! outcome), [`map`] (which audit events notify),
//! [`backoff`] (retry times, dead letters), [`alerts`] (threshold detectors and what each
//! alert says). The outbox is written by the store, in the transaction of each change
//! (`store::sqlite::outbox`, behind `StoreOps::notify_*`); [`worker`] fans it out and
//! delivers it, on its own threads, outside every transaction.

pub mod alerts;
pub mod backoff;
pub mod config;
pub mod deliver;
#[cfg(test)]
mod docs_tests;
pub mod event;
pub mod filter;
pub mod link;
pub mod map;
pub mod slack;
pub mod worker;
