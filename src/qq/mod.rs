//! QQ Connect (QQ互联) OAuth 2.0: the authorize URL, and the server-side
//! calls that turn a callback's code into an OpenID and a nickname.
//!
//! `answer` holds the pure parsers for QQ's several answer formats, `client`
//! the HTTP side, `error` the one error type both share.

pub mod answer;
pub mod client;
pub mod error;

pub use answer::{AccessToken, MeAnswer, UserInfo};
pub use client::{Display, QqClient, QqConfig, QqIdentity};
pub use error::QqError;
