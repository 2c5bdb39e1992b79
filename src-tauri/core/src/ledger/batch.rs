//! Group commit: concurrent writers (reservations and receipts) share one `BEGIN IMMEDIATE`
//! transaction and one fsync. Each write runs in its own savepoint, in arrival order, so it sees
//! every write before it exactly as if it had its own transaction; nobody is answered until the
//! shared COMMIT is durable, and if that COMMIT fails every write in it fails.
//!
//! No extra thread: whoever gets the connection next runs everything queued ("combining").

use super::{Ledger, LedgerError, Result};
use rusqlite::Connection;
use std::sync::mpsc;

/// Tells a waiting writer how its write ended, once the COMMIT is known.
type Deliver = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// One queued write: runs inside the shared transaction and returns its deliverer.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Deliver + Send>;

/// Most writes combined into one transaction.
const MAX_BATCH: usize = 256;

impl Ledger {
    /// Runs `f` inside a shared immediate transaction and returns once it is durable.
    pub fn write<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |conn: &Connection| {
            let out = in_savepoint(conn, f);
            Box::new(move |committed: std::result::Result<(), String>| {
                let _ = tx.send(committed.map_err(LedgerError::Commit).and(out));
            })
        });
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(job);
        // Whoever holds the connection next runs every queued write, ours included: when we get
        // it, our write has either been run by an earlier holder or is in the queue for us.
        self.with(|conn| {
            run_queued(conn, &self.queue);
            Ok(())
        })?;
        rx.recv().map_err(|_| LedgerError::Commit("the ledger could not begin a transaction".into()))?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT w")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE w")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO w; RELEASE w")?;
            Err(e)
        }
    }
}

fn run_queued(conn: &mut Connection, queue: &std::sync::Mutex<Vec<Job>>) {
    loop {
        let jobs: Vec<Job> = {
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            let n = q.len().min(MAX_BATCH);
            q.drain(..n).collect()
        };
        if jobs.is_empty() {
            return;
        }
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                // Dropping the jobs unblocks their writers with an error; none of them ran.
                tracing::error!(error = %e, "ledger could not begin a transaction");
                return;
            }
        };
        let delivers: Vec<Deliver> = jobs.into_iter().map(|job| job(&tx)).collect();
        let committed = tx.commit().map_err(|e| e.to_string());
        if let Err(e) = &committed {
            tracing::error!(error = %e, "ledger commit failed; every write in the batch fails");
        }
        let failed = committed.is_err();
        delivers.into_iter().for_each(|d| d(committed.clone()));
        if failed {
            return;
        }
    }
}
