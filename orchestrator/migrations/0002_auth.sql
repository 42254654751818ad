-- Wallet sign-in (EIP-4361): nonces we issued, sessions behind the tokens, and the users seen.

CREATE TABLE auth_nonces (
    nonce      text PRIMARY KEY,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX auth_nonces_expires_at ON auth_nonces (expires_at);

CREATE TABLE users (
    wallet_address  text PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    last_sign_in_at timestamptz NOT NULL
);

CREATE TABLE auth_sessions (
    id             uuid PRIMARY KEY,
    wallet_address text NOT NULL REFERENCES users (wallet_address),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX auth_sessions_wallet_address ON auth_sessions (wallet_address);
