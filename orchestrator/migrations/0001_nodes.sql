-- Nodes, their availability history, daily heartbeat counters and single-use tokens.
-- Times are always written by the application (from its injected clock), never by now().

CREATE TABLE nodes (
    id                          uuid PRIMARY KEY,
    public_key                  text NOT NULL UNIQUE,
    operator_wallet             text NOT NULL,
    credential_hash             text NOT NULL,
    reported_ip                 text NOT NULL DEFAULT '',
    observed_ip                 text NOT NULL DEFAULT '',
    region                      text NOT NULL DEFAULT '',
    tags                        text[] NOT NULL DEFAULT '{}',
    resources                   jsonb NOT NULL,
    compute_points              integer NOT NULL CHECK (compute_points >= 0),
    benchmark_events_per_second double precision NOT NULL,
    benchmark_threads           integer NOT NULL,
    agent_version               text NOT NULL DEFAULT '',
    cgnat_override              boolean,
    behind_cgnat                boolean NOT NULL,
    requires_relay              boolean NOT NULL,
    cgnat_reason                text NOT NULL,
    status                      text NOT NULL CHECK (status IN ('online', 'offline')),
    registered_at               timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    last_heartbeat_at           timestamptz,
    usage                       jsonb NOT NULL DEFAULT '{}'
) WITH (fillfactor = 70);
-- Heartbeats rewrite last_heartbeat_at, usage and status of every node every flush: no index
-- may cover those columns, and free space in each page keeps the updates HOT (no index work).
-- The offline sweeper scans the table, which is cheap next to indexing every heartbeat.
CREATE INDEX nodes_operator_wallet ON nodes (operator_wallet);

-- One row per stretch of time a node was online; ended_at is NULL while it still is.
CREATE TABLE node_availability (
    node_id    uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    PRIMARY KEY (node_id, started_at),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX node_availability_open ON node_availability (node_id) WHERE ended_at IS NULL;

CREATE TABLE node_daily_stats (
    node_id    uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    day        date NOT NULL,
    heartbeats bigint NOT NULL DEFAULT 0,
    missed     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, day)
) WITH (fillfactor = 70);

-- Hashes of single-use tokens (signed registrations) until they expire.
CREATE TABLE used_tokens (
    token_hash text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX used_tokens_expires_at ON used_tokens (expires_at);
