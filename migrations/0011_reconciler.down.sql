DROP INDEX ingest_files_unfinished_idx;
ALTER TABLE ingest_files DROP COLUMN recoveries;
