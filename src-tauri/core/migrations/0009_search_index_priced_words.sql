-- Schema step 9 of the ledger (applied once, in order, by ledger::migrations).
-- The search index rebuilt as in step 8, now with the priced-word tokens (ledger::priced_words:
-- each word of a priced receipt paired with its amount code) and an exact-amount token per priced
-- receipt (`$v<micro-USD>`: `amount:0.0123` is one doclist).
DROP TABLE receipt_fts;
CREATE VIRTUAL TABLE receipt_fts USING fts5(doc, content='', contentless_delete=1, detail=none, prefix='2 3 4 5 6',
    tokenize="unicode61 remove_diacritics 2 tokenchars '$'");
DELETE FROM receipt_facts;
DELETE FROM receipt_rollup;
DELETE FROM receipt_counts;
DELETE FROM receipt_days;
DELETE FROM price_memory;
DELETE FROM payee_memory;
UPDATE receipt_index_state SET backfill_below = (SELECT coalesce(max(seq), 0) + 1 FROM receipts) WHERE id = 1;
