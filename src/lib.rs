//! qqlogin: log in with QQ (QQ互联) — pages for browsers and the original JSON
//! API for single-page front ends, on SQLite or PostgreSQL.
//!
//! `main.rs` only reads settings and calls [`startup::Application`]; everything
//! is here so that tests build the real application.

pub mod account;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod flow;
#[cfg(test)]
mod fuzz_tests;
pub mod i18n;
pub mod image_code;
pub mod import;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod password;
pub mod proxy;
pub mod qq;
pub mod routes;
pub mod secret;
pub mod session;
pub mod site;
pub mod sms;
pub mod startup;
pub mod state;
pub mod templates;
pub mod throttle;
pub mod token;
