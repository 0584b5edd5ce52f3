-- The revocation feed lists the sessions revoked since a time when it loads.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
