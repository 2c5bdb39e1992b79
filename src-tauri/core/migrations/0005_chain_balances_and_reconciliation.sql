-- Schema step 5 of the ledger (applied once, in order, by ledger::migrations).
CREATE TABLE chain_balances (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    address TEXT NOT NULL,
    atomic TEXT NOT NULL,
    block INTEGER,
    read_at TEXT NOT NULL,
    PRIMARY KEY (network, asset, address)
);
CREATE TABLE reconciliation (
    receipt_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'mismatch', 'missing', 'released')),
    checked_at TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reconciliation_pending ON reconciliation(state) WHERE state = 'pending';
