-- Half of every heap page of egrid_generators is left free (fillfactor 50), so a re-load,
-- which must move every row's lineage forward, writes each new row version on the page of
-- the old one: a HOT update, with no write to the key index. With full pages every such
-- update moved the row to another page and inserted a new key index entry.
-- Existing pages keep their layout until the table is rewritten (VACUUM FULL egrid_generators).
ALTER TABLE egrid_generators SET (fillfactor = 50);
