-- EPA eGRID generators (dataset spec: config/datasets/egrid_generators.toml).
CREATE TABLE egrid_generators (
    year               integer     NOT NULL,
    state              text        NOT NULL,
    plant_name         text        NOT NULL,
    generator_id       text        NOT NULL,
    -- MWh; NULL when the file leaves it blank (unknown), negative when the generator
    -- consumed more than it produced.
    net_generation_mwh numeric,
    -- Lineage: which file version and physical line the row came from.
    source_file_id     bigint      NOT NULL,
    source_line        bigint      NOT NULL,
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT egrid_generators_key UNIQUE (year, state, plant_name, generator_id)
);
CREATE INDEX egrid_generators_source_idx ON egrid_generators (source_file_id);
