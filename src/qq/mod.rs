//! QQ Connect (QQ互联) OAuth 2.0: the authorize URL, and the server-side
//! calls that turn a callback's code into an OpenID and a nickname.
//!
//! `answer` holds the pure parsers for QQ's several answer formats, `client`
//! the HTTP side, `error` the one error type both share; `stand_in` is the
//! other side, a QQ for development mode, the tests and the benchmark.

pub mod answer;
pub mod client;
pub mod error;
pub mod stand_in;

pub use answer::{AccessToken, MeAnswer, UserInfo};
pub use client::{Display, QqClient, QqConfig, QqIdentity};
pub use error::QqError;
