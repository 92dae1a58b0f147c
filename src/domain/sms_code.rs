/// A one-time SMS code: exactly six ASCII digits.
///
/// It is a secret until used: `Debug` hides it, and the only way to its
/// digits is [`SmsCode::expose`], named so that a log line using it stands out.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an SMS code is six digits")]
pub struct InvalidSmsCode;

impl SmsCode {
    /// Six digits drawn uniformly by `rand`'s thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate() -> Self {
        use rand::Rng;
        let n: u32 = rand::rng().random_range(0..1_000_000);
        Self(format!("{n:06}"))
    }

    /// Accepts surrounding spaces, as people type them.
    pub fn parse(raw: &str) -> Result<Self, InvalidSmsCode> {
        let s = raw.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSmsCode)
        }
    }

    /// The digits, for the sender and the hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50)
            .map(|_| SmsCode::generate().expose().to_owned())
            .collect();
        assert!(codes.iter().all(|c| SmsCode::parse(c).is_ok()));
        assert!(codes.len() > 40, "{codes:?}");
    }

    #[test]
    fn parse_takes_six_digits_only() {
        assert_eq!(SmsCode::parse(" 012345 ").unwrap().expose(), "012345");
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "123 456"] {
            assert_eq!(SmsCode::parse(bad), Err(InvalidSmsCode), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", SmsCode::parse("123456").unwrap()),
            "SmsCode(******)"
        );
    }
}
