CREATE INDEX egrid_generators_source_idx ON egrid_generators (source_file_id);
DROP VIEW egrid_plants;
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
CREATE INDEX egrid_plants_name_trgm ON egrid_plants USING gin (plant_name gin_trgm_ops)
    WITH (gin_pending_list_limit = 64);
