-- A user's tokens issued at or before this time are invalid (a password
-- change ends what the old password gave); NULL for never.
ALTER TABLE users ADD COLUMN tokens_not_before timestamptz;
