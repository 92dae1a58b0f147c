//! A QQ Connect OpenID: the stable, per-app identifier QQ gives for one person.
//!
//! QQ's real OpenIDs are 32 upper-case hex digits, but QQ has never promised
//! that shape, so the check is looser: 1 to 64 ASCII letters, digits, `-` or
//! `_`. That is strict enough to keep anything odd (spaces, quotes, control
//! characters, huge strings) out of logs, URLs and the database, and loose
//! enough not to lock people out if QQ changes its format.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest OpenID accepted, in bytes (all characters are ASCII).
pub const MAX_LEN: usize = 64;

/// A validated QQ OpenID. The only way to get one is [`OpenId::parse`]
/// (or deserializing, which goes through it).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpenId(String);

/// Why a string is not an OpenID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOpenId {
    /// The string was empty.
    #[error("openid is empty")]
    Empty,
    /// The string was longer than [`MAX_LEN`].
    #[error("openid is longer than 64 characters")]
    TooLong,
    /// The string held a character other than ASCII alphanumerics, `-`, `_`.
    #[error("openid contains a character that is not an ASCII letter, digit, '-' or '_'")]
    BadCharacter,
}

impl OpenId {
    /// Checks `s` and wraps it. The string is kept exactly as given (no case
    /// folding): QQ compares OpenIDs byte for byte.
    pub fn parse(s: &str) -> Result<OpenId, InvalidOpenId> {
        if s.is_empty() {
            return Err(InvalidOpenId::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(InvalidOpenId::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidOpenId::BadCharacter);
        }
        Ok(OpenId(s.to_owned()))
    }

    /// The OpenID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An OpenID is a pseudonymous identifier, not a secret; showing it in
        // debug output is fine and helps when tracing a login.
        f.debug_tuple("OpenId").field(&self.0).finish()
    }
}

impl AsRef<str> for OpenId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for OpenId {
    type Err = InvalidOpenId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpenId::parse(s)
    }
}

impl Serialize for OpenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OpenId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Owned, not &str: borrowing fails on JSON strings with escapes, and
        // OpenIDs are short.
        let s = String::deserialize(deserializer)?;
        OpenId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_qq_shape() {
        let id = OpenId::parse("1704C8A4A8C8E6A45B07E4C2B8D9F0A1").unwrap();
        assert_eq!(id.as_str(), "1704C8A4A8C8E6A45B07E4C2B8D9F0A1");
        assert_eq!(id.to_string(), "1704C8A4A8C8E6A45B07E4C2B8D9F0A1");
    }

    #[test]
    fn accepts_looser_shapes() {
        for s in ["a", "abc-DEF_123", &"x".repeat(MAX_LEN)] {
            assert!(OpenId::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn keeps_case() {
        assert_eq!(OpenId::parse("abCD").unwrap().as_str(), "abCD");
        assert_ne!(OpenId::parse("ab").unwrap(), OpenId::parse("AB").unwrap());
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(OpenId::parse(""), Err(InvalidOpenId::Empty));
    }

    #[test]
    fn rejects_too_long() {
        assert_eq!(
            OpenId::parse(&"A".repeat(MAX_LEN + 1)),
            Err(InvalidOpenId::TooLong)
        );
    }

    #[test]
    fn rejects_bad_characters() {
        for s in [
            " ABC", "ABC ", "A B", "A.B", "A/B", "A\"B", "A\nB", "A\0B", "é", "Ａ", "A+B", "A%20",
            "<script>",
        ] {
            assert_eq!(OpenId::parse(s), Err(InvalidOpenId::BadCharacter), "{s:?}");
        }
    }

    #[test]
    fn multibyte_length_is_not_too_long_but_bad() {
        // 22 three-byte characters are 66 bytes: whichever check fires, it
        // must be rejected.
        assert!(OpenId::parse(&"中".repeat(22)).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let id = OpenId::parse("ABCDEF0123456789ABCDEF0123456789").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"ABCDEF0123456789ABCDEF0123456789\"");
        let back: OpenId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<OpenId>("\"\"").is_err());
        assert!(serde_json::from_str::<OpenId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<OpenId>("42").is_err());
        let err = serde_json::from_str::<OpenId>("\"a/b\"").unwrap_err();
        assert!(err.to_string().contains("openid contains"), "{err}");
    }

    #[test]
    fn from_str_matches_parse() {
        let id: OpenId = "ABC".parse().unwrap();
        assert_eq!(id.as_str(), "ABC");
        assert!("".parse::<OpenId>().is_err());
    }
}
