-- Schema step 6 of the ledger (applied once, in order, by ledger::migrations).
-- `nonce`: the EIP-3009 authorization's nonce (0x-hex), written with the reservation before
-- any signature exists. `draft`: the receipt's JSON for an interruption, cleared when the
-- reservation ends.
ALTER TABLE reservations ADD COLUMN nonce TEXT;
ALTER TABLE reservations ADD COLUMN draft TEXT;
CREATE INDEX reservations_interrupted ON reservations(state) WHERE state = 'reserved';
