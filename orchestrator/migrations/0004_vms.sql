-- VMs, their state history, and the commands that carry them to node agents.

-- What an operator charges per compute point per hour, in micro-USDC (set at registration).
ALTER TABLE nodes ADD COLUMN price_per_point_micro_usdc bigint NOT NULL DEFAULT 0
    CHECK (price_per_point_micro_usdc >= 0);

CREATE TABLE vms (
    id                     uuid PRIMARY KEY,
    owner_wallet           text NOT NULL REFERENCES users (wallet_address),
    name                   text NOT NULL,
    node_id                uuid REFERENCES nodes (id),
    state                  text NOT NULL CHECK (state IN ('pending', 'scheduling', 'provisioning',
                               'running', 'stopping', 'stopped', 'deleting', 'deleted', 'failed')),
    state_reason           text NOT NULL DEFAULT '',
    cores                  integer NOT NULL CHECK (cores > 0),
    memory_mib             bigint NOT NULL CHECK (memory_mib > 0),
    disk_gib               bigint NOT NULL CHECK (disk_gib > 0),
    tier                   text NOT NULL,
    gpu                    jsonb,
    region                 text NOT NULL DEFAULT '',
    tags                   text[] NOT NULL DEFAULT '{}',
    target_node_id         uuid,
    require_kvm            boolean NOT NULL DEFAULT false,
    image                  text NOT NULL,
    ssh_key_ids            uuid[] NOT NULL DEFAULT '{}',
    encrypted_password     text,
    user_data              text NOT NULL DEFAULT '',
    -- What the VM holds on its node while it exists; fixed at placement.
    points                 bigint NOT NULL DEFAULT 0,
    gpu_count              integer NOT NULL DEFAULT 0,
    hourly_rate_micro_usdc bigint NOT NULL DEFAULT 0,
    idempotency_key        text,
    addresses              text[] NOT NULL DEFAULT '{}',
    node_offline           boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    UNIQUE (owner_wallet, idempotency_key)
);
CREATE INDEX vms_owner ON vms (owner_wallet, id);
-- Capacity sums per node only look at VMs that still hold capacity.
CREATE INDEX vms_node_active ON vms (node_id) WHERE state NOT IN ('deleted', 'failed', 'pending');

CREATE TABLE vm_events (
    vm_id      uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    seq        bigserial,
    at         timestamptz NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    PRIMARY KEY (vm_id, seq)
);

-- Decision 1: commands are rows; an agent receives the pending ones on its channel or its
-- heartbeat (at least once), applies them idempotently and acknowledges each with a result.
CREATE TABLE node_commands (
    id           uuid PRIMARY KEY,
    seq          bigserial UNIQUE,  -- delivery order
    node_id      uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    vm_id        uuid REFERENCES vms (id) ON DELETE CASCADE,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'delivered', 'succeeded', 'failed',
                                                'superseded')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    delivered_at timestamptz,
    completed_at timestamptz,
    result       text NOT NULL DEFAULT ''
);
CREATE INDEX node_commands_open ON node_commands (node_id, seq)
    WHERE state IN ('pending', 'delivered');

-- Domains an agent reports that no live VM of ours owns there; destroyed after a grace period.
CREATE TABLE node_orphan_domains (
    node_id       uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    vm_id         text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    destroy_sent  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (node_id, vm_id)
);
