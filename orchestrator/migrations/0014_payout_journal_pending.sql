-- The payout job reads the journal's pending records every tick; finished ones stay for the
-- record but are not read again.
CREATE INDEX chain_payout_journal_pending ON chain_payout_journal (payout_id)
    WHERE status = 'pending';
