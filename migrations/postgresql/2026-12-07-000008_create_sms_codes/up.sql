-- One live SMS code per mobile, kept as an HMAC under a key derived from
-- SECRET_KEY (never the digits), in the database so that every instance sees it.
CREATE TABLE sms_codes (
    mobile      TEXT PRIMARY KEY NOT NULL,
    code_hash   TEXT NOT NULL,
    sent_at     TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    wrong_tries INTEGER NOT NULL
);

-- Codes sent per subject and day (a mobile, a client address, a QQ account),
-- for the daily caps; a row is forgotten once its day is over.
CREATE TABLE sms_sends (
    subject    TEXT PRIMARY KEY NOT NULL,
    sends      INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
