-- The ingest ledger: file versions, their chunks, quarantined rows, ignored objects.

CREATE TABLE ingest_files (
    id               bigserial PRIMARY KEY,
    store            text        NOT NULL,
    key              text        NOT NULL,
    -- ETag (S3) or sha256 of the content (local folder): identifies the bytes.
    version          text        NOT NULL,
    dataset          text        NOT NULL,
    size_bytes       bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'discovered'
        CHECK (status IN ('discovered', 'chunking', 'loading', 'done', 'done_with_errors', 'rejected', 'failed')),
    reason           text,
    chunks_total     integer,
    chunks_done      integer     NOT NULL DEFAULT 0,
    records_total    bigint,
    rows_loaded      bigint      NOT NULL DEFAULT 0,
    rows_quarantined bigint      NOT NULL DEFAULT 0,
    rows_superseded  bigint      NOT NULL DEFAULT 0,
    published_at     timestamptz,
    discovered_at    timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (store, key, version)
);
CREATE INDEX ingest_files_status_idx ON ingest_files (status);
CREATE INDEX ingest_files_key_idx ON ingest_files (key);

CREATE TABLE ingest_chunks (
    file_id          bigint      NOT NULL REFERENCES ingest_files (id) ON DELETE CASCADE,
    chunk            integer     NOT NULL,
    byte_start       bigint      NOT NULL,
    byte_end         bigint      NOT NULL,
    first_line       bigint      NOT NULL,
    records          bigint      NOT NULL,
    rows_loaded      bigint      NOT NULL,
    rows_quarantined bigint      NOT NULL,
    rows_superseded  bigint      NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, chunk)
);

CREATE TABLE ingest_errors (
    id          bigserial PRIMARY KEY,
    file_id     bigint      NOT NULL REFERENCES ingest_files (id) ON DELETE CASCADE,
    -- 1-based physical line where the record starts, header lines counted.
    line        bigint      NOT NULL,
    column_name text,
    raw         text        NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (file_id, line)
);

-- Objects in the store that match no dataset: logged once, listed by `penstock status`.
CREATE TABLE ingest_ignored (
    store      text        NOT NULL,
    key        text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, key)
);
