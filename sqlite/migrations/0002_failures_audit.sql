-- Failure counters for lockout and rate limits, and the audit trail.
CREATE TABLE failures (
	key   TEXT PRIMARY KEY,
	count INTEGER NOT NULL,
	since INTEGER NOT NULL,
	last  INTEGER NOT NULL
);
CREATE INDEX failures_last ON failures (last);

CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	at        INTEGER NOT NULL,
	event     TEXT NOT NULL,
	subject   TEXT NOT NULL DEFAULT '',
	client_id TEXT NOT NULL DEFAULT '',
	dialect   TEXT NOT NULL DEFAULT '',
	ip        TEXT NOT NULL DEFAULT '',
	outcome   TEXT NOT NULL DEFAULT '',
	detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_subject ON audit (subject, at);
