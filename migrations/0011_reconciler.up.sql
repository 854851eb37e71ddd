-- The reconciler (issue 12): how many times it has republished a file's lost work items.
-- Its pass finds unfinished files through ingest_files_status_idx; no index on updated_at,
-- which every chunk commit changes (one would make those updates non-HOT).
ALTER TABLE ingest_files ADD COLUMN recoveries integer NOT NULL DEFAULT 0;
