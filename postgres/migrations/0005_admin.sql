-- The admin API: custom claims of users (a JSON object, '{}' for none), a
-- version on users and clients (the entity tag, and the compare-and-swap
-- of updates), and the actor of each audit event.
ALTER TABLE users ADD COLUMN claims jsonb NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN actor text NOT NULL DEFAULT '';
-- A client app's end users, in the order of the admin API's pages.
CREATE INDEX users_client_id ON users (client_id, id);
