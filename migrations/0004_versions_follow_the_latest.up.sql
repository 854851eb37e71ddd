-- A file version is new when its bytes differ from the latest version of the same key:
-- dropping bytes identical to the current ones creates nothing, but reverting a key to
-- bytes it held before (A, then B, then A again) is a new version that wins over B.
ALTER TABLE ingest_files DROP CONSTRAINT ingest_files_store_key_version_key;
CREATE INDEX ingest_files_store_key_id_idx ON ingest_files (store, key, id DESC);
