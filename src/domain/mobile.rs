/// A mainland China mobile number: `1[3-9]` followed by nine digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mobile(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a mainland China mobile number (11 digits starting 13–19)")]
pub struct InvalidMobile;

impl Mobile {
    /// Accepts surrounding spaces and a `+86`/`86` prefix, as people type them.
    pub fn parse(raw: &str) -> Result<Self, InvalidMobile> {
        let s = raw.trim();
        let s = s
            .strip_prefix("+86")
            .or_else(|| s.strip_prefix("86").filter(|r| r.len() == 11))
            .unwrap_or(s);
        let s = s.trim_start();
        let b = s.as_bytes();
        let well_formed = b.len() == 11
            && b[0] == b'1'
            && (b'3'..=b'9').contains(&b[1])
            && b.iter().all(u8::is_ascii_digit);
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidMobile)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `13800138000` as `138****8000`: enough for the person to recognise,
    /// and for a log line, without the whole number.
    pub fn masked(&self) -> String {
        // Eleven ASCII digits, checked by `parse`.
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mainland_numbers_as_people_type_them() {
        for ok in [
            "13800138000",
            " 19912345678 ",
            "+8613800138000",
            "8613800138000",
            "+86 13800138000",
        ] {
            assert_eq!(Mobile::parse(ok).map(|m| m.as_str().len()), Ok(11), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "1380013800",
            "138001380001",
            "12800138000",
            "23800138000",
            "1380013800a",
            "１３８００１３８０００",
            "13800138000' OR 1=1 --",
            "<b>13800138000</b>",
            "13800\u{0}138000",
        ] {
            assert_eq!(Mobile::parse(bad), Err(InvalidMobile), "{bad:?}");
        }
        assert_eq!(Mobile::parse(&"1".repeat(100_000)), Err(InvalidMobile));
    }

    #[test]
    fn masked_keeps_the_first_three_and_last_four_digits() {
        assert_eq!(
            Mobile::parse("13800138000").unwrap().masked(),
            "138****8000"
        );
    }
}
