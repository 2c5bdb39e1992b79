-- Schema step 10 of the ledger (applied once, in order, by ledger::migrations).
CREATE TABLE IF NOT EXISTS checkpoints (
    count INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    time TEXT NOT NULL,
    signer TEXT NOT NULL,
    signature TEXT NOT NULL
);
