-- Accounts that may not log in (Django's is_active = false, kept by the import).
ALTER TABLE users ADD COLUMN is_active BOOLEAN NOT NULL DEFAULT TRUE;
