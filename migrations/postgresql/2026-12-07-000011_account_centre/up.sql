-- The account centre: the QQ account's face, the sessions of a user, and
-- what happened to an account.

-- Nickname and avatar from get_user_info, stored at link time and refreshed
-- at most once a day (profile_at), never while a login waits.
ALTER TABLE qq_links ADD COLUMN nickname TEXT;
ALTER TABLE qq_links ADD COLUMN avatar_url TEXT;
ALTER TABLE qq_links ADD COLUMN profile_at TIMESTAMP;

-- Whose session it is and its handle (both copied from the state by the
-- store), so that a user's sessions can be listed and ended.
ALTER TABLE sessions ADD COLUMN user_id BIGINT;
ALTER TABLE sessions ADD COLUMN handle TEXT;
UPDATE sessions SET user_id = (state::jsonb ->> 'uid')::bigint
    WHERE state::jsonb ? 'uid';
CREATE INDEX sessions_user_id_idx ON sessions (user_id) WHERE user_id IS NOT NULL;

-- Sign-ins and account changes. No foreign key: a deleted account's events
-- stay, with user_id, address and user agent set to NULL.
CREATE TABLE sign_in_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT,
    at         TIMESTAMP NOT NULL,
    kind       TEXT NOT NULL,
    method     TEXT,
    outcome    TEXT NOT NULL,
    address    TEXT,
    user_agent TEXT
);
CREATE INDEX sign_in_events_user_idx ON sign_in_events (user_id, at) WHERE user_id IS NOT NULL;
CREATE INDEX sign_in_events_at_idx ON sign_in_events (at);
