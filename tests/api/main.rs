//! The integration tests: one binary, a module per feature. Each test starts
//! the real application on a random port, with its own database and its own
//! stand-in QQ server.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod account_centre;
mod bind_page;
mod bind_token;
mod browser;
mod cli;
mod concurrency;
mod django;
mod hardening;
mod helpers;
mod image_codes;
mod json_api;
mod language;
mod login_flow;
mod logs;
mod meiduo_front;
mod metrics;
mod oauth_state;
mod operations;
mod password_reset;
mod qq_client;
mod qq_faults;
mod security;
mod shared_tables;
mod site;
#[path = "../support/skip.rs"]
mod skip;
mod sms_codes;
mod sms_senders;
#[path = "../support/sms_webhook.rs"]
mod sms_webhook;
mod startup;
mod storage;
mod unionid;
