//! CSRF tokens for the forms, as a signed double-submit cookie of their own.
//!
//! A form's hidden `csrf_token` must equal the value of this browser's
//! `qqlogin_csrf` cookie, which no other site can read, and whose signature
//! (the cookie key's HMAC) no other site, not even a sibling subdomain that
//! can plant cookies, can make. Keeping it out of the session means showing a
//! form to a visitor without a session writes nothing on the server; a
//! session row exists only once someone logs in or binds. It is renewed at
//! every login, so a token seen before the login is worthless after it.

use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::{HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use crate::token::Keys;

/// The cookie that carries the token.
pub const CSRF_COOKIE: &str = "qqlogin_csrf";

/// This browser's CSRF token, and whether the browser has yet to be given it.
pub struct CsrfToken {
    value: String,
    fresh: bool,
}

impl CsrfToken {
    /// The token this browser holds, or a new one if it holds none of ours.
    pub fn of(req: &HttpRequest, keys: &Keys) -> Self {
        match held(req, keys) {
            Some(value) => Self {
                value,
                fresh: false,
            },
            None => Self::renewed(),
        }
    }

    /// A new token, replacing whatever the browser holds (at login).
    pub fn renewed() -> Self {
        Self {
            value: crate::secret::random_token(),
            fresh: true,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Gives the browser its token, if it has yet to get it.
    pub fn attach(&self, response: &mut HttpResponse, keys: &Keys, secure: bool) {
        if !self.fresh {
            return;
        }
        let mut jar = CookieJar::new();
        jar.signed_mut(&keys.cookie).add(
            Cookie::build(CSRF_COOKIE, self.value.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Lax)
                .finish(),
        );
        if let Some(cookie) = jar.get(CSRF_COOKIE) {
            // Fails only for a malformed cookie, which ours never is.
            let _ = response.add_cookie(cookie);
        }
    }

    /// Whether `given` (a form's field) is this browser's token, compared in constant time.
    pub fn matches(req: &HttpRequest, keys: &Keys, given: &str) -> bool {
        held(req, keys).is_some_and(|held| bool::from(held.as_bytes().ct_eq(given.as_bytes())))
    }
}

/// The token in this browser's cookie, if its signature is ours (under the
/// current key, or the previous one during a key change).
fn held(req: &HttpRequest, keys: &Keys) -> Option<String> {
    let cookie = req.cookie(CSRF_COOKIE)?;
    std::iter::once(&keys.cookie)
        .chain(&keys.cookie_previous)
        .find_map(|key| CookieJar::new().signed(key).verify(cookie.clone()))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys(c: char) -> Keys {
        Keys::derive(&SecretString::from(c.to_string().repeat(64)))
    }

    fn cookie_of(response: &HttpResponse) -> Cookie<'static> {
        response
            .cookies()
            .find(|c| c.name() == CSRF_COOKIE)
            .expect("a CSRF cookie")
            .into_owned()
    }

    #[test]
    fn a_token_matches_only_with_its_signed_cookie() {
        let keys = keys('a');
        let token = CsrfToken::renewed();
        let mut response = HttpResponse::Ok().finish();
        token.attach(&mut response, &keys, true);
        let cookie = cookie_of(&response);
        assert!(cookie.http_only().unwrap_or(false) && cookie.secure().unwrap_or(false));

        let req = actix_web::test::TestRequest::default()
            .cookie(cookie.clone())
            .to_http_request();
        assert!(CsrfToken::matches(&req, &keys, token.as_str()));
        assert!(!CsrfToken::matches(&req, &keys, "something else"));
        assert!(!CsrfToken::matches(&req, &self::keys('b'), token.as_str()));
        assert_eq!(CsrfToken::of(&req, &keys).as_str(), token.as_str());

        // The bare value, planted without our signature, is no token.
        let planted = actix_web::test::TestRequest::default()
            .cookie(Cookie::new(CSRF_COOKIE, token.as_str().to_owned()))
            .to_http_request();
        assert!(!CsrfToken::matches(&planted, &keys, token.as_str()));
    }

    #[test]
    fn a_token_the_browser_holds_is_not_sent_again() {
        let keys = keys('a');
        let mut first = HttpResponse::Ok().finish();
        let token = CsrfToken::renewed();
        token.attach(&mut first, &keys, false);
        let req = actix_web::test::TestRequest::default()
            .cookie(cookie_of(&first))
            .to_http_request();
        let mut again = HttpResponse::Ok().finish();
        CsrfToken::of(&req, &keys).attach(&mut again, &keys, false);
        assert_eq!(again.cookies().count(), 0);
    }
}
