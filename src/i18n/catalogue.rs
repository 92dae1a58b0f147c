//! What a catalogue holds: every text a person can read, one field each, so
//! that a text missing from either language's catalogue ([`super::zh`],
//! [`super::en`]) is a compile error, not a blank on a page. A text with a
//! value in it is a function, so that each language puts the value where
//! its grammar wants it.

use serde::Serialize;

/// Serialized only by the tests that check every text is there.
#[derive(Serialize)]
pub struct Texts {
    pub common: Common,
    pub login: Login,
    pub home: Home,
    pub bind: Bind,
    pub account: Account,
    pub verify: Verify,
    pub delete: Delete,
    pub reset: Reset,
    pub reset_done: ResetDone,
    pub dev_qq: DevQq,
    pub sms: Sms,
    pub api: Api,
    pub errors: Errors,
}

/// The layout and what several pages share.
#[derive(Serialize)]
pub struct Common {
    /// This language's own name, for the switcher on the other language's pages.
    pub language_name: &'static str,
    /// What the switcher is, for screen readers.
    pub language_label: &'static str,
    /// The site's name when the operator gives none (`QQLOGIN_SITE_NAME`).
    pub default_site_name: &'static str,
    pub point_one_tap: &'static str,
    #[serde(skip)]
    pub point_qq_password: fn(site: &str) -> String,
    pub point_mobile: &'static str,
    pub footer_qq: &'static str,
    pub qq_login: &'static str,
    pub log_in_with_qq_again: &'static str,
    pub mobile: &'static str,
    pub mobile_placeholder: &'static str,
    pub sms_code: &'static str,
    pub sms_code_placeholder: &'static str,
    pub send_code: &'static str,
    /// The send button while it waits; `{}` becomes the seconds left (static/sms.js).
    pub resend_countdown: &'static str,
    /// What a screen reader hears when the wait begins (`{}`: seconds) and ends.
    pub resend_spoken: &'static str,
    pub resend_ready: &'static str,
    pub password: &'static str,
    pub new_password: &'static str,
    pub password_again: &'static str,
    pub password_placeholder: &'static str,
    pub forgot_password: &'static str,
    pub log_out: &'static str,
    pub log_in_again: &'static str,
    pub back_home: &'static str,
    pub back_to_account: &'static str,
    pub verify_identity: &'static str,
    #[serde(skip)]
    pub linked_at: fn(when: &str) -> String,
    pub no_nickname: &'static str,
    pub unknown_address: &'static str,
    pub unknown_time: &'static str,
    pub unknown_device: &'static str,
    pub wechat: &'static str,
    pub qq_browser: &'static str,
    #[serde(skip)]
    pub request_id: fn(id: &str) -> String,
}

#[derive(Serialize)]
pub struct Login {
    pub title: &'static str,
    pub first_time: &'static str,
    pub or_password: &'static str,
    pub username: &'static str,
    pub submit: &'static str,
}

#[derive(Serialize)]
pub struct Home {
    pub title: &'static str,
    #[serde(skip)]
    pub hello: fn(name: &str) -> String,
    pub logged_in: &'static str,
    pub account_centre: &'static str,
    pub welcome: &'static str,
    pub not_logged_in: &'static str,
    pub password_login: &'static str,
}

#[derive(Serialize)]
pub struct Bind {
    pub title: &'static str,
    /// "You are logging in with the QQ account" … nickname … "."
    pub as_qq_before: &'static str,
    pub as_qq_after: &'static str,
    pub intro: &'static str,
    pub new_heading: &'static str,
    pub new_hint: &'static str,
    pub choose_password: &'static str,
    pub link_and_log_in: &'static str,
    pub consent: &'static str,
    /// Before the link to the operator's privacy notice, and its text.
    pub consent_see: &'static str,
    pub privacy_policy: &'static str,
    pub consent_agree: &'static str,
    pub existing_heading: &'static str,
    pub existing_hint: &'static str,
    pub link_existing: &'static str,
}

#[derive(Serialize)]
pub struct Account {
    pub title: &'static str,
    pub account_heading: &'static str,
    pub username: &'static str,
    pub password_set: &'static str,
    pub password_unset: &'static str,
    pub qq_heading: &'static str,
    pub unlink_qq: &'static str,
    pub no_qq: &'static str,
    pub link_qq: &'static str,
    pub change_password: &'static str,
    pub set_password: &'static str,
    pub save_password: &'static str,
    pub password_note: &'static str,
    pub change_mobile: &'static str,
    pub new_mobile: &'static str,
    pub sessions_heading: &'static str,
    pub this_device: &'static str,
    #[serde(skip)]
    pub signed_in_at: fn(when: &str) -> String,
    pub end_session: &'static str,
    pub end_other_sessions: &'static str,
    pub sign_ins_heading: &'static str,
    pub no_sign_ins: &'static str,
    pub succeeded: &'static str,
    pub failed: &'static str,
    pub delete_heading: &'static str,
    pub delete_note: &'static str,
    pub delete_button: &'static str,
    pub done_verified: &'static str,
    pub done_linked: &'static str,
    pub done_unlinked: &'static str,
    pub done_password: &'static str,
    pub done_mobile: &'static str,
    pub done_session: &'static str,
    pub done_session_gone: &'static str,
    pub done_sessions: &'static str,
    pub method_bind: &'static str,
    pub method_qq: &'static str,
    pub method_qq_api: &'static str,
    pub method_password: &'static str,
    pub method_sms_code: &'static str,
    pub method_other: &'static str,
    pub deleted: Message,
}

#[derive(Serialize)]
pub struct Verify {
    pub title: &'static str,
    pub intro: &'static str,
    #[serde(skip)]
    pub code_sent_to: fn(mobile: &str) -> String,
    pub submit: &'static str,
}

#[derive(Serialize)]
pub struct Delete {
    pub title: &'static str,
    /// "Once deleted, the account" … name … "is removed and" … "cannot be restored" … ":"
    pub warning_before: &'static str,
    pub warning_after: &'static str,
    pub irreversible: &'static str,
    pub warning_end: &'static str,
    pub gone_data: &'static str,
    pub gone_sessions: &'static str,
    pub kept_events: &'static str,
    /// What the person types to confirm: this word, in either language, is accepted.
    pub confirm_word: &'static str,
    #[serde(skip)]
    pub confirm_label: fn(word: &str) -> String,
    pub submit: &'static str,
    pub cancel: &'static str,
}

#[derive(Serialize)]
pub struct Reset {
    pub title: &'static str,
    pub intro: &'static str,
    pub image_code: &'static str,
    pub image_code_placeholder: &'static str,
    pub submit: &'static str,
    pub back_to_login: &'static str,
}

#[derive(Serialize)]
pub struct ResetDone {
    pub title: &'static str,
    pub done: &'static str,
    pub qq_heading: &'static str,
    pub not_yours: &'static str,
    pub unlink: &'static str,
    pub to_account: &'static str,
}

/// The development stand-in for QQ's authorization page.
#[derive(Serialize)]
pub struct DevQq {
    pub title: &'static str,
    pub notice: &'static str,
    pub heading: &'static str,
    pub hint: &'static str,
    pub nickname: &'static str,
    pub default_nickname: &'static str,
    pub authorize: &'static str,
}

#[derive(Serialize)]
pub struct Sms {
    #[serde(skip)]
    pub sent: fn(masked_mobile: &str, minutes: u64) -> String,
    #[serde(skip)]
    pub dev_code: fn(code: &str) -> String,
    pub daily_limit: &'static str,
    pub hourly_limit: &'static str,
    pub too_frequent: &'static str,
    pub bad_number: &'static str,
    pub unsubscribed: &'static str,
}

/// The JSON API's own refusals of a malformed request.
#[derive(Serialize)]
pub struct Api {
    pub method_not_allowed: &'static str,
    pub missing_code: &'static str,
    pub body_unreadable: &'static str,
    pub bad_query: &'static str,
    pub bad_json: &'static str,
    pub bad_form: &'static str,
    pub bad_image_code_id: &'static str,
}

/// A failure as a person reads it: what happened, and what to do.
#[derive(Serialize, Clone, Copy)]
pub struct Message {
    pub title: &'static str,
    pub detail: &'static str,
}

/// Every failure's message ([`crate::error::AppError::explain`]).
#[derive(Serialize)]
pub struct Errors {
    pub state_missing: Message,
    pub state_mismatch: Message,
    pub state_expired: Message,
    pub no_code: Message,
    pub code_rejected: Message,
    pub qq_timeout: Message,
    pub qq_failed: Message,
    pub bind_token: Message,
    pub other_browser: Message,
    pub missing: Message,
    pub mobile: Message,
    pub password_length: Message,
    pub sms_code_format: Message,
    pub passwords_differ: Message,
    pub not_confirmed: Message,
    pub reauth_failed: Message,
    pub qq_linked_elsewhere: Message,
    pub only_way_in: Message,
    pub not_linked: Message,
    pub mobile_taken: Message,
    pub no_such_account: Message,
    pub disabled: Message,
    pub held_by_site: Message,
    pub gone: Message,
    pub csrf: Message,
    pub not_found: Message,
    pub unauthenticated: Message,
    pub reauth_required: Message,
    pub bad_request: Message,
    pub too_large: Message,
    pub headers_too_large: Message,
    pub body_timeout: Message,
    pub unsupported_media_type: Message,
    pub throttled: Message,
    pub hasher_busy: Message,
    pub token_used: Message,
    pub busy: Message,
    pub wrong_credentials: Message,
    pub wrong_password: Message,
    pub openid_taken: Message,
    pub user_has_other_qq: Message,
    pub not_proven: Message,
    pub sms_code_required: Message,
    pub sms_code_invalid: Message,
    pub sms_too_soon: Message,
    pub sms_daily_cap: Message,
    /// Its detail is the sender's own reason when there is one.
    pub sms_failed: Message,
    pub image_code_wrong: Message,
    pub sms_not_allowed: Message,
    pub linked_twice: Message,
    pub unavailable: Message,
    pub internal: Message,
}
