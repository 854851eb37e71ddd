-- Schema drift: what a file's header had beyond its dataset's spec, and which optional spec
-- columns (`required = false`) it lacked. Written with the chunk plan; the new columns'
-- field indexes are part of the plan (a rescuing dataset keeps their values), their names
-- are what /files/{id} and the new-columns alert show.
ALTER TABLE ingest_files
    ADD COLUMN plan_new_columns jsonb,
    ADD COLUMN absent_columns   text[];
