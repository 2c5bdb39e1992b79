//! Owns the ledger's schema: the numbered steps in `src-tauri/core/migrations/NNNN_name.sql`,
//! applied once each and in order, each in one `IMMEDIATE` transaction that also records it in
//! SQLite's `user_version`. A released step is never edited: a feature appends a file with the
//! next number (and a line here); `migrate` applies what a ledger lacks, so an existing ledger
//! is upgraded in place when it is opened.

use super::Result;
use rusqlite::Connection;

/// Every step: its number, its file and its SQL.
pub(super) const STEPS: &[(i64, &str, &str)] = &[
    (1, "0001_receipts_and_grants.sql", include_str!("../../migrations/0001_receipts_and_grants.sql")),
    (2, "0002_search_index.sql", include_str!("../../migrations/0002_search_index.sql")),
    (3, "0003_rules.sql", include_str!("../../migrations/0003_rules.sql")),
    (4, "0004_settings_and_missed.sql", include_str!("../../migrations/0004_settings_and_missed.sql")),
    (5, "0005_chain_balances_and_reconciliation.sql", include_str!("../../migrations/0005_chain_balances_and_reconciliation.sql")),
    (6, "0006_crash_recovery.sql", include_str!("../../migrations/0006_crash_recovery.sql")),
    (7, "0007_body_dictionaries.sql", include_str!("../../migrations/0007_body_dictionaries.sql")),
    (8, "0008_search_index_rebuilt.sql", include_str!("../../migrations/0008_search_index_rebuilt.sql")),
    (9, "0009_search_index_priced_words.sql", include_str!("../../migrations/0009_search_index_priced_words.sql")),
    (10, "0010_checkpoints.sql", include_str!("../../migrations/0010_checkpoints.sql")),
];

/// The schema version a ledger has once migrated.
pub const LATEST: i64 = STEPS[STEPS.len() - 1].0;

/// The SQL of step `version` (tests and the search index's tokenizer check read it).
#[cfg(test)]
pub(super) fn step(version: i64) -> &'static str {
    STEPS.iter().find(|s| s.0 == version).map(|s| s.2).unwrap_or("")
}

/// Applies the steps `conn` lacks, in order.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST)
}

/// Applies the steps up to `target` that `conn` lacks.
fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    for (version, _, sql) in STEPS.iter().filter(|s| s.0 <= target) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current < *version {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_are_the_sql_files_numbered_without_gaps() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        let listed: Vec<String> = STEPS.iter().map(|s| s.1.to_string()).collect();
        assert_eq!(files, listed, "every .sql file in migrations/ is a step, and every step a file");
        for (i, (version, file, sql)) in STEPS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1, "{file}: numbered without gaps");
            assert!(file.starts_with(&format!("{version:04}_")) && file.ends_with(".sql"), "{file}");
            assert_eq!(*sql, std::fs::read_to_string(dir.join(file)).unwrap(), "{file} is what is compiled in");
        }
    }

    #[test]
    fn a_ledger_at_any_earlier_step_is_upgraded_in_place() {
        for from in 0..LATEST {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("purser.db");
            {
                let mut c = Connection::open(&path).unwrap();
                migrate_to(&mut c, from).unwrap();
                let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
                assert_eq!(v, from);
            }
            let l = crate::ledger::Ledger::open_in(dir.path()).unwrap_or_else(|e| panic!("from step {from}: {e}"));
            let v: i64 = Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(v, LATEST, "from step {from}");
            assert!(l.list_grants().unwrap().is_empty());
            assert!(matches!(l.verify_chain().unwrap(), crate::ledger::ChainReport::Intact { count: 0, .. }));
        }
    }

    /// A ledger made by the release before the schema moved into .sql files (`purser dev
    /// seed-receipts 60`, schema step 10): it opens, keeps every receipt and its chain, and
    /// searches, with the steps read from the files.
    #[test]
    fn a_ledger_made_by_the_previous_release_opens_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-v10-release.db"), dir.path().join("purser.db")).unwrap();
        let l = crate::ledger::Ledger::open_in(dir.path()).unwrap();
        match l.verify_chain().unwrap() {
            crate::ledger::ChainReport::Intact { count, head } => assert_eq!((count, head.as_str()), (60, "10c86fa41e779dba803a38f030fa7f446e4871443a70301d5d411c443fa1c5d8")),
            broken => panic!("{broken:?}"),
        }
        assert_eq!(l.list_grants().unwrap().len(), 5);
        let receipts = l.list_receipts(1000).unwrap();
        assert_eq!(receipts.len(), 60);
        // Every reason it holds is a `Reason` (the UI's union covers old ledgers too).
        for r in &receipts {
            assert!(crate::receipt::Reason::parse(&r.reason).is_some(), "{}: {}", r.id, r.reason);
        }
    }
}
