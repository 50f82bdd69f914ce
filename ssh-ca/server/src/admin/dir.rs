//! What every operator command on a data directory shares: the actor it is audited as, the
//! store it opens, and the syslog lines of its audit records.

use std::path::Path;

use jit_common::log::Syslog;

use crate::audit;
use crate::config::{self, Config};
use crate::error::{CaError, Result};
use crate::files;
use crate::store::Db;

/// The actor of an operator command in the audit trail.
pub(super) fn actor() -> String {
    format!("admin:uid={}", files::euid())
}

/// The database of an initialised data directory (the one its config.toml names).
pub(super) fn open_store(dir: &Path) -> Result<Db> {
    let cfg = Config::load(dir)?;
    if !dir.join(config::CONFIG_FILE).exists() {
        return Err(CaError::NotFound(dir.join(config::CONFIG_FILE)));
    }
    Db::open(&cfg)
}

/// Sends the syslog lines of committed audit records.
pub(super) fn log(records: &[audit::Record]) {
    audit::log(&mut Syslog::new("jit-ca"), records);
}
