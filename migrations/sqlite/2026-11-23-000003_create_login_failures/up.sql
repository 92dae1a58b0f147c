-- Failed password attempts per account name and per client address, kept in
-- the database so that every instance sees them.
CREATE TABLE login_failures (
    subject      TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    last_failure TIMESTAMP NOT NULL,
    locked_until TIMESTAMP NOT NULL
);
