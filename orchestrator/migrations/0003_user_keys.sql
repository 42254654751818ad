-- Keys users give us: the wallet's public key recovered at sign-in (the default ECIES key),
-- an optional registered encryption key, and SSH public keys injected into their VMs.

ALTER TABLE users
    ADD COLUMN wallet_public_key         text,
    ADD COLUMN encryption_public_key     text,
    ADD COLUMN encryption_key_updated_at timestamptz;

CREATE TABLE ssh_keys (
    id             uuid PRIMARY KEY,
    wallet_address text NOT NULL REFERENCES users (wallet_address),
    name           text NOT NULL,
    algorithm      text NOT NULL,
    key_type       text NOT NULL,
    bits           integer NOT NULL,
    fingerprint    text NOT NULL,
    authorized_key text NOT NULL,
    created_at     timestamptz NOT NULL,
    UNIQUE (wallet_address, fingerprint),
    UNIQUE (wallet_address, name)
);
