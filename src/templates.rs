//! The pages, as askama templates compiled into the binary. Every value is
//! HTML-escaped by askama; nothing here is marked `|safe`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub username: Option<&'a str>,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "oauth/bind.html")]
pub struct BindPage<'a> {
    pub access_token: &'a str,
    pub nickname: Option<&'a str>,
    /// The QQ avatar: https, on QQ's own hosts ([`crate::domain::AvatarUrl`]).
    pub avatar: Option<&'a str>,
    /// The mobile typed, kept in both ways' forms.
    pub mobile: &'a str,
    /// A refusal that concerns neither way: the QQ login itself.
    pub error: Option<&'a str>,
    /// "I already have an account": its mobile and password.
    pub existing: WayView<'a>,
    /// "I am new here": mobile, SMS code, new password.
    pub new: WayView<'a>,
    /// Linking an existing account takes an SMS code too (`QQLOGIN_BIND_REQUIRE_SMS=always`).
    pub existing_needs_code: bool,
    /// The token itself is unusable: offer to start the QQ login again.
    pub restart: bool,
    pub csrf_token: &'a str,
    /// The operator's privacy notice (`QQLOGIN_PRIVACY_URL`).
    pub privacy_url: Option<&'a str>,
}

/// A form field a refusal concerns, to be shown beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Mobile,
    SmsCode,
    Password,
}

/// One of the bind page's two ways, as the page shows it: what happened to
/// the person's last request there, beside the field it concerns.
#[derive(Default)]
pub struct WayView<'a> {
    /// A refusal that concerns no field of this way's form.
    pub error: Option<&'a str>,
    pub mobile_error: Option<&'a str>,
    pub sms_code_error: Option<&'a str>,
    pub password_error: Option<&'a str>,
    /// What went well (a code was sent).
    pub notice: Option<&'a str>,
    /// Seconds before another code may be asked for (0: now): the button counts them down.
    pub resend_in: u64,
}

impl<'a> WayView<'a> {
    /// `message` beside `field`, or above the form when it concerns no
    /// field, or one this way's form lacks (`has_sms_code`).
    pub fn refused(message: &'a str, field: Option<Field>, has_sms_code: bool) -> Self {
        let mut way = Self::default();
        let slot = match field {
            Some(Field::Mobile) => &mut way.mobile_error,
            Some(Field::SmsCode) if has_sms_code => &mut way.sms_code_error,
            Some(Field::Password) => &mut way.password_error,
            Some(Field::SmsCode) | None => &mut way.error,
        };
        *slot = Some(message);
        way
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub detail: &'a str,
    pub action_href: &'a str,
    pub action_label: &'a str,
    /// The request's id, for a person to quote (failures only).
    pub request_id: Option<&'a str>,
}

/// Renders `page` with `status`. Pages carry personal data or tokens, so no
/// cache may keep them.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, askama::Error> {
    let html = page.render()?;
    Ok(HttpResponseBuilder::new(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(html))
}

/// The linked QQ account, as the account centre shows it.
pub struct QqView {
    pub nickname: String,
    /// An https URL on QQ's avatar hosts.
    pub avatar: Option<String>,
    pub linked_at: String,
}

/// A live session, as the account centre lists it.
pub struct SessionView {
    pub handle: String,
    pub since: String,
    pub address: String,
    pub agent: String,
    pub current: bool,
}

/// A sign-in, as the account centre lists it.
pub struct SignInView {
    pub at: String,
    pub method: &'static str,
    pub address: String,
    pub agent: String,
    pub ok: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub username: &'a str,
    /// Partly masked.
    pub mobile: &'a str,
    pub has_password: bool,
    pub qq: Option<QqView>,
    pub sessions: Vec<SessionView>,
    pub sign_ins: Vec<SignInView>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// The new mobile typed, kept when the page comes back.
    pub new_mobile: &'a str,
    pub resend_in: u64,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "account/verify.html")]
pub struct VerifyPage<'a> {
    pub has_password: bool,
    /// Partly masked: where the code goes.
    pub mobile: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub resend_in: u64,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "account/delete.html")]
pub struct DeletePage<'a> {
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "password/reset.html")]
pub struct ResetPage<'a> {
    pub mobile: &'a str,
    pub image_code_id: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub resend_in: u64,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "password/reset_done.html")]
pub struct ResetDonePage<'a> {
    pub qq: Option<QqView>,
    pub error: Option<&'a str>,
    pub csrf_token: &'a str,
}
