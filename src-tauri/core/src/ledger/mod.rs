//! Owns all SQL: the SQLite ledger of grants, reservations and hash-chained receipts, its
//! schema migrations and its durability settings (WAL, `synchronous=FULL`). It records; it
//! does not decide (the one re-check it runs inside a reservation is the policy's function).

mod audit;
mod backlog;
mod batch;
mod body;
mod bulk;
mod chain;
mod checkpoints;
mod controls;
mod grants;
pub(crate) mod index;
pub mod migrations;
mod par_count;
mod plan;
mod priced_words;
mod receipts;
mod recover;
mod reserve;
mod rules;
pub(crate) mod search;

pub use audit::{commit, Audit, SignedFact};
pub use backlog::{MAX_PARKED, RETRY_EVERY};
pub use body::{read_body, BodyCodec};
pub use bulk::{verify_archive_file, ArchiveRecord, ArchiveReport};
pub use chain::{Reconciliation, StoredBalance};
pub use checkpoints::Checkpoint;
pub use controls::{Unrevoke, PAUSED};
pub use receipts::{ChainReport, GENESIS_HASH};
pub use recover::{Recovered, INTERRUPTED};
pub use reserve::{Reservation, Settle};
pub use rules::MissedApprovals;
pub use search::{Counters, Cursor, GroupBy, RawPage, RawRow, RawStats};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("ledger file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no grant {0}")]
    NoGrant(String),
    #[error("no reservation {0}")]
    NoReservation(String),
    #[error("grant {0} is revoked")]
    Revoked(String),
    #[error("amount overflows the grant's budget")]
    Overflow,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the ledger could not commit: {0}")]
    Commit(String),
    #[error("the ledger task failed: {0}")]
    Task(String),
}

impl LedgerError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            LedgerError::Sql(_) | LedgerError::Io(_) | LedgerError::Task(_) | LedgerError::Commit(_) => crate::api::ErrorCode::LedgerUnavailable,
            LedgerError::NoGrant(_) => crate::api::ErrorCode::NoSuchGrant,
            LedgerError::NoReservation(_) => crate::api::ErrorCode::NoSuchReservation,
            LedgerError::Revoked(_) => crate::api::ErrorCode::Revoked,
            LedgerError::Overflow => crate::api::ErrorCode::AmountOverflow,
            LedgerError::Corrupt(_) => crate::api::ErrorCode::LedgerCorrupt,
        }
    }
}

pub type Result<T> = std::result::Result<T, LedgerError>;

/// The ledger's file name inside the data dir.
pub const DB_FILE: &str = "purser.db";

/// A handle on the ledger. Cloning shares one writing connection (SQLite serialises writers
/// anyway; other processes, the CLI, coordinate through SQLite's own locking) and a small pool of
/// read-only connections for searches and exports, which WAL lets run beside the writer: a long
/// export or aggregate never holds up a payment's reservation or receipt.
#[derive(Clone)]
pub struct Ledger {
    conn: Arc<Mutex<Connection>>,
    /// Idle read-only connections (see [`Ledger::read`]).
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Writes waiting for the next group commit (see `batch`).
    queue: Arc<Mutex<Vec<batch::Job>>>,
    /// Receipts that could not be written yet (see `backlog`).
    backlog: Arc<backlog::Backlog>,
    /// How receipt bodies are stored (see `body`).
    codec: Arc<BodyCodec>,
    path: PathBuf,
}

impl Ledger {
    /// Opens (creating and migrating if needed) the ledger in `dir`, private to the user.
    pub fn open_in(dir: &Path) -> Result<Ledger> {
        crate::datadir::ensure_private_dir(dir)?;
        Self::open(&dir.join(DB_FILE))
    }

    /// Opens (creating and migrating if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            crate::datadir::make_private(Path::new(&p))?;
        }
        Ok(Ledger { conn: Arc::new(Mutex::new(conn)), readers: Arc::default(), queue: Arc::default(), backlog: Arc::default(), codec: Arc::default(), path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits (up to `limit`) for a compression dictionary being trained in the background to
    /// be ready (benchmarks and tests that want every later body compressed).
    pub fn wait_for_body_dictionary(&self, limit: std::time::Duration) -> bool {
        self.codec.wait_for_training(limit)
    }

    /// Runs `f` on the connection, on this thread.
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Runs `f` on a read-only connection of the pool (opened on first need; at most
    /// [`IDLE_READERS`] are kept). Each call sees the ledger as committed when its first read
    /// transaction starts; it never blocks the writer, nor the writer it.
    pub fn read<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(c) => c,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(&self.path, flags)?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.pragma_update(None, "query_only", "ON")?;
                c
            }
        };
        let out = f(&mut conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` with this ledger on the blocking pool (for async callers: SQLite and fsync
    /// never block the proxy's threads).
    pub async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Ledger) -> T + Send + 'static) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this)).await.map_err(|e| LedgerError::Task(e.to_string()))
    }
}

/// How many idle read-only connections a ledger keeps.
const IDLE_READERS: usize = 4;

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)).map_err(|e| LedgerError::Corrupt(format!("time {s:?}: {e}")))
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| LedgerError::Overflow)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod audit_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
