-- Sign-ins in progress live in the browser's signed `EA_Login_…` cookie, no longer here: a
-- `GET /cdn-cgi/access/login` stores nothing. D1 keeps only the states callbacks have used, for
-- the 10 minutes a state is accepted (each callback deletes older rows), so that a callback is
-- used once.

DROP TABLE IF EXISTS login_states;

CREATE TABLE login_used (
  state   TEXT PRIMARY KEY,   -- a state a callback has used
  used_ms INTEGER NOT NULL
);

CREATE INDEX login_used_by_time ON login_used (used_ms);
