-- The person across the developer's QQ apps (QQ_USE_UNIONID): links are
-- found by it first. Links made by openid alone gain it at their next login.
ALTER TABLE qq_links ADD COLUMN unionid TEXT;
CREATE INDEX qq_links_unionid ON qq_links (unionid) WHERE unionid IS NOT NULL;
