-- Server-side session state. `id` is the SHA-256 of the cookie's session key,
-- so a copy of this table does not let anyone take over a session.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
