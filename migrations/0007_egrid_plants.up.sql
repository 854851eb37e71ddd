-- Plants, for the read API: a plant is the generators sharing data year, state and plant
-- name; its net generation is the sum of its generators' known (non-NULL) values, NULL when
-- none is known. Refreshed (CONCURRENTLY, so reads never block) in the transaction that
-- finishes an eGRID file (dataset spec: refresh_views), so it always holds whole files.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A plant's id: the first 52 bits of md5(year|state|plant name). Stable across reloads and
-- databases, and exact in a JavaScript number.
CREATE FUNCTION egrid_plant_id(year integer, state text, plant_name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('x' || substr(md5(year::text || '|' || state || '|' || plant_name), 1, 13))::bit(52)::bigint;

CREATE MATERIALIZED VIEW egrid_plants AS
SELECT egrid_plant_id(year, state, plant_name) AS id,
       year,
       state,
       plant_name,
       sum(net_generation_mwh)   AS net_generation_mwh,
       count(*)                  AS generators,
       count(net_generation_mwh) AS generators_reported,
       count(*) FILTER (WHERE net_generation_mwh < 0) AS generators_negative,
       max(loaded_at)            AS loaded_at
FROM egrid_generators
GROUP BY year, state, plant_name;

CREATE UNIQUE INDEX egrid_plants_id ON egrid_plants (id);
CREATE INDEX egrid_plants_top ON egrid_plants (net_generation_mwh DESC NULLS LAST);
CREATE INDEX egrid_plants_year_top ON egrid_plants (year, net_generation_mwh DESC NULLS LAST);
CREATE INDEX egrid_plants_state_top ON egrid_plants (state, net_generation_mwh DESC NULLS LAST);
CREATE INDEX egrid_plants_year_state_top ON egrid_plants (year, state, net_generation_mwh DESC NULLS LAST);
-- The refresh inserts into this index row by row. With GIN's default 4 MB pending list those
-- rows would sit in an unsorted list that every name search reads in full (and that makes the
-- planner prefer a sequential scan) until a VACUUM merges it: ~4 ms instead of ~0.05 ms per
-- search. A 64 kB list is merged as it fills, for a little more work at refresh time.
CREATE INDEX egrid_plants_name_trgm ON egrid_plants USING gin (plant_name gin_trgm_ops)
    WITH (gin_pending_list_limit = 64);

-- The API's file list filters by dataset and status and pages newest first; its alert list
-- pages newest first.
CREATE INDEX ingest_files_dataset_status_idx ON ingest_files (dataset, status, id DESC);
CREATE INDEX alerts_last_seen_idx ON alerts (last_seen DESC, id DESC);
