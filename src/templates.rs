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
    pub mobile: &'a str,
    pub error: Option<&'a str>,
    /// What happened to the person's last request, when it went well (a code was sent).
    pub notice: Option<&'a str>,
    /// Seconds before another code may be asked for (0: now): the button counts them down.
    pub resend_in: u64,
    /// The token itself is unusable: offer to start the QQ login again.
    pub restart: bool,
    pub csrf_token: &'a str,
    /// The operator's privacy notice (`QQLOGIN_PRIVACY_URL`).
    pub privacy_url: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub detail: &'a str,
    pub action_href: &'a str,
    pub action_label: &'a str,
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
