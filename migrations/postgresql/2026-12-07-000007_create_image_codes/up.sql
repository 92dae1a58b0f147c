-- The answer of each image code a front end asked for (`/image_codes/<uuid>/`),
-- until it is checked (once) or expires. `id` is the front end's UUID in lower
-- case, `answer` the characters drawn, in upper case.
CREATE TABLE image_codes (
    id TEXT PRIMARY KEY NOT NULL,
    answer TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
-- Every new image purges the expired ones: a range of this index, usually empty.
CREATE INDEX image_codes_expires_at_idx ON image_codes (expires_at);
