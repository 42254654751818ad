-- The round trip over each tunnel, as an agent at either end last measured it with UDP probes
-- to the other end's tunnel address.
ALTER TABLE relay_assignments
    ADD COLUMN tunnel_rtt_us bigint CHECK (tunnel_rtt_us >= 0),
    ADD COLUMN tunnel_rtt_at timestamptz;
