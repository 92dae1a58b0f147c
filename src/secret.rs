//! Unguessable secrets (`state`, nonces, CSRF tokens, session keys, bind
//! token ids) and the keys under which the database remembers them.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// `HMAC-SHA256(key, message)`, for keys of any length.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // RFC 2104 takes a key of any length (a long one is hashed first);
        // the crate's error exists for MACs with fixed-size keys only.
        Err(_) => unreachable!("HMAC accepts a key of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// 96 random bits, URL-safe: a name that must not be guessed, not a key.
pub fn short_token() -> String {
    let bytes: [u8; 12] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret that sorts by when it was made: the time in milliseconds as 12
/// hex digits, a dot, then [`random_token`].
///
/// Session keys, login states and bind token ids are such secrets so that
/// their rows sort by age too ([`db_key`]): new rows append at the right
/// edge of their table's b-tree instead of landing on random pages, and old
/// ones are found as a range of the key when they are purged.
pub fn time_ordered_token() -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    format!("{millis:012x}.{}", random_token())
}

/// The database key of a secret that a cookie or token carries: its SHA-256
/// (a copy of the table gives no usable secret), behind the secret's time
/// prefix when it has one ([`time_ordered_token`]). Secrets made before there
/// was a prefix (a dot never occurs in them) keep their plain hash.
pub fn db_key(secret: &str) -> String {
    match secret.split_once('.') {
        Some((prefix, _))
            if prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("{prefix}.{}", sha256_hex(secret))
        }
        _ => sha256_hex(secret),
    }
}

fn sha256_hex(value: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            base16ct::lower::encode_string(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sha256_hex_is_the_lowercase_hex_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_time_ordered_secret_is_keyed_by_its_time_and_its_hash_only() {
        let secret = time_ordered_token();
        let (prefix, random) = secret.split_once('.').unwrap();
        assert_eq!(prefix.len(), 12);
        assert_eq!(random.len(), 43, "256 random bits");
        let key = db_key(&secret);
        assert_eq!(key, format!("{prefix}.{}", sha256_hex(&secret)));
        assert!(!key.contains(random));
    }

    #[test]
    fn later_secrets_get_later_keys() {
        let first = db_key(&time_ordered_token());
        let prefix = |key: &str| key[..12].to_owned();
        // Until the clock has moved on by a millisecond (well within a second).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let second = loop {
            let key = db_key(&time_ordered_token());
            if prefix(&key) != prefix(&first) || std::time::Instant::now() > until {
                break key;
            }
        };
        assert!(first < second, "{first} then {second}");
    }

    #[test]
    fn secrets_without_a_time_prefix_keep_their_plain_hash() {
        // actix-session's own keys (64 alphanumerics), and states made before the prefix.
        for old in [
            "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCD",
            "Zm9vYmFyYmF6cXV4LXF1dXhfY29yZ2VncmF1bHRnYXJwbHk",
            "0123456789a.x",
            "0123456789ag.x",
        ] {
            assert_eq!(db_key(old).len(), 64, "{old}");
        }
        assert_eq!(db_key("0123456789ab.x").len(), 12 + 1 + 64);
    }
}
