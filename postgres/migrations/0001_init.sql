-- The same tables as the SQLite store, in PostgreSQL's own types.
--
-- Ids are text, not uuid: the engine looks up strings that come from
-- requests, and one that is not a UUID must simply not be found. Ids and
-- names that lists are ordered by use the "C" collation, so that the order
-- is the byte order that SQLite and Go use, whatever the database's locale.
--
-- Times are timestamptz (microseconds, the resolution tokend keeps). A time
-- that may be "never" is NULL then; a time that always exists is NOT NULL.
-- Lists (roles, grants, scopes) are text[].
CREATE TABLE settings (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE users (
	id              text COLLATE "C" PRIMARY KEY,
	username        text COLLATE "C" NOT NULL,
	password_hash   text NOT NULL DEFAULT '',
	roles           text[] NOT NULL DEFAULT '{}',
	client_id       text COLLATE "C" NOT NULL DEFAULT '', -- '' for users of no client app
	disabled        boolean NOT NULL DEFAULT false,
	created_at      timestamptz NOT NULL,
	last_login_at   timestamptz,
	last_refresh_at timestamptz
);
-- Unique per client app (and once among the users of none); also serves
-- UserByName and ListUsers, which is ordered by username.
CREATE UNIQUE INDEX users_client_username ON users (client_id, username);

CREATE TABLE clients (
	id                text COLLATE "C" PRIMARY KEY,
	name              text NOT NULL,
	secret_hash       bytea, -- NULL for public clients
	prev_secret_hash  bytea,
	prev_secret_until timestamptz,
	public            boolean NOT NULL DEFAULT false,
	grants            text[] NOT NULL DEFAULT '{}',
	scopes            text[] NOT NULL DEFAULT '{}',
	mode              text NOT NULL,
	access_ttl_ms     bigint NOT NULL DEFAULT 0, -- 0: the server's default
	disabled          boolean NOT NULL DEFAULT false,
	created_at        timestamptz NOT NULL
);

-- seq numbers the keys of one algorithm; the unique index makes the second
-- of two concurrent rotations after the same key fail (AddKey's
-- compare-and-swap).
CREATE TABLE signing_keys (
	kid          text COLLATE "C" PRIMARY KEY,
	alg          text COLLATE "C" NOT NULL,
	private_key  bytea NOT NULL,
	created_at   timestamptz NOT NULL,
	activates_at timestamptz NOT NULL,
	revoked_at   timestamptz,
	seq          bigint NOT NULL,
	CONSTRAINT signing_keys_alg_seq UNIQUE (alg, seq)
);

-- Every refresh updates its session's counter and rotated_at, neither of
-- which is indexed: free space in each page lets those be HOT updates, which
-- touch no index.
CREATE TABLE sessions (
	id            text COLLATE "C" PRIMARY KEY,
	user_id       text COLLATE "C" NOT NULL,
	client_id     text COLLATE "C" NOT NULL DEFAULT '', -- '' for a dialect login that names no client
	scope         text NOT NULL DEFAULT '',
	dialect       text NOT NULL DEFAULT '',
	counter       bigint NOT NULL DEFAULT 0,
	rotated_at    timestamptz NOT NULL,
	created_at    timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	revoked_at    timestamptz, -- NULL while live
	revoke_reason text NOT NULL DEFAULT ''
) WITH (fillfactor = 80);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE revoked_tokens (
	jti        text COLLATE "C" PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- The change log that caches on every node follow. seq never goes back,
-- even once old changes are purged; transactions that record changes take
-- an advisory lock first (see recordChanges), so seqs become visible in
-- order and a reader never skips one that commits late.
CREATE TABLE changes (
	seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind text NOT NULL,
	ref  text NOT NULL,
	at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_at ON changes (at);
