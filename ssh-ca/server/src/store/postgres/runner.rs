//! The group commit's runner on PostgreSQL: every batch is one transaction on the runner's
//! own connection, the audit lock first, each job in `SAVEPOINT job` (rolled back alone when
//! it fails), the notifications of what the committed jobs changed, one COMMIT.

use std::sync::Arc;

use super::conn::Slot;
use super::tx::{Changes, PgTx};
use super::{Inner, begin_write_sql, commit_write};
use crate::error::Result;
use crate::service::{BatchRunner, Entry};

pub(crate) struct PgRunner {
    inner: Arc<Inner>,
    conn: Slot,
}

impl PgRunner {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            conn: Slot::default(),
        }
    }
}

impl BatchRunner for PgRunner {
    fn run(&mut self, jobs: &mut [Box<dyn Entry>]) -> Result<()> {
        let mut g = self.conn.lock();
        let c = Slot::begin(
            &mut g,
            &self.inner.target,
            &self.inner.name("writer"),
            &begin_write_sql(),
        )?;
        let tx = PgTx::new(c);
        let r = (|| {
            for j in jobs.iter_mut() {
                let before: Changes = tx.changed.get();
                c.batch("SAVEPOINT job")?;
                if !j.run(&tx) {
                    c.batch("ROLLBACK TO job")?;
                    tx.changed.set(before);
                }
                c.batch("RELEASE job")?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => commit_write(c, tx.changed.get()),
            Err(e) => {
                c.rollback();
                Err(e)
            }
        }
    }
}
