-- The web console: its sign-ins (the hash of each cookie's token, never
-- the token) and its first-run setup links (the hash of each link's
-- token), in the store so that they hold across processes.
CREATE TABLE console_sessions (
	token_hash   BLOB PRIMARY KEY,
	user_id      TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

CREATE TABLE console_setup (
	token_hash BLOB PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
