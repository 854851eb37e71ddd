ALTER TABLE ingest_chunks DROP COLUMN rows_kept;
ALTER TABLE ingest_files DROP COLUMN rows_kept;
DROP FUNCTION penstock_record_history() CASCADE;
DROP TABLE row_history;
