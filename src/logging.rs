//! Logs: one line per event, as text or, with `QQLOGIN_LOG_FORMAT=json`, one
//! JSON object per line for the pipelines operators run; and the request id
//! that ties together a request's log lines, its `X-Request-Id` header and
//! the error page a person may quote.

use std::io::Write;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use serde_json::{Map, Value, json};

/// The JSON access log's target: `RUST_LOG=qqlogin::access=warn` silences
/// it alone. (The text format's is actix-web's `Logger`'s.)
pub const ACCESS_LOG_TARGET: &str = "qqlogin::access";
/// The header that carries a request's id, both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a proxy's header.
const MAX_ID_LEN: usize = 64;

/// How log lines are written (`QQLOGIN_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time level target] message`.
    Text,
    /// One JSON object per line.
    Json,
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// env_logger, level from `RUST_LOG` (default `info`), one line per event:
/// messages carrying newlines (PostgreSQL's errors do) are folded, so log
/// shippers never split an event. actix-session's per-request chatter about
/// stale cookies is kept at `warn`.
pub fn init(format: LogFormat) {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_session=warn"),
    )
    .format(move |buf, record| {
        let message = record.args().to_string();
        match format {
            LogFormat::Text => writeln!(
                buf,
                "[{} {:<5} {}] {}",
                buf.timestamp(),
                record.level(),
                record.target(),
                message.trim_end().replace('\n', " ")
            ),
            LogFormat::Json => {
                // The access log's message is its fields already.
                let mut line = match serde_json::from_str::<Map<String, Value>>(&message) {
                    Ok(fields) if record.target() == ACCESS_LOG_TARGET => fields,
                    _ => Map::from_iter([("message".to_owned(), json!(message.trim_end()))]),
                };
                line.insert("time".to_owned(), json!(buf.timestamp().to_string()));
                line.insert("level".to_owned(), json!(record.level().as_str()));
                line.insert("target".to_owned(), json!(record.target()));
                if let Some(id) = current_request_id() {
                    line.entry("request_id").or_insert(json!(id));
                }
                writeln!(buf, "{}", Value::Object(line))
            }
        }
    })
    .init();
}

/// Middleware, outermost: gives the request an id (a trusted proxy's
/// `X-Request-Id` when it is a plain token, else a new one), serves it with
/// the id in scope, answers with the id in `X-Request-Id`, and, in the JSON
/// format, writes the access log's line.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(crate::secret::short_token, str::to_owned);
    let json = req
        .app_data::<web::Data<LogFormat>>()
        .is_some_and(|f| *f.get_ref() == LogFormat::Json);
    let started = Instant::now();
    let client = crate::routes::client_ip(req.request());
    let (method, path) = (req.method().to_string(), req.path().to_owned());
    let served = REQUEST_ID.scope(id.clone(), next.call(req)).await;
    // An error that no handler turned into a response (a middleware's: the
    // database away) is answered further out, without the id.
    let status = match &served {
        Ok(response) => response.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let logged = json && path != "/healthz";
    if logged && log::log_enabled!(target: ACCESS_LOG_TARGET, log::Level::Info) {
        let line = json!({
            "request_id": id,
            "client": client.map(|ip| ip.to_string()),
            "method": method,
            // Never the query: it carries codes and tokens.
            "path": path,
            "status": status.as_u16(),
            "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        });
        log::info!(target: ACCESS_LOG_TARGET, "{line}");
    }
    let mut response = served?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response)
}
