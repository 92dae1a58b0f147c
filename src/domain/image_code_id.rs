//! The name a front end gives an image code: a UUID it makes itself
//! (`/image_codes/<uuid>/`), so that it can ask for the image before it has
//! anything from the server, and later say which image was read.

use std::fmt;

/// A UUID in its hyphenated text form (`8-4-4-4-12` hex digits), any
/// version, kept in lower case so that `ABC…` and `abc…` name one code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageCodeId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an image code id is a UUID in hyphenated form")]
pub struct InvalidImageCodeId;

/// Where the hyphens of a hyphenated UUID are.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];
const LEN: usize = 36;

impl ImageCodeId {
    /// Accepts a hyphenated UUID in either case, and nothing around it.
    pub fn parse(s: &str) -> Result<Self, InvalidImageCodeId> {
        let well_formed = s.len() == LEN
            && s.bytes().enumerate().all(|(i, b)| {
                if HYPHENS.contains(&i) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if well_formed {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidImageCodeId)
        }
    }

    /// A fresh random id, for the service's own pages.
    pub fn random() -> Self {
        let hex = base16ct::lower::encode_string(&rand::random::<[u8; 16]>());
        Self(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ))
    }

    /// The UUID in lower case, as it is stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ImageCodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageCodeId({})", self.0)
    }
}

impl fmt::Display for ImageCodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_id_is_a_well_formed_uuid_and_new_each_time() {
        let (a, b) = (ImageCodeId::random(), ImageCodeId::random());
        assert_eq!(ImageCodeId::parse(a.as_str()).unwrap().as_str(), a.as_str());
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn parse_takes_hyphenated_uuids_and_folds_case() {
        let id = ImageCodeId::parse("0F8FAD5B-d9cb-469f-a165-70867728950e").unwrap();
        assert_eq!(id.as_str(), "0f8fad5b-d9cb-469f-a165-70867728950e");
    }

    #[test]
    fn parse_refuses_anything_else() {
        for bad in [
            "",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950e0",
            "0f8fad5b-d9cb-469f-a165_70867728950e",
            "0f8fad5g-d9cb-469f-a165-70867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "0f8fad5b-d9cb-469f-a165-70867728950\u{e9}",
        ] {
            assert_eq!(ImageCodeId::parse(bad), Err(InvalidImageCodeId), "{bad:?}");
        }
    }
}
