-- Traffic through relays, from the relay agents' WireGuard counters: bytes relayed per tunnel
-- (surviving counter resets when an interface is recreated), the current rate, and whether a
-- tunnel ended in a failover (platform statistics). Then WireGuard key rotations.
ALTER TABLE relay_assignments
    ADD COLUMN bytes_relayed      bigint NOT NULL DEFAULT 0 CHECK (bytes_relayed >= 0),
    ADD COLUMN counter_rx         bigint NOT NULL DEFAULT 0,
    ADD COLUMN counter_tx         bigint NOT NULL DEFAULT 0,
    ADD COLUMN traffic_at         timestamptz,
    ADD COLUMN rate_bps           bigint NOT NULL DEFAULT 0 CHECK (rate_bps >= 0),
    ADD COLUMN ended_by_failover  boolean NOT NULL DEFAULT false;

-- WireGuard key rotations in progress, one per node. staging: the node's agent is asked for a
-- next key, then the other end of each of its live tunnels is told to stage it as a successor
-- peer (staged_on lists those tunnels once their agents report it); committing: the node switches
-- to the next key. The row goes once the node reports the next key as its key.
CREATE TABLE relay_key_rotations (
    node_id         uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    state           text NOT NULL CHECK (state IN ('staging', 'committing')),
    next_public_key text NOT NULL DEFAULT '',
    staged_on       uuid[] NOT NULL DEFAULT '{}',
    reason          text NOT NULL,
    requested_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
