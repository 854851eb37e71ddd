ALTER TABLE egrid_generators RESET (fillfactor);
