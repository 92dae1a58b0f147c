//! Tencent Cloud API 3.0 request signing, "TC3-HMAC-SHA256", as pure
//! functions: the same inputs give the same `Authorization` header, so the
//! whole chain is checked against Tencent Cloud's published worked example.

use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

use crate::secret::hmac_sha256;

/// The only signing algorithm of API 3.0.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of an HTTP request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `POST` or `GET`.
    pub method: &'a str,
    /// The URL's path: always `/` for API 3.0.
    pub path: &'a str,
    /// The URL's query string, already encoded; empty for a POST.
    pub query: &'a str,
    /// The signed headers as sent, in any order; at least `content-type`
    /// and `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body, byte for byte as sent.
    pub payload: &'a [u8],
}

/// The value of the `Authorization` header for `request`, made at `at`
/// (whose Unix seconds must be the `X-TC-Timestamp` header sent with it).
pub fn authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    request: &Request<'_>,
    at: OffsetDateTime,
) -> String {
    let (canonical, signed_headers) = canonical_request(request);
    let scope = credential_scope(service, at);
    let to_sign = string_to_sign(at, &scope, &canonical);
    let signature = signature(secret_key, service, at, &to_sign);
    format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// Step 1: the canonical request, and the `SignedHeaders` list it implies.
///
/// Header names and values are lowercased and trimmed and sorted by name, as
/// the documentation prescribes (hence `x-tc-action:sendsms`, lowercase).
pub fn canonical_request(request: &Request<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.trim().to_ascii_lowercase(),
                value.trim().to_ascii_lowercase(),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        request.query,
        sha256_hex(request.payload),
    );
    (canonical, signed_headers)
}

/// `Date/service/tc3_request`, the date being UTC's (not local time's).
pub fn credential_scope(service: &str, at: OffsetDateTime) -> String {
    format!("{}/{service}/tc3_request", utc_date(at))
}

/// Step 2: the string to sign.
pub fn string_to_sign(at: OffsetDateTime, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        at.unix_timestamp(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Step 3: the key derived for the day and the service, then the lowercase
/// hex HMAC of the string to sign.
pub fn signature(
    secret_key: &str,
    service: &str,
    at: OffsetDateTime,
    string_to_sign: &str,
) -> String {
    let secret_date = hmac_sha256(
        format!("TC3{secret_key}").as_bytes(),
        utc_date(at).as_bytes(),
    );
    let secret_service = hmac_sha256(&secret_date, service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    base16ct::lower::encode_string(&hmac_sha256(&secret_signing, string_to_sign.as_bytes()))
}

fn utc_date(at: OffsetDateTime) -> String {
    let date = at.to_offset(UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of "Signature v3" in the CVM API reference,
    // https://www.tencentcloud.com/document/api/213/33224 (every product's
    // English "Signature v3" page repeats it): DescribeInstances, version
    // 2017-03-12, ap-guangzhou, at 1551113065, signed with the SecretKey
    // "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE" under the SecretId printed (masked)
    // below. The Chinese page (cloud.tencent.com/document/api/213/30654) has
    // since also signed x-tc-action and masked the key, so its figures differ.
    const SECRET_ID: &str = "AKID**********************0123456789EXAMPLE";
    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const CANONICAL_REQUEST: &str = "POST\n\
        /\n\
        \n\
        content-type:application/json; charset=utf-8\n\
        host:cvm.tencentcloudapi.com\n\
        \n\
        content-type;host\n\
        35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064";
    const STRING_TO_SIGN: &str = "TC3-HMAC-SHA256\n\
        1551113065\n\
        2019-02-25/cvm/tc3_request\n\
        5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031";
    const SIGNATURE: &str = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
    const AUTHORIZATION: &str = "TC3-HMAC-SHA256 \
        Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, \
        SignedHeaders=content-type;host, \
        Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_551_113_065).unwrap()
    }

    fn example() -> Request<'static> {
        Request {
            method: "POST",
            path: "/",
            query: "",
            // Given out of order, with a capital in a name: canonicalisation sorts and lowercases.
            headers: &[
                ("Host", "cvm.tencentcloudapi.com"),
                ("content-type", "application/json; charset=utf-8"),
            ],
            payload: PAYLOAD.as_bytes(),
        }
    }

    #[test]
    fn canonical_request_is_the_documented_one_byte_for_byte() {
        let (canonical, signed) = canonical_request(&example());
        assert_eq!(canonical, CANONICAL_REQUEST);
        assert_eq!(signed, "content-type;host");
    }

    #[test]
    fn string_to_sign_is_the_documented_one_byte_for_byte() {
        let (canonical, _) = canonical_request(&example());
        let scope = credential_scope("cvm", at());
        assert_eq!(scope, "2019-02-25/cvm/tc3_request");
        assert_eq!(string_to_sign(at(), &scope, &canonical), STRING_TO_SIGN);
    }

    #[test]
    fn signature_is_the_documented_one() {
        assert_eq!(
            signature(SECRET_KEY, "cvm", at(), STRING_TO_SIGN),
            SIGNATURE
        );
    }

    #[test]
    fn authorization_header_is_the_documented_one_byte_for_byte() {
        assert_eq!(
            authorization(SECRET_ID, SECRET_KEY, "cvm", &example(), at()),
            AUTHORIZATION
        );
    }

    #[test]
    fn the_date_is_utc_even_when_the_clock_is_in_beijing() {
        // 1551113065 is 2019-02-26 00:44:25 in Beijing, 2019-02-25 in UTC:
        // the documentation's own warning about signing with local time.
        let beijing = at().to_offset(UtcOffset::from_hms(8, 0, 0).unwrap());
        assert_eq!(
            authorization(SECRET_ID, SECRET_KEY, "cvm", &example(), beijing),
            AUTHORIZATION
        );
    }

    #[test]
    fn every_input_changes_the_signature() {
        let base = authorization(SECRET_ID, SECRET_KEY, "cvm", &example(), at());
        let mut other_body = example();
        other_body.payload = b"{}";
        let later = OffsetDateTime::from_unix_timestamp(1_551_113_066).unwrap();
        for changed in [
            authorization(SECRET_ID, "another key", "cvm", &example(), at()),
            authorization(SECRET_ID, SECRET_KEY, "sms", &example(), at()),
            authorization(SECRET_ID, SECRET_KEY, "cvm", &other_body, at()),
            authorization(SECRET_ID, SECRET_KEY, "cvm", &example(), later),
        ] {
            assert_ne!(changed, base);
        }
    }
}
