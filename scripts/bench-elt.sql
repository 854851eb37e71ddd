-- In-database ELT, as a careful SQL user would write it: the raw file's text into an
-- unlogged table, parsed and cleaned in SQL, deduplicated with DISTINCT ON (the last line of
-- a key wins), then one INSERT … ON CONFLICT with penstock's lineage rule. Used by
-- scripts/bench.sh with -v file_id=N and the raw file on standard input; the eGRID column order of the sample.
\set ON_ERROR_STOP 1
CREATE UNLOGGED TABLE IF NOT EXISTS elt_raw (
    line bigint GENERATED ALWAYS AS IDENTITY, seq text, year text, state text, plant_name text,
    generator_id text, net text);
TRUNCATE elt_raw RESTART IDENTITY;
\copy elt_raw (seq, year, state, plant_name, generator_id, net) FROM pstdin WITH (FORMAT csv)
INSERT INTO egrid_generators AS t (year, state, plant_name, generator_id, net_generation_mwh, source_file_id, source_line)
SELECT DISTINCT ON (year, state, plant_name, generator_id) year, state, plant_name, generator_id, net, :file_id, line
FROM (
    SELECT line,
           trim(year)::integer AS year,
           upper(trim(state)) AS state,
           trim(plant_name) AS plant_name,
           trim(generator_id) AS generator_id,
           CASE WHEN trim(net) = '' THEN NULL
                WHEN trim(net) LIKE '(%)' THEN -replace(trim(btrim(trim(net), '()')), ',', '')::numeric
                ELSE replace(trim(net), ',', '')::numeric END AS net
    FROM elt_raw WHERE line > 2
) parsed
ORDER BY year, state, plant_name, generator_id, line DESC
ON CONFLICT (year, state, plant_name, generator_id) DO UPDATE SET
    net_generation_mwh = EXCLUDED.net_generation_mwh, source_file_id = EXCLUDED.source_file_id,
    source_line = EXCLUDED.source_line, loaded_at = now()
WHERE (t.source_file_id, t.source_line) <= (EXCLUDED.source_file_id, EXCLUDED.source_line);
DROP TABLE elt_raw;
