//! TEMPORARY stand-in until the senders land (branch sms-senders).
use std::time::Duration;

use crate::config::SenderConfig;
use crate::domain::{Mobile, SmsCode};

pub struct Sender;

#[derive(Debug, thiserror::Error)]
#[error("send failed")]
pub struct SendError;

impl SendError {
    pub fn message(&self) -> &'static str {
        "短信发送失败，请稍后再试"
    }
}

impl Sender {
    pub fn new(_config: &SenderConfig) -> Result<Self, SendError> {
        Ok(Self)
    }
    pub async fn send(&self, mobile: &Mobile, code: &SmsCode, _ttl: Duration) -> Result<(), SendError> {
        log::warn!("SMS code for {}: {}", mobile.as_str(), code.expose());
        Ok(())
    }
    pub fn shows_code(&self) -> bool {
        true
    }
}
