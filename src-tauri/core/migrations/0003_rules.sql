-- Schema step 3 of the ledger (applied once, in order, by ledger::migrations).
CREATE TABLE rules (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
    host TEXT NOT NULL,
    max_amount INTEGER CHECK (max_amount IS NULL OR max_amount > 0),
    expires_at TEXT,
    created_at TEXT NOT NULL,
    from_approval TEXT,
    removed_at TEXT,
    CHECK ((kind = 'allow') = (max_amount IS NOT NULL AND expires_at IS NOT NULL))
);
CREATE INDEX rules_live ON rules(grant_id) WHERE removed_at IS NULL;
CREATE TABLE payee_labels (
    address TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
