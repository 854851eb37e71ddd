-- The reconciler (issue 12): how many times it has republished a file's lost work items,
-- and a small index over the files that are not finished, which it reads every pass.
ALTER TABLE ingest_files ADD COLUMN recoveries integer NOT NULL DEFAULT 0;
CREATE INDEX ingest_files_unfinished_idx ON ingest_files (updated_at)
    WHERE status IN ('discovered', 'chunking', 'loading');
