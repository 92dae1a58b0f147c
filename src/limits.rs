//! Limits on what a client may send, so that the binary holds when it is
//! reached without nginx in front (the container listens on 0.0.0.0): the
//! request's headers, and how long and how much of a body it may take.
//!
//! Every body this service reads is a small form or JSON object, so the body
//! is read here, whole and against a deadline, before any handler runs: a
//! client dripping a byte every few seconds gets a 408 instead of holding a
//! connection for as long as it likes. Keep-alive and the time allowed for a
//! request's head are the server's settings ([`crate::startup`]).

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::{ApiError, AppError, Malformed};
use crate::state::AppState;

/// The most a request's headers may add up to (names and values); beyond, 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most a request body may hold; beyond, 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a request was refused before any handler saw it.
enum Refusal {
    HeadersTooLarge,
    TooLarge,
    TimedOut,
    Unreadable,
}

/// Middleware for the pages: [`enforce`], refusals as pages.
pub async fn for_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    enforce(req, next, actix_web::Error::from).await
}

/// Middleware for the JSON API: [`enforce`], refusals as `{"message"}`.
pub async fn for_api(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    enforce(req, next, |e| ApiError(e).into()).await
}

/// Refuses oversized headers, and reads the body within
/// `QQLOGIN_BODY_TIMEOUT_MS` and [`MAX_BODY_BYTES`]; `face` renders a refusal.
/// A refusal leaves as a response, not an error, so that the middleware
/// outside (the security headers) treat it as every other.
async fn enforce<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
    face: fn(AppError) -> actix_web::Error,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let refuse = |refusal: Refusal| -> actix_web::Error {
        face(match refusal {
            Refusal::HeadersTooLarge => AppError::HeadersTooLarge,
            Refusal::TooLarge => AppError::TooLarge,
            Refusal::TimedOut => AppError::BodyTimeout,
            Refusal::Unreadable => AppError::BadRequest(Malformed::Body),
        })
    };
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Ok(req
            .error_response(refuse(Refusal::HeadersTooLarge))
            .map_into_right_body());
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let timeout = req
            .app_data::<web::Data<AppState>>()
            .map_or(Duration::from_secs(10), |s| s.body_timeout);
        let mut payload = req.take_payload();
        let body = match tokio::time::timeout(timeout, read_body(&mut payload)).await {
            Ok(Ok(body)) => body,
            Ok(Err(refusal)) => {
                return Ok(req.error_response(refuse(refusal)).map_into_right_body());
            }
            Err(_) => {
                return Ok(req
                    .error_response(refuse(Refusal::TimedOut))
                    .map_into_right_body());
            }
        };
        req.set_payload(Payload::from(body));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn read_body<S>(payload: &mut Payload<S>) -> Result<Bytes, Refusal>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Refusal::Unreadable)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Refusal::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
