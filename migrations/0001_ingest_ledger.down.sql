DROP TABLE ingest_ignored;
DROP TABLE ingest_errors;
DROP TABLE ingest_chunks;
DROP TABLE ingest_files;
