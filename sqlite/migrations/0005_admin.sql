-- The admin API: custom claims of users, a version on users and clients
-- (the entity tag, and the compare-and-swap of updates), and the actor of
-- each audit event.
ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN actor TEXT NOT NULL DEFAULT '';
CREATE INDEX users_client_id ON users (client_id, id);
