//! A `SECRET_KEY` change without logging everyone out: while
//! `SECRET_KEY_PREVIOUS` is set, a session cookie encrypted under the previous
//! key is re-encrypted under the current one on its way in. Nothing is ever
//! written with the previous key.

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{COOKIE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::session::SESSION_COOKIE;
use crate::state::AppState;

/// Middleware: put before the session middleware.
pub async fn accept_previous_key(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let Some(state) = state
        && let Some(previous) = &state.keys.cookie_previous
    {
        let rewritten = req
            .headers()
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|header| reencrypt(header, SESSION_COOKIE, &state.keys.cookie, previous))
            .and_then(|header| HeaderValue::from_str(&header).ok());
        if let Some(header) = rewritten {
            req.headers_mut().insert(COOKIE, header);
        }
    }
    next.call(req).await
}

/// The `Cookie` header with cookie `name` re-encrypted under `current`, when it
/// was encrypted under `previous`; `None` when there is nothing to change.
pub fn reencrypt(header: &str, name: &str, current: &Key, previous: &Key) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = header
        .split(';')
        .map(str::trim)
        .map(|part| {
            // actix writes cookie values percent-encoded.
            let Ok(cookie) = Cookie::parse_encoded(part.to_owned()) else {
                return part.to_owned();
            };
            if cookie.name() != name
                || CookieJar::new()
                    .private(current)
                    .decrypt(cookie.clone())
                    .is_some()
            {
                return part.to_owned();
            }
            match CookieJar::new().private(previous).decrypt(cookie) {
                Some(plain) => {
                    let mut jar = CookieJar::new();
                    jar.private_mut(current).add(plain);
                    changed = true;
                    jar.get(name)
                        .map_or_else(|| part.to_owned(), |c| c.encoded().to_string())
                }
                None => part.to_owned(),
            }
        })
        .collect();
    changed.then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypted(key: &Key, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(SESSION_COOKIE, value.to_owned()));
        jar.get(SESSION_COOKIE).unwrap().encoded().to_string()
    }

    fn decrypt(key: &Key, header: &str) -> Option<String> {
        let part = header.split("; ").find(|p| p.starts_with(SESSION_COOKIE))?;
        let cookie = Cookie::parse_encoded(part.to_owned()).ok()?;
        CookieJar::new()
            .private(key)
            .decrypt(cookie)
            .map(|c| c.value().to_owned())
    }

    #[test]
    fn a_cookie_under_the_previous_key_is_reencrypted_under_the_current_one() {
        let (current, previous) = (Key::generate(), Key::generate());
        let header = format!("other=1; {}", encrypted(&previous, "session-key"));
        let rewritten = reencrypt(&header, SESSION_COOKIE, &current, &previous).unwrap();
        assert_eq!(
            decrypt(&current, &rewritten).as_deref(),
            Some("session-key")
        );
        assert!(rewritten.starts_with("other=1; "));
    }

    #[test]
    fn current_and_foreign_cookies_are_left_alone() {
        let (current, previous, foreign) = (Key::generate(), Key::generate(), Key::generate());
        assert_eq!(
            reencrypt(
                &encrypted(&current, "k"),
                SESSION_COOKIE,
                &current,
                &previous
            ),
            None
        );
        assert_eq!(
            reencrypt(
                &encrypted(&foreign, "k"),
                SESSION_COOKIE,
                &current,
                &previous
            ),
            None
        );
        assert_eq!(
            reencrypt("garbage;;=", SESSION_COOKIE, &current, &previous),
            None
        );
    }
}
