-- Repeated refusals are merged into one audit row that says how many there were.
ALTER TABLE audit ADD COLUMN count integer NOT NULL DEFAULT 1;
