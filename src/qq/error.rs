//! What can go wrong talking to QQ Connect.
//!
//! Every Display text here is fixed English meant for logs. None of them may
//! carry a URL, an authorization code, an access token or the app key: the
//! requests to QQ put all of those in the query string, and reqwest errors
//! print their URL. So transport errors are always stripped with
//! `without_url()` before they are stored, and QQ's own free-text message is
//! scrubbed of the secrets the request carried (see [`QqError::redact`]).

use thiserror::Error;

/// The longest QQ error description kept, in characters. QQ's are short;
/// anything longer is noise that would only bloat logs.
const MAX_MESSAGE_CHARS: usize = 200;

/// An error from a call to QQ Connect.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QqError {
    /// QQ did not answer within the time allowed.
    #[error("QQ did not answer in time")]
    Timeout,

    /// QQ could not be reached, or the connection broke mid-answer.
    ///
    /// The source has had its URL removed, so it is safe to log the chain.
    #[error("QQ could not be reached")]
    Unreachable {
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },

    /// QQ answered with an HTTP status other than 2xx.
    #[error("QQ answered with HTTP status {0}")]
    Status(u16),

    /// QQ answered with one of its error codes (for example 100020, "code is
    /// reused error"), either as `error`/`error_description` or as
    /// `ret`/`msg`.
    #[error("QQ refused the request with code {code}: {message}")]
    Api {
        /// QQ's numeric error code (`error` or `ret`).
        code: i64,
        /// QQ's description, cleaned of control characters, shortened and
        /// scrubbed of the secrets the request carried.
        message: String,
    },

    /// QQ's answer could not be understood. The text says which part was
    /// wrong; it never quotes the body, which may hold a token.
    #[error("QQ's answer could not be understood: {0}")]
    Malformed(&'static str),

    /// QQ's answer was larger than the client is willing to read.
    #[error("QQ's answer was too large")]
    TooLarge,

    /// QQ's `/oauth2.0/me` said the access token belongs to another app.
    /// A token obtained through someone else's app must never log anyone in
    /// to this one.
    #[error("the access token was issued to another QQ app")]
    WrongClient,

    /// The authorization code from the browser is empty or has a shape no
    /// QQ code has, so it was not sent to QQ at all.
    #[error("the authorization code is empty or malformed")]
    InvalidCode,

    /// The client could not be built from its configuration.
    #[error("the QQ client could not be set up: {reason}")]
    Build {
        /// What was wrong.
        reason: &'static str,
        /// The underlying error, when reqwest refused to build.
        #[source]
        source: Option<reqwest::Error>,
    },
}

/// QQ codes that mean "this login attempt is spent; start again".
///
/// * 100019 — the code could not be exchanged: unknown, or past its
///   10-minute life. Typical after a slow person or a reloaded callback page.
/// * 100020 — the code was already used. Happens on a double-submitted or
///   reloaded callback; a fresh login gets a fresh code.
/// * 100013, 100014, 100015, 100016 — the access token is illegal, expired,
///   revoked, or failed QQ's check. The token came from an exchange moments
///   earlier, so this means the grant went stale or was withdrawn; a new login
///   issues a new one.
/// * 100030 — the person has not granted (or has withdrawn) the permission
///   the call needs; logging in again asks them again.
/// * 1002 — `get_user_info`'s "not logged in": the token no longer stands
///   for a login.
///
/// Deliberately left out: 100010 (redirect URI not registered), 100008,
/// 100009, 100011 (app id / app key / app state) and the "missing parameter"
/// family 100000–100007. Those are configuration or programming errors that
/// no amount of retrying by the person will fix, so they should surface as an
/// operator problem rather than a "please try again" page.
const RESTART_CODES: &[i64] = &[
    100_013, 100_014, 100_015, 100_016, 100_019, 100_020, 100_030, 1002,
];

impl QqError {
    /// QQ's own error code, when QQ gave one.
    pub fn qq_code(&self) -> Option<i64> {
        match self {
            QqError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this is a refusal that the person fixes by starting the login
    /// again (a spent, expired or unknown code, or a token QQ no longer
    /// honours), as opposed to an outage or a misconfiguration.
    ///
    /// [`QqError::InvalidCode`] counts too: a mangled callback URL is
    /// likewise cured by a fresh login.
    pub fn is_rejected_code(&self) -> bool {
        match self {
            QqError::Api { code, .. } => RESTART_CODES.contains(code),
            QqError::InvalidCode => true,
            _ => false,
        }
    }

    /// Builds an [`QqError::Api`] from QQ's code and description, making the
    /// description safe to log: control characters become spaces and it is
    /// cut to a sane length.
    pub(crate) fn api(code: i64, message: &str) -> QqError {
        let message: String = message
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_MESSAGE_CHARS)
            .collect();
        QqError::Api { code, message }
    }

    /// Removes every occurrence of the given secrets from QQ's message.
    ///
    /// QQ is not known to echo parameters back, but its descriptions are
    /// outside our control and end up in logs, so the code, token or app key
    /// the request carried are blotted out rather than trusted not to appear.
    pub(crate) fn redact(self, secrets: &[&str]) -> QqError {
        match self {
            QqError::Api { code, mut message } => {
                for secret in secrets.iter().filter(|s| !s.is_empty()) {
                    if message.contains(secret) {
                        message = message.replace(secret, "[redacted]");
                    }
                }
                QqError::Api { code, message }
            }
            other => other,
        }
    }

    /// Turns a reqwest error into a variant, dropping the URL (which holds
    /// the code or token) before the error is kept anywhere.
    pub(crate) fn from_transport(err: reqwest::Error) -> QqError {
        let err = err.without_url();
        if err.is_timeout() {
            QqError::Timeout
        } else {
            QqError::Unreachable { source: err }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn qq_code_only_for_api() {
        assert_eq!(QqError::api(100_020, "x").qq_code(), Some(100_020));
        assert_eq!(QqError::Timeout.qq_code(), None);
        assert_eq!(QqError::Status(500).qq_code(), None);
    }

    #[test]
    fn restart_codes() {
        for code in [100_019, 100_020, 100_016, 100_013, 100_014, 100_015, 1002] {
            assert!(QqError::api(code, "").is_rejected_code(), "{code}");
        }
        for code in [100_010, 100_008, 100_009, 100_005, -1, 0] {
            assert!(!QqError::api(code, "").is_rejected_code(), "{code}");
        }
        assert!(QqError::InvalidCode.is_rejected_code());
        assert!(!QqError::Timeout.is_rejected_code());
        assert!(!QqError::Status(400).is_rejected_code());
        assert!(!QqError::WrongClient.is_rejected_code());
    }

    #[test]
    fn api_message_is_cleaned_and_capped() {
        let e = QqError::api(1, "  line1\nline2\u{1b}[31m  ");
        match &e {
            QqError::Api { message, .. } => assert_eq!(message, "line1 line2 [31m"),
            other => panic!("{other:?}"),
        }
        let long = "é".repeat(1000);
        match QqError::api(1, &long) {
            QqError::Api { message, .. } => assert_eq!(message.chars().count(), 200),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redact_removes_secrets_from_message() {
        let e =
            QqError::api(100_020, "code ABC123 reused, key KEY9").redact(&["ABC123", "", "KEY9"]);
        let shown = e.to_string();
        assert!(
            !shown.contains("ABC123") && !shown.contains("KEY9"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"));
        assert!(matches!(QqError::Timeout.redact(&["x"]), QqError::Timeout));
    }

    #[test]
    fn display_texts_are_plain() {
        assert_eq!(QqError::Timeout.to_string(), "QQ did not answer in time");
        assert_eq!(
            QqError::Status(502).to_string(),
            "QQ answered with HTTP status 502"
        );
        assert_eq!(
            QqError::api(100_020, "code is reused error").to_string(),
            "QQ refused the request with code 100020: code is reused error"
        );
    }
}
