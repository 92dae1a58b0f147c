//! What the trusted proxy tells about the request, applied: the client's
//! address for throttles and logs, and `Secure` on our cookies when the
//! client spoke https to the proxy ([`crate::proxy`] decides whom to believe).

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, SET_COOKIE, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};

use crate::events::Client;
use crate::proxy::TrustedProxies;
use crate::session::SESSION_COOKIE;
use crate::session::attempt::{API_OAUTH_COOKIE, OAUTH_COOKIE};
use crate::session::csrf::CSRF_COOKIE;
use crate::state::AppState;

fn proxies(req: &HttpRequest) -> Option<&TrustedProxies> {
    req.app_data::<web::Data<AppState>>()
        .map(|s| &s.trusted_proxies)
}

/// The client's address, for throttling and logs.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    match proxies(req) {
        Some(proxies) => proxies.client_ip(peer, req.headers()),
        None => peer,
    }
}

/// Where the request came from, for sign-in events: address and browser.
pub fn client(req: &HttpRequest) -> Client {
    Client {
        address: client_ip(req),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Middleware: behind a TLS-terminating proxy, our cookies (the session's,
/// the QQ login's) are marked `Secure` whenever the client's side of the
/// connection was https.
pub async fn secure_cookie_behind_tls(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = proxies(req.request())
        .is_some_and(|p| p.forwarded_https(req.peer_addr().map(|a| a.ip()), req.headers()));
    let mut response = next.call(req).await?;
    if https {
        let headers = response.headers_mut();
        let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).cloned().collect();
        headers.remove(SET_COOKIE);
        for cookie in cookies {
            let value = cookie.to_str().unwrap_or_default();
            let ours = [
                SESSION_COOKIE,
                OAUTH_COOKIE,
                API_OAUTH_COOKIE,
                CSRF_COOKIE,
                crate::i18n::COOKIE,
            ]
            .iter()
            .any(|name| value.starts_with(name));
            let secured = if ours && !value.contains("; Secure") {
                HeaderValue::from_str(&format!("{value}; Secure")).unwrap_or(cookie)
            } else {
                cookie
            };
            headers.append(SET_COOKIE, secured);
        }
    }
    Ok(response)
}
