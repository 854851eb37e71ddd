ALTER TABLE ingest_files DROP COLUMN plan_columns, DROP COLUMN plan_field_count;
DROP TABLE ingest_chunk_plans;
