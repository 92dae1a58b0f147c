-- Used states are keyed by when their login began (`<ms in hex>.<sha256>`),
-- so the purge finds the old ones as a range of the primary key, and no index
-- on `expires_at` has to be kept up by every login. Only states keyed by their
-- plain hash (from before the time prefix) still need one, and have it here.
DROP INDEX used_oauth_states_expires_at_idx;
CREATE INDEX used_oauth_states_unprefixed_expires_at_idx ON used_oauth_states (expires_at)
    WHERE state_hash NOT LIKE '____________.%';
