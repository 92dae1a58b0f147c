ALTER TABLE users DROP COLUMN consented_at;
