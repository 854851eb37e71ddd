DROP INDEX ingest_errors_message_id_key;
DELETE FROM ingest_errors WHERE kind = 'dead_item';
ALTER TABLE ingest_errors
    DROP COLUMN kind,
    DROP COLUMN message_id,
    DROP COLUMN attempts,
    DROP COLUMN source_queue,
    DROP COLUMN item,
    ALTER COLUMN file_id SET NOT NULL,
    ALTER COLUMN line SET NOT NULL;
