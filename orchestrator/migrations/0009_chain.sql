-- On-chain deposits and payouts (issue 8): the deposit scanner's state and the payout journal
-- live here rather than in files, so any replica can continue where another stopped. See
-- docs/billing-chain.md.

-- The deposit scanner's whole state (next block, hashes of the blocks kept for reorganisation
-- checks, unconfirmed deposits, confirmed keys in the window), one row per watched
-- (chain, token, deposit address): changing any of them starts a new scan.
CREATE TABLE chain_deposit_scanner (
    chain_id        bigint NOT NULL,
    token           text NOT NULL,
    deposit_address text NOT NULL,
    state           jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, token, deposit_address)
);

-- Deposits seen but not confirmed yet (a copy of the scanner state's pending list, rewritten
-- with it), shown to their senders as pending. Never money: the ledger is credited on
-- confirmation only.
CREATE TABLE chain_pending_deposits (
    chain_id     bigint NOT NULL,
    tx_hash      text NOT NULL,
    log_index    bigint NOT NULL,
    wallet       text NOT NULL,  -- lowercase sender
    amount       numeric(78, 0) NOT NULL,
    block_number bigint NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX chain_pending_deposits_wallet ON chain_pending_deposits (wallet);

-- The payout sender's journal: every signed transfer is written here before it is broadcast.
CREATE TABLE chain_payout_journal (
    payout_id  text PRIMARY KEY,
    wallet     text NOT NULL,  -- lowercase recipient
    status     text NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
    tx_hash    text NOT NULL,  -- the mined attempt's hash, else the current attempt's
    record     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- When the last payout batch ran (the schedule survives restarts); one row.
CREATE TABLE chain_payout_schedule (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_batch_at timestamptz NOT NULL
);
