-- Ticks in a row on which the chain refused a reserved payout (its transfer cannot even be
-- estimated: the treasury lacks the tokens, or the gas is above the cap). Kept in the database so
-- that a restart or another replica continues the count instead of retrying forever; the row
-- goes when the payout is sent or cancelled.
CREATE TABLE chain_payout_refusals (
    payout_id text PRIMARY KEY,
    refusals integer NOT NULL CHECK (refusals > 0),
    last_error text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
