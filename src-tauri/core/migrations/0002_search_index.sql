-- Schema step 2 of the ledger (applied once, in order, by ledger::migrations).
-- Schema step 2: the search index (see the module doc).
CREATE TABLE receipt_dims (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    value TEXT NOT NULL,
    label TEXT,
    UNIQUE (kind, value)
);
CREATE TABLE receipt_facts (
    seq INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
    grant_dim INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    decider INTEGER NOT NULL,
    host INTEGER NOT NULL,
    endpoint INTEGER NOT NULL,
    payee INTEGER NOT NULL,
    network INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    amount INTEGER,
    flags INTEGER NOT NULL
);
CREATE VIRTUAL TABLE receipt_fts USING fts5(doc, content='', contentless_delete=1, detail=none,
    tokenize="unicode61 remove_diacritics 2 tokenchars '$'");
CREATE TABLE receipt_rollup (
    day INTEGER NOT NULL,
    grant_dim INTEGER NOT NULL,
    endpoint INTEGER NOT NULL,
    host INTEGER NOT NULL,
    payee INTEGER NOT NULL,
    network INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    decider INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    n INTEGER NOT NULL,
    spend INTEGER NOT NULL,
    PRIMARY KEY (day, grant_dim, endpoint, payee, network, outcome, decider, flags)
) WITHOUT ROWID;
CREATE TABLE receipt_counts (
    kind INTEGER NOT NULL,
    value INTEGER NOT NULL,
    day INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    n INTEGER NOT NULL,
    spend INTEGER NOT NULL,
    PRIMARY KEY (kind, value, day, outcome)
) WITHOUT ROWID;
CREATE TABLE receipt_days (
    day INTEGER PRIMARY KEY,
    min_seq INTEGER NOT NULL,
    max_seq INTEGER NOT NULL
);
CREATE TABLE price_memory (
    endpoint INTEGER PRIMARY KEY,
    paid INTEGER NOT NULL,
    recent TEXT NOT NULL
);
CREATE TABLE payee_memory (
    host INTEGER PRIMARY KEY,
    payee INTEGER NOT NULL
);
CREATE TABLE receipt_archives (
    last_seq INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    file TEXT NOT NULL,
    archived_at TEXT NOT NULL
);
CREATE TABLE receipt_index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    backfill_below INTEGER NOT NULL
);
INSERT INTO receipt_index_state (id, backfill_below) SELECT 1, coalesce(max(seq), 0) + 1 FROM receipts;
