DROP INDEX qq_links_unionid;
ALTER TABLE qq_links DROP COLUMN unionid;
