CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    mobile        TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- One user per (app, openid) and one QQ account per user and app: a double
-- link is impossible in the database itself, whatever races above it.
CREATE TABLE qq_links (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id     TEXT NOT NULL,
    openid     TEXT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT qq_links_openid_key UNIQUE (app_id, openid),
    CONSTRAINT qq_links_user_key UNIQUE (app_id, user_id)
);
