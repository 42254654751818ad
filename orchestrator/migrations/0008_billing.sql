-- Billing: a double-entry ledger in the token's smallest unit (micro-USDC), hourly metering of
-- running VMs and account events (low balance, VMs stopped at zero). See docs/billing.md.

-- An account's balance is the sum of its entries; the column is kept by a trigger in the same
-- transaction as the entries, so the CHECK refuses any movement that would overdraw an account
-- (only treasury_in, the source of deposits, is negative by design).
CREATE TABLE ledger_accounts (
    id       bigserial PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('user_balance', 'node_earnings', 'relay_earnings',
                                           'platform_fee', 'treasury_in', 'treasury_out',
                                           'payouts_in_flight')),
    owner    text NOT NULL DEFAULT '',  -- lowercase wallet; '' for the platform's accounts
    currency text NOT NULL DEFAULT 'USDC',
    balance  bigint NOT NULL DEFAULT 0,
    UNIQUE (kind, owner, currency),
    CHECK ((owner = '') = (kind IN ('platform_fee', 'treasury_in', 'treasury_out'))),
    CONSTRAINT ledger_accounts_not_overdrawn CHECK (kind = 'treasury_in' OR balance >= 0)
);

CREATE TABLE ledger_transactions (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('deposit', 'charge', 'payout_reserve',
                                                  'payout_settle', 'payout_cancel')),
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL
);

CREATE TABLE ledger_entries (
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    account_id     bigint NOT NULL REFERENCES ledger_accounts (id),
    amount         bigint NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transaction_id, account_id)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, transaction_id);

CREATE FUNCTION ledger_apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_entry();

-- At commit, every transaction that got entries must sum to zero per currency.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    SELECT a.currency INTO unbalanced
    FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.transaction_id = NEW.transaction_id
    GROUP BY a.currency HAVING sum(e.amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %', NEW.transaction_id,
            unbalanced USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: corrections are new transactions.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- How far metering has billed every VM (an hour boundary); one row.
CREATE TABLE billing_metering (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    metered_until timestamptz NOT NULL
);

-- Things that happened to an account, shown to its owner; dedupe_key makes each once.
CREATE TABLE billing_account_events (
    id         bigserial PRIMARY KEY,
    wallet     text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('low_balance', 'vms_stopped')),
    dedupe_key text NOT NULL UNIQUE,
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL
);
CREATE INDEX billing_account_events_wallet ON billing_account_events (wallet, id);
