-- The chunk plan is data: the byte ranges, first lines, record counts and checksums the
-- chunker planned, written in the transaction that moves the file to `loading`. A re-plan
-- (a redelivered file item, a restarted chunker, another chunk_bytes) republishes this plan
-- instead of planning again, and the database consumer checks every chunk item against it.
CREATE TABLE ingest_chunk_plans (
    file_id    bigint  NOT NULL REFERENCES ingest_files (id) ON DELETE CASCADE,
    chunk      integer NOT NULL,
    byte_start bigint  NOT NULL,
    byte_end   bigint  NOT NULL,
    first_line bigint  NOT NULL,
    records    bigint  NOT NULL,
    sha256     text    NOT NULL,
    PRIMARY KEY (file_id, chunk),
    CHECK (byte_start < byte_end)
);

-- The header the plan was made against: fields per record, and each spec column's field.
ALTER TABLE ingest_files
    ADD COLUMN plan_field_count integer,
    ADD COLUMN plan_columns     integer[];
