CREATE TABLE sessions_with_rowid (
    id         TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
INSERT INTO sessions_with_rowid (id, state, expires_at) SELECT id, state, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_with_rowid RENAME TO sessions;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
