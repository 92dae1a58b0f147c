-- When the person agreed to what is stored, shown on the bind page that
-- created the account (QQLOGIN_PRIVACY_URL); NULL for accounts made elsewhere.
ALTER TABLE users ADD COLUMN consented_at TIMESTAMP;
