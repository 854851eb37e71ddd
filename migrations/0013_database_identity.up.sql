-- Datasets on their own databases (issue 13): each database penstock writes to says who it
-- is. `id` tells two URLs of one database apart from two databases; `shard` is assigned by
-- `penstock migrate` (0 for database_url, 1, 2, … for the datasets' own databases) and
-- puts this database's file and event ids in their own range (shard × 2^40 and up), so a
-- file id names one file version across every database.
CREATE TABLE database_identity (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    id     uuid    NOT NULL DEFAULT gen_random_uuid(),
    shard  integer CHECK (shard BETWEEN 0 AND 8191)
);
INSERT INTO database_identity DEFAULT VALUES;
