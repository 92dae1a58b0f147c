//! Django's password hashes (`algorithm$…`), as a site brought over from
//! Django stores them: checked the way Django checks them, so that its people
//! log in with the passwords they have. A right one is then stored again as
//! this service's argon2id ([`super::Hasher::is_outdated`]); sharing the
//! site's user table, new passwords are made here in Django's own format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `stored` is one of Django's formats (a hash this service did not make).
pub fn is_django(stored: &str) -> bool {
    [
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "argon2$",
        "bcrypt_sha256$",
    ]
    .iter()
    .any(|prefix| stored.starts_with(prefix))
}

/// Whether `password` matches `stored`, a hash in one of Django's formats.
/// A malformed hash matches nothing.
pub fn verify(password: &[u8], stored: &str) -> bool {
    let Some((algorithm, rest)) = stored.split_once('$') else {
        return false;
    };
    match algorithm {
        "pbkdf2_sha256" => pbkdf2(password, rest, ::pbkdf2::pbkdf2_hmac::<Sha256>),
        "pbkdf2_sha1" => pbkdf2(password, rest, ::pbkdf2::pbkdf2_hmac::<sha1::Sha1>),
        // Django's Argon2PasswordHasher: "argon2" before the PHC string, whose
        // leading "$" is the separator split off above.
        "argon2" => {
            use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
            let phc = format!("${rest}");
            PasswordHash::new(&phc).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password, &parsed)
                    .is_ok()
            })
        }
        // BCryptSHA256PasswordHasher: bcrypt of the hex SHA-256 of the password
        // (bcrypt reads at most 72 bytes). The string is "bcrypt_sha256$$2b$…".
        "bcrypt_sha256" => {
            let digest = base16ct::lower::encode_string(&Sha256::digest(password));
            bcrypt::verify(digest, rest).unwrap_or(false)
        }
        _ => false,
    }
}

/// Django's `PBKDF2PasswordHasher.encode`: a random alphanumeric salt of 22
/// characters (Django's since 3.1), the password's PBKDF2-HMAC-SHA256 with
/// it as text, 32 bytes in standard base64.
pub fn make_pbkdf2_sha256(password: &[u8], iterations: u32) -> String {
    use rand::Rng as _;
    let salt: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(22)
        .map(char::from)
        .collect();
    let mut hash = [0u8; 32];
    ::pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut hash);
    format!(
        "pbkdf2_sha256${iterations}${salt}${}",
        STANDARD.encode(hash)
    )
}

/// The rounds of a `pbkdf2_sha256` hash; `None` for any other kind.
pub fn pbkdf2_sha256_iterations(stored: &str) -> Option<u32> {
    let rest = stored.strip_prefix("pbkdf2_sha256$")?;
    rest.split('$').next()?.parse().ok()
}

/// PBKDF2 with one HMAC: the password, the salt, the rounds, the output.
type Derive = fn(&[u8], &[u8], u32, &mut [u8]);

/// `<iterations>$<salt>$<base64 hash>`: PBKDF2 of the password with the salt
/// as text, compared in constant time.
fn pbkdf2(password: &[u8], rest: &str, derive: Derive) -> bool {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Ok(expected)) = (iterations.parse::<u32>(), STANDARD.decode(expected))
    else {
        return false;
    };
    if iterations == 0 || expected.is_empty() || expected.len() > 64 {
        return false;
    }
    let mut computed = vec![0u8; expected.len()];
    derive(password, salt.as_bytes(), iterations, &mut computed);
    computed.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by Python's hashlib.pbkdf2_hmac as Django 1.11 makes them (36 000 rounds).
    const SHA256: &str =
        "pbkdf2_sha256$36000$seasalt2$QkIBVCvGmTmyjPJ5yox2y/jQB8isvgUNK98FxOU1UYo=";
    const SHA1: &str = "pbkdf2_sha1$36000$seasalt2$GoU+9AubJ/xRkO0WD1Xf3WPxWfE=";

    #[test]
    fn pbkdf2_hashes_verify_their_password_only() {
        for stored in [SHA256, SHA1] {
            assert!(is_django(stored));
            assert!(verify("lètmein".as_bytes(), stored), "{stored}");
            assert!(!verify(b"letmein", stored), "{stored}");
        }
    }

    #[test]
    fn argon2_and_bcrypt_sha256_as_django_writes_them() {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(b"seasalt-seasalt").unwrap();
        let phc = argon2::Argon2::default()
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        let stored = format!("argon2{phc}");
        assert!(verify(b"secret", &stored));
        assert!(!verify(b"Secret", &stored));

        let digest = base16ct::lower::encode_string(&Sha256::digest(b"secret"));
        let stored = format!("bcrypt_sha256${}", bcrypt::hash(digest, 4).unwrap());
        assert!(stored.starts_with("bcrypt_sha256$$2b$04$"), "{stored}");
        assert!(verify(b"secret", &stored));
        assert!(!verify(b"secrets", &stored));
    }

    #[test]
    fn made_as_django_makes_them() {
        let made = make_pbkdf2_sha256("lètmein".as_bytes(), 36_000);
        assert!(made.starts_with("pbkdf2_sha256$36000$"), "{made}");
        assert_eq!(made.split('$').nth(2).map(str::len), Some(22));
        assert!(verify("lètmein".as_bytes(), &made));
        assert!(!verify(b"letmein", &made));
        assert_ne!(made, make_pbkdf2_sha256("lètmein".as_bytes(), 36_000));
        assert_eq!(pbkdf2_sha256_iterations(&made), Some(36_000));
        assert_eq!(pbkdf2_sha256_iterations(SHA1), None);
    }

    #[test]
    fn malformed_and_foreign_hashes_match_nothing() {
        for stored in [
            "pbkdf2_sha256$x$salt$AAAA",
            "pbkdf2_sha256$0$salt$AAAA",
            "pbkdf2_sha256$36000$salt",
            "pbkdf2_sha256$36000$salt$not base64!",
            "argon2$nonsense",
            "bcrypt_sha256$$2b$nonsense",
            "md5$salt$hash",
            "!unusable",
            "",
        ] {
            assert!(!verify(b"anything", stored), "{stored}");
        }
        assert!(!is_django("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
    }
}
