ALTER TABLE ingest_files DROP COLUMN recoveries;
