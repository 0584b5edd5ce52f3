-- Times are unix microseconds (the resolution PostgreSQL keeps), 0 for "never".
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

CREATE TABLE users (
	id              TEXT PRIMARY KEY,
	username        TEXT NOT NULL,
	password_hash   TEXT NOT NULL DEFAULT '',
	roles           TEXT NOT NULL DEFAULT '',
	client_id       TEXT NOT NULL DEFAULT '',
	disabled        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	last_login_at   INTEGER NOT NULL DEFAULT 0,
	last_refresh_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_client_username ON users (client_id, username);

CREATE TABLE clients (
	id                TEXT PRIMARY KEY,
	name              TEXT NOT NULL,
	secret_hash       BLOB,
	prev_secret_hash  BLOB,
	prev_secret_until INTEGER NOT NULL DEFAULT 0,
	public            INTEGER NOT NULL DEFAULT 0,
	grants            TEXT NOT NULL DEFAULT '',
	scopes            TEXT NOT NULL DEFAULT '',
	mode              TEXT NOT NULL,
	access_ttl_ms     INTEGER NOT NULL DEFAULT 0,
	disabled          INTEGER NOT NULL DEFAULT 0,
	created_at        INTEGER NOT NULL
);

CREATE TABLE signing_keys (
	kid          TEXT PRIMARY KEY,
	alg          TEXT NOT NULL,
	private_key  BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	activates_at INTEGER NOT NULL,
	revoked_at   INTEGER NOT NULL DEFAULT 0,
	seq          INTEGER NOT NULL
);
CREATE UNIQUE INDEX signing_keys_alg_seq ON signing_keys (alg, seq);

CREATE TABLE sessions (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL,
	client_id     TEXT NOT NULL DEFAULT '',
	scope         TEXT NOT NULL DEFAULT '',
	dialect       TEXT NOT NULL DEFAULT '',
	counter       INTEGER NOT NULL DEFAULT 0,
	rotated_at    INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	revoked_at    INTEGER NOT NULL DEFAULT 0,
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE revoked_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

CREATE TABLE changes (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	ref  TEXT NOT NULL,
	at   INTEGER NOT NULL
);
