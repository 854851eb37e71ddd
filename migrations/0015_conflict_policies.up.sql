-- Conflict policies (a dataset's on_conflict).
--
-- "record": every row a later file version (or line) replaces is kept here, with its old
-- and its new lineage. The table's own trigger writes the rows an UPDATE replaced (OLD of
-- that very UPDATE, whatever the concurrency); the merge writes the rows of an older version
-- that loaded after a newer one (they lose and never enter the table). A dataset that
-- records attaches the trigger in its migration:
--   CREATE TRIGGER <table>_history AFTER UPDATE ON <table>
--       FOR EACH ROW EXECUTE FUNCTION penstock_record_history('<dataset>');
-- (the start-up check refuses a recording dataset whose table lacks it).
CREATE TABLE row_history (
    id          bigserial   PRIMARY KEY,
    dataset     text        NOT NULL,
    -- The replaced row as it was, lineage included (loaded_at left out).
    old_row     jsonb       NOT NULL,
    old_file_id bigint      NOT NULL,
    old_line    bigint      NOT NULL,
    new_file_id bigint      NOT NULL,
    new_line    bigint      NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
-- A file version's rows that later versions replaced (the diff reads these).
CREATE INDEX row_history_old_file ON row_history (old_file_id);

CREATE FUNCTION penstock_record_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A replay of the same line rewrites the row in place: nothing was replaced.
    IF (OLD.source_file_id, OLD.source_line) IS DISTINCT FROM (NEW.source_file_id, NEW.source_line) THEN
        INSERT INTO row_history (dataset, old_row, old_file_id, old_line, new_file_id, new_line)
        VALUES (TG_ARGV[0], to_jsonb(OLD) - 'loaded_at', OLD.source_file_id, OLD.source_line,
                NEW.source_file_id, NEW.source_line);
    END IF;
    RETURN NULL;
END
$$;

-- "keep": rows a file brought that an earlier file version's row of the same key kept out.
ALTER TABLE ingest_files ADD COLUMN rows_kept bigint NOT NULL DEFAULT 0;
ALTER TABLE ingest_chunks ADD COLUMN rows_kept bigint NOT NULL DEFAULT 0;
