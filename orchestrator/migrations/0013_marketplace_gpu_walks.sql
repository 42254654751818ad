-- GPU searches (vendor, model, count) walk only the GPU nodes, in the order of the sort asked
-- for, and stop after a page. A vendor or a model matches a fair share of the GPU nodes, so such
-- a walk meets a page of matches within a few hundred rows, where the trigram index fetched every
-- match first (2,000 heap pages for '4090' among 100,000 nodes) and then sorted them all. The
-- trigram and vendor indexes stay for rare models, where the planner still prefers them.
CREATE INDEX node_market_gpu_price ON node_market (price_per_point, node_id) WHERE gpu_count > 0;
CREATE INDEX node_market_gpu_uptime ON node_market (uptime_bp, node_id) WHERE gpu_count > 0;
CREATE INDEX node_market_gpu_free ON node_market (free_points, node_id) WHERE gpu_count > 0;
CREATE INDEX node_market_gpu_points ON node_market (compute_points, node_id) WHERE gpu_count > 0;
