-- Failure counters for lockout and rate limits, and the audit trail.
CREATE TABLE failures (
	key   text COLLATE "C" PRIMARY KEY,
	count integer NOT NULL,
	since timestamptz NOT NULL,
	last  timestamptz NOT NULL
);
CREATE INDEX failures_last ON failures (last);

CREATE TABLE audit (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        timestamptz NOT NULL,
	event     text NOT NULL,
	subject   text COLLATE "C" NOT NULL DEFAULT '',
	client_id text NOT NULL DEFAULT '',
	dialect   text NOT NULL DEFAULT '',
	ip        text NOT NULL DEFAULT '',
	outcome   text NOT NULL DEFAULT '',
	detail    text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_subject ON audit (subject, at);
