//! The language switcher on every page (`POST /lang`): it sets the `lang`
//! cookie, which wins over `Accept-Language` from then on, and shows the
//! same page again in the language chosen.
//!
//! No CSRF token: another site that switches someone's language changes
//! nothing of theirs, and the error pages, which have no token, carry the
//! switcher too.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::header::{CONTENT_LANGUAGE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use super::{oauth, see_other};
use crate::domain::LocalPath;
use crate::error::{AppError, Malformed};
use crate::i18n::{self, COOKIE, Lang};
use crate::session::UserSession;
use crate::state::AppState;

/// How long the choice is kept.
const KEPT: Duration = Duration::days(365);

#[derive(Deserialize)]
pub struct SwitchForm {
    lang: String,
    /// The page to show again: a path on this site.
    back: Option<String>,
    /// The bind page cannot be fetched again: it sends its token instead.
    access_token: Option<String>,
}

pub async fn switch(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let lang = Lang::of_tag(&form.lang).ok_or(AppError::BadRequest(Malformed::Form))?;
    let mut response = match form.access_token.as_deref() {
        Some(token) => {
            let mut page = i18n::speaking(lang, async {
                oauth::bind_page_again(&req, &state, &session, token)
                    .unwrap_or_else(|e| e.error_response())
            })
            .await;
            page.headers_mut()
                .insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
            page
        }
        None => see_other(LocalPath::sanitize(form.back.as_deref()).as_str()),
    };
    let cookie = Cookie::build(COOKIE, lang.tag())
        .path("/")
        .max_age(KEPT)
        .same_site(SameSite::Lax)
        .http_only(true)
        .finish();
    response
        .add_cookie(&cookie)
        .map_err(|_| AppError::BadRequest(Malformed::Form))?;
    Ok(response)
}
