//! The `webhook` sender: each code is POSTed to the operator's URL as JSON
//! `{"mobile", "code", "ttl_secs"}`, with `X-Qqlogin-Timestamp` (Unix
//! seconds) and `X-Qqlogin-Signature: sha256=<hex HMAC-SHA256 of the secret
//! over timestamp + "." + body>`, so the receiver can tell our requests from
//! forgeries and replays.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use super::SendError;
use crate::domain::{Mobile, SmsCode};
use crate::secret::hmac_sha256;

/// Header carrying the Unix time the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Qqlogin-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Qqlogin-Signature";

/// Tries in all: one retry covers a receiver restarting or a pooled
/// connection closed under us, while the person still waits only seconds.
const TRIES: u32 = 2;
/// Time allowed for one try, connection included.
const TRY_TIMEOUT: Duration = Duration::from_secs(4);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A short breath before the retry, so a receiver that just failed is not
/// hit again in the same instant.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub(super) struct Webhook {
    http: reqwest::Client,
    url: Url,
    secret: SecretString,
}

#[derive(Serialize)]
struct Payload<'a> {
    mobile: &'a str,
    code: &'a str,
    ttl_secs: u64,
}

impl Webhook {
    pub(super) fn new(url: Url, secret: SecretString) -> Result<Self, SendError> {
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(build_err("the webhook URL must be http:// or https://"));
        }
        if secret.expose_secret().is_empty() {
            return Err(build_err("the webhook secret is empty"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TRY_TIMEOUT)
            // The code goes to this URL only, never wherever it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qqlogin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Build {
                reason: "the HTTP client could not be built",
                source: Some(e.without_url()),
            })?;
        Ok(Self { http, url, secret })
    }

    pub(super) async fn send(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        ttl: Duration,
    ) -> Result<(), SendError> {
        let body = serde_json::to_vec(&Payload {
            mobile: mobile.as_str(),
            code: code.expose(),
            ttl_secs: ttl.as_secs(),
        })
        .map_err(|_| SendError::Malformed("the webhook body could not be serialised"))?;
        let mut try_number = 1;
        loop {
            match self.try_once(&body).await {
                Err(err) if try_number < TRIES && err.is_transient() => {
                    log::info!(
                        "SMS webhook try {try_number} of {TRIES} failed ({err}); trying again"
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                    try_number += 1;
                }
                done => return done,
            }
        }
    }

    /// One POST, signed afresh (a retry carries its own timestamp).
    async fn try_once(&self, body: &[u8]) -> Result<(), SendError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(self.secret.expose_secret().as_bytes(), timestamp, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .map_err(SendError::from_transport)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status.as_u16()))
        }
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `secret` over
/// `timestamp + "." + body`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        base16ct::lower::encode_string(&hmac_sha256(secret, &signed))
    )
}

fn build_err(reason: &'static str) -> SendError {
    SendError::Build {
        reason,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Python: hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
        let body = br#"{"mobile":"13800138000","code":"123456","ttl_secs":300}"#;
        assert_eq!(
            signature(b"secret", 1_700_000_000, body),
            "sha256=859efebc275f816117f274de386097cbb8ac031af4d13ade026560469f452838"
        );
    }

    #[test]
    fn the_body_has_exactly_the_contract_fields() {
        let body = serde_json::to_string(&Payload {
            mobile: "13800138000",
            code: "012345",
            ttl_secs: 300,
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"mobile":"13800138000","code":"012345","ttl_secs":300}"#
        );
    }

    #[test]
    fn an_empty_secret_is_refused() {
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert!(matches!(
            Webhook::new(url, SecretString::from(String::new())),
            Err(SendError::Build { .. })
        ));
    }
}
