DROP INDEX ingest_files_store_key_id_idx;
-- Keep the latest row of each repeated (store, key, version) so the constraint can return.
DELETE FROM ingest_files f USING ingest_files g
WHERE f.store = g.store AND f.key = g.key AND f.version = g.version AND f.id < g.id;
ALTER TABLE ingest_files ADD CONSTRAINT ingest_files_store_key_version_key UNIQUE (store, key, version);
