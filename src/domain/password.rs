use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted for a new account.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted. Hashing cost grows with the input, so it is
/// bounded before it ever reaches argon2.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A password of acceptable length. `Debug` never prints it.
#[derive(Clone)]
pub struct Password(SecretString);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPassword {
    #[error("password shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl Password {
    pub fn parse(raw: SecretString) -> Result<Self, InvalidPassword> {
        // Count at most one past the limit: no need to walk a megabyte.
        let chars = raw
            .expose_secret()
            .chars()
            .take(MAX_PASSWORD_CHARS + 1)
            .count();
        if chars < MIN_PASSWORD_CHARS {
            Err(InvalidPassword::TooShort)
        } else if chars > MAX_PASSWORD_CHARS {
            Err(InvalidPassword::TooLong)
        } else {
            Ok(Self(raw))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Password, InvalidPassword> {
        Password::parse(SecretString::from(s.to_owned()))
    }

    #[test]
    fn bounds_are_counted_in_characters() {
        assert_eq!(parse("1234567").unwrap_err(), InvalidPassword::TooShort);
        assert!(parse("12345678").is_ok());
        assert!(parse("密码密码密码密码").is_ok());
        assert!(parse(&"x".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert_eq!(
            parse(&"x".repeat(MAX_PASSWORD_CHARS + 1)).unwrap_err(),
            InvalidPassword::TooLong
        );
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", parse("hunter2hunter2").unwrap()).contains("hunter2"));
    }
}
