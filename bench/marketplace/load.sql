-- bench/marketplace: 100,000 nodes with 30 days of heartbeat history and VMs holding capacity,
-- generated in the database (no round-trips). :nodes is set by run.sh. Times are relative to
-- :'now' (the bench binary's clock), so the 30-day window is exactly the generated history.
\set ON_ERROR_STOP on
BEGIN;
SELECT setseed(0.42);

CREATE TEMP TABLE tag_pool AS
SELECT ARRAY['ssd', 'nvme', 'hdd', '10g', '1g', 'ipv6', 'ecc', 'epyc', 'xeon', 'ryzen', 'arm64',
             'solar', 'datacenter', 'home', 'fibre', 'ups', 'raid1', 'raid10', 'gdpr', 'eu',
             'us', 'asia', 'backup', 'lowlatency', 'gaming', 'ml', 'storage', 'compute', 'edge',
             'green'] AS tags;

INSERT INTO users (wallet_address, created_at, last_sign_in_at)
SELECT '0x' || lpad(to_hex(g), 40, '0'), :'now'::timestamptz, :'now'::timestamptz
FROM generate_series(1, 1000) AS g;

INSERT INTO nodes (id, public_key, operator_wallet, credential_hash, reported_ip, observed_ip,
                   region, tags, resources, compute_points, benchmark_events_per_second,
                   benchmark_threads, agent_version, behind_cgnat, requires_relay, cgnat_reason,
                   status, registered_at, updated_at, last_heartbeat_at, usage,
                   price_per_point_micro_usdc)
SELECT md5('node' || g)::uuid, 'key' || g, '0x' || lpad(to_hex(g % 5000), 40, '0'), 'h',
       '203.0.113.1', '203.0.113.1',
       (ARRAY['eu-west', 'eu-central', 'eu-north', 'us-east', 'us-west', 'us-central',
              'asia-east', 'asia-south', 'sa-east', 'af-south'])[1 + (g % 10)],
       ARRAY(SELECT t FROM tag_pool, unnest(tags) WITH ORDINALITY AS u(t, i)
             WHERE (hashint4(g * 31 + i::int) & 7) = 0 OR i::int = 1 + (g % 30)),
       jsonb_build_object(
           'cpuModel', 'CPU', 'cpuCores', cores, 'cpuThreads', cores * 2,
           'virtualizationFlags', '["vmx"]'::jsonb, 'kvmAvailable', true, 'vmsEnabled', true,
           'memoryBytes', mem_gib::bigint << 30, 'storagePath', '/var/lib/decloud',
           'storageTotalBytes', 4000::bigint << 30, 'storageFreeBytes', disk_gib::bigint << 30,
           'gpus', CASE WHEN g % 10 = 0 THEN
                       (SELECT jsonb_agg(jsonb_build_object(
                            'pciAddress', '0000:0' || k || ':00.0', 'vendorId', '0x10de',
                            'deviceId', '0x2204',
                            'vendor', CASE WHEN g % 30 = 0 THEN 'AMD' ELSE 'NVIDIA' END,
                            'model', (ARRAY['GeForce RTX 4090', 'GeForce RTX 3090', 'A100',
                                            'Radeon Pro W7900', 'L40S'])[1 + (g / 10) % 5]))
                        FROM generate_series(1, 1 + (g / 10) % 4) AS k)
                   ELSE '[]'::jsonb END),
       cores * 100 + (g % 97), 4000, cores, '0.1.0', g % 5 < 2, g % 5 < 2,
       CASE WHEN g % 5 < 2 THEN 'reported address in CGNAT space' ELSE '' END,
       CASE WHEN g % 10 = 9 THEN 'offline' ELSE 'online' END,
       :'now'::timestamptz - interval '40 days', :'now'::timestamptz,
       :'now'::timestamptz - interval '5 seconds', '{}'::jsonb, 1 + (hashint4(g) & 255)
FROM (SELECT g, (ARRAY[2, 4, 8, 16, 32, 64])[1 + (g % 6)] AS cores,
             (ARRAY[4, 8, 16, 32, 64, 128, 256])[1 + (g % 7)] AS mem_gib,
             (ARRAY[100, 250, 500, 1000, 2000])[1 + (g % 5)] AS disk_gib
      FROM generate_series(1, :nodes) AS g) AS s;

-- Availability: each node online in stretches with gaps, so 30-day uptimes spread from ~50 %
-- to 100 % (a quarter of nodes never dropped). About ten intervals per node.
INSERT INTO node_availability (node_id, started_at, ended_at)
SELECT md5('node' || g)::uuid,
       :'now'::timestamptz - interval '30 days' + (k * interval '3 days'),
       CASE WHEN k = 9 AND g % 10 <> 9 THEN NULL
            ELSE :'now'::timestamptz - interval '30 days' + (k * interval '3 days')
                 + interval '3 days' * (CASE WHEN (hashint4(g * 7) & 7) < 2 THEN 1.0
                                             ELSE 0.5 + (hashint4(g * 13 + k) & 1023) / 2046.0
                                        END) END
FROM generate_series(1, :nodes) AS g, generate_series(0, 9) AS k;

-- Daily heartbeat counters for the 30 days (what the heartbeat flush keeps).
INSERT INTO node_daily_stats (node_id, day, heartbeats, missed)
SELECT md5('node' || g)::uuid, (:'now'::timestamptz - d * interval '1 day')::date,
       5760 - (hashint4(g + d) & 511), hashint4(g + d) & 511
FROM generate_series(1, :nodes) AS g, generate_series(0, 29) AS d;

-- VMs: about one per two nodes holding capacity, and as many ended ones (reputation counts).
INSERT INTO vms (id, owner_wallet, name, node_id, state, cores, memory_mib, disk_gib, tier,
                 image, points, created_at, updated_at)
SELECT md5('vm' || v)::uuid, '0x' || lpad(to_hex(1 + v % 1000), 40, '0'), 'vm' || v,
       md5('node' || (1 + (hashint4(v) & 2147483647) % :nodes))::uuid,
       CASE WHEN v % 2 = 0 THEN 'running' WHEN v % 7 = 1 THEN 'failed' ELSE 'deleted' END,
       2, 2048, 20, 'standard', 'debian-12', 134, :'now'::timestamptz, :'now'::timestamptz
FROM generate_series(1, :nodes) AS v;
COMMIT;
ANALYZE;
