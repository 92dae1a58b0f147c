//! The integration tests: one binary, a module per feature. Each test starts
//! the real application on a random port, with its own database and its own
//! stand-in QQ server.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod fake_qq;
mod qq_client;
