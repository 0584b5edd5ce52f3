-- Bounds on the end users of a client app (the taiki dialect creates them
-- on demand): how many each app has, kept up to date by every insert so
-- that the cap is one row to check (and the row every creation of that app
-- waits on), and an index that finds an app's newest end users, for its
-- creation rate.
CREATE TABLE end_user_counts (
	client_id TEXT PRIMARY KEY,
	users     INTEGER NOT NULL
);
INSERT INTO end_user_counts (client_id, users)
	SELECT client_id, COUNT(*) FROM users WHERE client_id != '' GROUP BY client_id;
CREATE INDEX users_client_created ON users (client_id, created_at);
