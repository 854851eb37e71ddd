DROP TABLE egrid_generators;
