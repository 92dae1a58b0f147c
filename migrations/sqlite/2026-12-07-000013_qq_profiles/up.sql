-- Beside the Django site's tb_oauth_qq (QQLOGIN_USER_TABLES=django), which
-- has only the openid: the unionid and the QQ face, kept by openid.
CREATE TABLE qq_profiles (
    openid     TEXT PRIMARY KEY,
    unionid    TEXT,
    nickname   TEXT,
    avatar_url TEXT,
    profile_at TIMESTAMP
);
CREATE INDEX qq_profiles_unionid ON qq_profiles (unionid) WHERE unionid IS NOT NULL;
