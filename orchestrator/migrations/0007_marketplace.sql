-- The node marketplace: operator profiles, a denormalised search row per node, and reviews.

-- What an operator says about a node (PUT /api/nodes/{id}/profile); the price itself stays on
-- nodes.price_per_point_micro_usdc.
CREATE TABLE node_profiles (
    node_id      uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    display_name text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    tags         text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL
);

-- One row per node with every filter and sort key as a plain column, rebuilt by the marketplace
-- refresh (uptime over the availability history, reserved capacity over the VMs) and at once
-- for a node whose profile changes. Searches never aggregate history: the heartbeat path keeps
-- writing nodes without touching these indexes.
CREATE TABLE node_market (
    node_id          uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    region           text NOT NULL,
    tags             text[] NOT NULL,      -- the node's own tags and its profile's
    price_per_point  bigint NOT NULL,      -- micro-USDC per compute point per hour
    compute_points   bigint NOT NULL,
    cpu_cores        integer NOT NULL,
    memory_mib       bigint NOT NULL,      -- schedulable (after the host's reserve)
    disk_gib         bigint NOT NULL,
    gpu_count        integer NOT NULL,
    gpu_vendors      text[] NOT NULL,      -- lowercase
    gpu_models       text NOT NULL,        -- lowercase, ' | '-joined, for substring search
    behind_cgnat     boolean NOT NULL,
    free_points      bigint NOT NULL,
    free_memory_mib  bigint NOT NULL,
    free_disk_gib    bigint NOT NULL,
    free_gpus        integer NOT NULL,
    uptime_bp        integer NOT NULL,     -- 30-day uptime in basis points (0..10000)
    vms_hosted       bigint NOT NULL,
    vms_completed    bigint NOT NULL,
    featured         boolean NOT NULL DEFAULT false,
    refreshed_at     timestamptz NOT NULL
);
-- Keyset pagination: every sort is (key, node_id) in one direction or the other.
CREATE INDEX node_market_price ON node_market (price_per_point, node_id);
CREATE INDEX node_market_uptime ON node_market (uptime_bp, node_id);
CREATE INDEX node_market_free ON node_market (free_points, node_id);
CREATE INDEX node_market_points ON node_market (compute_points, node_id);
CREATE INDEX node_market_tags ON node_market USING gin (tags);
CREATE INDEX node_market_gpu_vendors ON node_market USING gin (gpu_vendors) WHERE gpu_count > 0;
-- GPU model substring search ('4090'): trigrams (pg_trgm is a trusted extension, so the
-- database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX node_market_gpu_models ON node_market USING gin (gpu_models gin_trgm_ops)
    WHERE gpu_count > 0;
CREATE INDEX node_market_region ON node_market (region, price_per_point, node_id);
CREATE INDEX node_market_featured ON node_market (uptime_bp DESC, vms_completed DESC, node_id)
    WHERE featured;

-- One review per VM, by the VM's owner, after the VM ended.
CREATE TABLE node_reviews (
    vm_id        uuid PRIMARY KEY REFERENCES vms (id) ON DELETE CASCADE,
    node_id      uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    owner_wallet text NOT NULL,
    rating       smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL
);
CREATE INDEX node_reviews_node ON node_reviews (node_id, created_at DESC, vm_id);
