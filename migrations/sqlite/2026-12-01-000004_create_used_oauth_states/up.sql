-- The `state` of every QQ login that came back, until it would have expired
-- anyway: a state is good for one callback. `state_hash` is its SHA-256.
-- WITHOUT ROWID: one b-tree keyed by the hash, not a rowid table plus an
-- index on the key, so each callback writes fewer pages.
CREATE TABLE used_oauth_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
) WITHOUT ROWID;
CREATE INDEX used_oauth_states_expires_at_idx ON used_oauth_states (expires_at);
