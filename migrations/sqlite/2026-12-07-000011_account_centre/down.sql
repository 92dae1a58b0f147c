DROP TABLE sign_in_events;
DROP INDEX sessions_user_id_idx;
ALTER TABLE sessions DROP COLUMN handle;
ALTER TABLE sessions DROP COLUMN user_id;
ALTER TABLE qq_links DROP COLUMN profile_at;
ALTER TABLE qq_links DROP COLUMN avatar_url;
ALTER TABLE qq_links DROP COLUMN nickname;
