-- Dead work items (written by the error consumer) live beside quarantined rows in
-- ingest_errors: kind 'dead_item', unique by message id so redelivery is harmless.
ALTER TABLE ingest_errors
    ADD COLUMN kind text NOT NULL DEFAULT 'row' CHECK (kind IN ('row', 'dead_item')),
    ADD COLUMN message_id text,
    ADD COLUMN attempts integer,
    ADD COLUMN source_queue text,
    ADD COLUMN item jsonb,
    ALTER COLUMN file_id DROP NOT NULL,
    ALTER COLUMN line DROP NOT NULL;
CREATE UNIQUE INDEX ingest_errors_message_id_key ON ingest_errors (message_id) WHERE message_id IS NOT NULL;
