-- Schema step 7 of the ledger (applied once, in order, by ledger::migrations).
-- Schema step 7: compression dictionaries (see the module doc).
CREATE TABLE body_dicts (
    id INTEGER PRIMARY KEY,
    zstd_id INTEGER NOT NULL,
    trained_at_seq INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    dict BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TRIGGER body_dicts_no_update BEFORE UPDATE ON body_dicts
    BEGIN SELECT RAISE(ABORT, 'compression dictionaries are append-only'); END;
CREATE TRIGGER body_dicts_no_delete BEFORE DELETE ON body_dicts
    BEGIN SELECT RAISE(ABORT, 'compression dictionaries are append-only'); END;
