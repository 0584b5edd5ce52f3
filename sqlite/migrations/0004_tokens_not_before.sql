-- A user's tokens issued at or before this time are invalid (a password
-- change ends what the old password gave); unix microseconds, 0 for never.
ALTER TABLE users ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;
