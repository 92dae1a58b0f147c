//! How an SMS code leaves the service (`QQLOGIN_SMS_SENDER`): into the log
//! in development, as a signed JSON POST to the operator's webhook, or
//! through Tencent Cloud SMS.
//!
//! [`Sender`] is built once at start and shared; [`SendError`] is the one
//! error type of this layer: its `Display` is the operator's line (never a
//! code, a key or a whole mobile number), [`SendError::message`] what the
//! person is told.

pub mod tc3;
mod tencent_cloud;
mod webhook;

pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature as webhook_signature};

use std::time::Duration;

use crate::config::SenderConfig;
use crate::domain::{Mobile, SmsCode};

/// The longest answer read from a provider. Tencent Cloud's are a few
/// hundred bytes; the cap keeps a broken upstream from making us buffer more.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest provider message kept for the log, in characters.
const MAX_PROVIDER_MESSAGE_CHARS: usize = 200;

/// Sends SMS codes. Built once from the settings; cheap to clone (clones
/// share one connection pool).
#[derive(Clone)]
pub struct Sender {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Log,
    Webhook(webhook::Webhook),
    TencentCloud(tencent_cloud::TencentCloud),
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("kind", &self.name())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Checks the configuration and builds the HTTP client the sender keeps
    /// (with its connect and total time-outs).
    pub fn new(config: &SenderConfig) -> Result<Self, SendError> {
        let kind = match config {
            SenderConfig::Log => Kind::Log,
            SenderConfig::Webhook { url, secret } => {
                Kind::Webhook(webhook::Webhook::new(url.clone(), secret.clone())?)
            }
            SenderConfig::TencentCloud(tc) => {
                Kind::TencentCloud(tencent_cloud::TencentCloud::new(tc.clone())?)
            }
        };
        Ok(Self { kind })
    }

    /// Sends `code` to `mobile`, valid `ttl`. Never logs the code (except
    /// the log sender, whose job that is). A failure is logged here, once,
    /// with what the operator needs; the caller shows
    /// [`SendError::message`] and need not log it again.
    pub async fn send(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        ttl: Duration,
    ) -> Result<(), SendError> {
        let sent = match &self.kind {
            Kind::Log => {
                log::warn!(
                    "development SMS sender (QQLOGIN_SMS_SENDER=log), nothing leaves this machine: \
                     code {} for mobile {}, valid {} minutes",
                    code.expose(),
                    mobile.as_str(),
                    ttl_minutes(ttl)
                );
                Ok(())
            }
            Kind::Webhook(webhook) => webhook.send(mobile, code, ttl).await,
            Kind::TencentCloud(tc) => tc.send(mobile, code, ttl).await,
        };
        if let Err(err) = &sent {
            let masked = mobile.masked();
            let chain = error_chain(err);
            if err.is_operator_problem() {
                log::error!("SMS to {masked} via {} failed: {chain}", self.name());
            } else {
                log::warn!("SMS to {masked} via {} refused: {chain}", self.name());
            }
        }
        sent
    }

    /// True for the log sender: development pages show the code as a notice.
    pub fn shows_code(&self) -> bool {
        matches!(self.kind, Kind::Log)
    }

    /// The sender's name as `QQLOGIN_SMS_SENDER` spells it.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Log => "log",
            Kind::Webhook(_) => "webhook",
            Kind::TencentCloud(_) => "tencentcloud",
        }
    }
}

/// Why a code was not sent. The `Display` texts are fixed English for the
/// log; none carries the code, a key, a URL or a whole mobile number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The sender could not be built from its configuration.
    #[error("the SMS sender could not be set up: {reason}")]
    Build {
        reason: &'static str,
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The provider did not answer within the time allowed.
    #[error("the SMS provider did not answer in time")]
    Timeout,

    /// The provider could not be reached, or the connection broke mid-answer.
    /// The source has had its URL removed.
    #[error("the SMS provider could not be reached")]
    Unreachable {
        #[source]
        source: reqwest::Error,
    },

    /// The provider answered with an HTTP status other than 2xx.
    #[error("the SMS provider answered with HTTP status {0}")]
    Status(u16),

    /// The provider's answer was larger than we read.
    #[error("the SMS provider's answer was too large")]
    TooLarge,

    /// The provider's answer could not be understood; the text says which
    /// part, never quoting the body.
    #[error("the SMS provider's answer could not be understood: {0}")]
    Malformed(&'static str),

    /// Tencent Cloud refused the request as a whole (`Response.Error`), e.g.
    /// `AuthFailure.SignatureFailure`.
    #[error("Tencent Cloud refused the request: {code}: {message} (RequestId {request_id})")]
    Refused {
        code: String,
        message: String,
        request_id: String,
    },

    /// Tencent Cloud took the request but did not send to this number
    /// (`SendStatusSet[0].Code`), e.g. `LimitExceeded.PhoneNumberDailyLimit`.
    #[error("Tencent Cloud did not send to the number: {code}: {message} (RequestId {request_id})")]
    NotSent {
        code: String,
        message: String,
        request_id: String,
    },
}

impl SendError {
    /// What the person is told, in the request's language: "短信发送失败，请稍后再试",
    /// or more specific where the provider says why.
    pub fn message(&self) -> &'static str {
        let try_later = crate::i18n::texts().errors.sms_failed.detail;
        match self {
            SendError::Refused { code, .. } | SendError::NotSent { code, .. } => {
                tencent_cloud::person_message(code).unwrap_or(try_later)
            }
            _ => try_later,
        }
    }

    /// The provider's own code, when it gave one.
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            SendError::Refused { code, .. } | SendError::NotSent { code, .. } => Some(code),
            _ => None,
        }
    }

    /// False when the refusal is about this number (its limits at the
    /// provider, a wrong number), which needs nothing from the operator;
    /// true for outages and misconfiguration.
    pub fn is_operator_problem(&self) -> bool {
        match self {
            SendError::Refused { code, .. } | SendError::NotSent { code, .. } => {
                tencent_cloud::person_message(code).is_none()
            }
            _ => true,
        }
    }

    /// Worth another try: the provider may not have seen the request, or
    /// failed on its side. Never after a 4xx, which would fail again.
    fn is_transient(&self) -> bool {
        match self {
            SendError::Timeout | SendError::Unreachable { .. } => true,
            SendError::Status(status) => *status >= 500,
            _ => false,
        }
    }

    /// Turns a reqwest error into a variant, dropping the URL (a webhook's
    /// may carry a token) before the error is kept anywhere.
    fn from_transport(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            SendError::Timeout
        } else {
            SendError::Unreachable { source: err }
        }
    }
}

/// The validity in whole minutes, rounded up, at least one: what a
/// template's "valid N minutes" says.
fn ttl_minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

/// The error and its sources on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// A provider's free-text message made safe for one log line: control
/// characters become spaces, and it is cut to a sane length.
fn clean_provider_text(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_PROVIDER_MESSAGE_CHARS)
        .collect()
}

/// Reads the body chunk by chunk, giving up as soon as it passes the cap.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, SendError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(SendError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(SendError::from_transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(SendError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up() {
        assert_eq!(ttl_minutes(Duration::from_secs(300)), 5);
        assert_eq!(ttl_minutes(Duration::from_secs(301)), 6);
        assert_eq!(ttl_minutes(Duration::from_secs(0)), 1);
    }

    #[test]
    fn provider_text_is_one_short_line() {
        assert_eq!(clean_provider_text(" a\nb\u{1b}c "), "a b c");
        assert_eq!(clean_provider_text(&"字".repeat(1000)).chars().count(), 200);
    }

    #[test]
    fn only_the_log_sender_shows_the_code() {
        assert!(Sender::new(&SenderConfig::Log).unwrap().shows_code());
        let webhook = SenderConfig::Webhook {
            url: url::Url::parse("http://127.0.0.1:9/sms").unwrap(),
            secret: "s3cret".into(),
        };
        let sender = Sender::new(&webhook).unwrap();
        assert!(!sender.shows_code());
        assert!(!format!("{sender:?}").contains("s3cret"));
    }

    #[test]
    fn transport_and_status_failures_tell_the_person_to_try_later() {
        assert_eq!(SendError::Timeout.message(), "短信发送失败，请稍后再试");
        assert_eq!(SendError::Status(500).message(), "短信发送失败，请稍后再试");
        assert!(SendError::Status(503).is_transient());
        assert!(!SendError::Status(401).is_transient());
        assert!(SendError::Timeout.is_operator_problem());
    }
}
