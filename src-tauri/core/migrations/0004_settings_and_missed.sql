-- Schema step 4 of the ledger (applied once, in order, by ledger::migrations).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
