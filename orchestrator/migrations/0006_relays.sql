-- Relays for nodes behind CGNAT: public nodes that offer to relay, the WireGuard tunnels
-- (assignments) between a CGNAT node and its relays with their history, the public ports
-- forwarded through them, nodes waiting for a relay, and each VM's relay for revenue.

-- A public node's offer to relay, as its agent reports it, and what the health monitor thinks.
CREATE TABLE relay_nodes (
    node_id              uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    enabled              boolean NOT NULL DEFAULT true,
    wireguard_public_key text NOT NULL DEFAULT '',
    wireguard_port       integer NOT NULL CHECK (wireguard_port BETWEEN 1 AND 65535),
    -- The address CGNAT nodes dial and users reach; empty: the node's reported (else observed) IP.
    endpoint_host        text NOT NULL DEFAULT '',
    max_tunnels          integer NOT NULL DEFAULT 0 CHECK (max_tunnels >= 0),  -- 0: the default
    bandwidth_mbps       integer NOT NULL DEFAULT 0 CHECK (bandwidth_mbps >= 0),
    bandwidth_used_mbps  integer NOT NULL DEFAULT 0 CHECK (bandwidth_used_mbps >= 0),
    healthy              boolean NOT NULL DEFAULT true,
    health_reason        text NOT NULL DEFAULT '',
    -- Where the next public port search starts, so a released port is not reused at once.
    port_cursor          integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- One WireGuard tunnel between a CGNAT node and a relay. Rows are never deleted: a removed
-- assignment keeps its history, and releases its tunnel block and role (partial indexes below).
CREATE TABLE relay_assignments (
    id                uuid PRIMARY KEY,
    cgnat_node_id     uuid NOT NULL REFERENCES nodes (id),
    relay_node_id     uuid NOT NULL REFERENCES nodes (id),
    role              text NOT NULL CHECK (role IN ('primary', 'standby')),
    interface_name    text NOT NULL,
    tunnel_block      integer NOT NULL CHECK (tunnel_block >= 0),  -- index in the pool, as allocated
    tunnel_network    cidr NOT NULL CHECK (family(tunnel_network) = 4
                                           AND masklen(tunnel_network) = 30),
    relay_address     inet NOT NULL,
    cgnat_address     inet NOT NULL,
    relay_public_key  text NOT NULL DEFAULT '',
    cgnat_public_key  text NOT NULL DEFAULT '',
    relay_listen_port integer NOT NULL CHECK (relay_listen_port BETWEEN 1 AND 65535),
    state             text NOT NULL CHECK (state IN ('provisioning', 'active', 'degraded',
                                                     'repairing', 'removed')),
    state_reason      text NOT NULL DEFAULT '',
    selection_reason  text NOT NULL DEFAULT '',
    repair_attempts   integer NOT NULL DEFAULT 0 CHECK (repair_attempts >= 0),
    created_at        timestamptz NOT NULL,
    state_changed_at  timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK (cgnat_node_id <> relay_node_id),
    CHECK (relay_address << tunnel_network AND cgnat_address << tunnel_network
           AND relay_address <> cgnat_address
           AND host(relay_address) <> host(network(tunnel_network))
           AND host(cgnat_address) <> host(network(tunnel_network))
           AND host(relay_address) <> host(broadcast(tunnel_network))
           AND host(cgnat_address) <> host(broadcast(tunnel_network)))
);
-- What makes collisions impossible, whichever replica allocates: a tunnel block (and with it
-- both addresses) is live at most once; a CGNAT node has at most one live primary and one live
-- standby, never both on the same relay.
CREATE UNIQUE INDEX relay_assignments_live_tunnel ON relay_assignments (tunnel_network)
    WHERE state <> 'removed';
CREATE UNIQUE INDEX relay_assignments_live_role ON relay_assignments (cgnat_node_id, role)
    WHERE state <> 'removed';
CREATE UNIQUE INDEX relay_assignments_live_pair ON relay_assignments (cgnat_node_id, relay_node_id)
    WHERE state <> 'removed';
CREATE INDEX relay_assignments_live_relay ON relay_assignments (relay_node_id)
    WHERE state <> 'removed';

-- Every change of an assignment, with its time and reason. A row whose from_state equals its
-- to_state records something that did not change the state (a promotion, a key rotation).
CREATE TABLE relay_assignment_events (
    assignment_id uuid NOT NULL REFERENCES relay_assignments (id) ON DELETE CASCADE,
    seq           bigserial,
    at            timestamptz NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    role          text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (assignment_id, seq)
);

-- Public ports on a relay forwarded through a primary tunnel to a VM's port. Unique per relay
-- (whatever the protocol), and a VM's port is forwarded once.
CREATE TABLE relay_port_mappings (
    id            uuid PRIMARY KEY,
    relay_node_id uuid NOT NULL REFERENCES nodes (id),
    assignment_id uuid NOT NULL REFERENCES relay_assignments (id),
    public_port   integer NOT NULL CHECK (public_port BETWEEN 1 AND 65535),
    protocol      text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    vm_id         uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    vm_port       integer NOT NULL CHECK (vm_port BETWEEN 1 AND 65535),
    created_at    timestamptz NOT NULL,
    UNIQUE (relay_node_id, public_port),
    UNIQUE (vm_id, vm_port, protocol)
);
CREATE INDEX relay_port_mappings_assignment ON relay_port_mappings (assignment_id);

-- CGNAT nodes that need a primary relay and found none; retried when a relay appears.
CREATE TABLE relay_waits (
    cgnat_node_id   uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    since           timestamptz NOT NULL,
    last_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 1,
    reason          text NOT NULL DEFAULT ''
);

-- Revenue attribution: the relay that carries a VM's traffic (80% node / 20% relay); NULL for
-- VMs on public nodes.
ALTER TABLE vms ADD COLUMN relay_node_id uuid REFERENCES nodes (id);
