//! The tables, written by hand: one schema for both backends, so only
//! portable column types appear here.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        mobile -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        consented_at -> Nullable<Timestamp>,
        is_active -> Bool,
    }
}

diesel::table! {
    qq_links (id) {
        id -> BigInt,
        app_id -> Text,
        openid -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        profile_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        state -> Text,
        expires_at -> Timestamp,
        user_id -> Nullable<BigInt>,
        handle -> Nullable<Text>,
    }
}

diesel::table! {
    used_oauth_states (state_hash) {
        state_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    image_codes (id) {
        id -> Text,
        answer -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// What the service knows of a QQ account linked in the Django site's
    /// `tb_oauth_qq` beyond the openid (`QQLOGIN_USER_TABLES=django` only).
    qq_profiles (openid) {
        openid -> Text,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        profile_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(qq_links -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    qq_links,
    sessions,
    login_failures,
    used_oauth_states,
    sms_codes,
    sms_sends,
    image_codes,
    sign_in_events,
    qq_profiles
);

diesel::table! {
    login_failures (subject) {
        subject -> Text,
        failures -> Integer,
        last_failure -> Timestamp,
        locked_until -> Timestamp,
    }
}

diesel::table! {
    sms_codes (mobile) {
        mobile -> Text,
        code_hash -> Text,
        sent_at -> Timestamp,
        expires_at -> Timestamp,
        wrong_tries -> Integer,
    }
}

diesel::table! {
    sms_sends (subject) {
        subject -> Text,
        sends -> Integer,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_events (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        at -> Timestamp,
        kind -> Text,
        method -> Nullable<Text>,
        outcome -> Text,
        address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}
