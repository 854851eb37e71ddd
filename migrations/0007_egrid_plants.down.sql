DROP INDEX IF EXISTS alerts_last_seen_idx;
DROP INDEX IF EXISTS ingest_files_dataset_status_idx;
DROP MATERIALIZED VIEW IF EXISTS egrid_plants;
DROP FUNCTION IF EXISTS egrid_plant_id(integer, text, text);
-- pg_trgm stays: other objects may use it.
