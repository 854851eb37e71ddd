ALTER TABLE ingest_files
    DROP COLUMN plan_new_columns,
    DROP COLUMN absent_columns;
