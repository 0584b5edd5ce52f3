-- The web console: its sign-ins (the hash of each cookie's token, never
-- the token) and its first-run setup links (the hash of each link's
-- token), in the store so that every node sees them.
CREATE TABLE console_sessions (
	token_hash   bytea PRIMARY KEY,
	user_id      text COLLATE "C" NOT NULL,
	created_at   timestamptz NOT NULL,
	last_seen_at timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

CREATE TABLE console_setup (
	token_hash bytea PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
