//! Pure parsers for QQ Connect's answers.
//!
//! QQ answers in several shapes depending on the endpoint and on `fmt=json`:
//! url-encoded (`access_token=..&expires_in=..`), JSONP
//! (`callback( {...} );`), and plain JSON, and reports errors with HTTP 200
//! in any of them. Everything QQ sends is untrusted input, so the parsers
//! never panic, never quote the body in an error (it may hold a token), and
//! turn anything unexpected into [`QqError::Malformed`].

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::error::QqError;
use crate::domain::{AvatarUrl, OpenId};

/// The longest access token accepted. QQ's are 32 hex digits; the slack is
/// for format changes, the bound is so a broken answer cannot make us put an
/// enormous value into later URLs.
const MAX_TOKEN_LEN: usize = 512;

/// A QQ access token. Its `Debug` shows nothing of the token, so it can sit
/// in structs that get logged.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token obtained elsewhere (tests, a stored session).
    pub fn new(token: SecretString) -> AccessToken {
        AccessToken(token)
    }
}

impl ExposeSecret<str> for AccessToken {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// What `/oauth2.0/me` says about a token: which app it was issued to and
/// whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeAnswer {
    /// The app id the token was issued to; must be ours.
    pub client_id: String,
    /// The person the token stands for.
    pub openid: OpenId,
    /// The person across all of one developer's QQ apps, when asked for
    /// (`unionid=1`) and granted.
    pub unionid: Option<String>,
}

/// The parts of `get_user_info` this service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The person's QQ nickname, as QQ gave it (may be empty). It is
    /// arbitrary user-chosen text: escape it wherever it is shown.
    pub nickname: String,
    /// The avatar, 100×100 (`figureurl_qq_2`) or else 40×40 (`figureurl_qq_1`),
    /// when it is on QQ's avatar hosts; as https.
    pub avatar: Option<AvatarUrl>,
}

/// Strips QQ's JSONP wrapper, `callback( ... );`, if there is one, and the
/// surrounding whitespace either way.
///
/// QQ's spacing varies (`callback( {..} );\n`, `callback({..});`), so any
/// amount of whitespace is allowed around each part. A body that starts
/// with `callback` but does not close properly is returned as-is, which then
/// fails as JSON rather than being half-unwrapped.
pub fn unwrap_jsonp(body: &str) -> &str {
    let body = body.trim_start_matches('\u{feff}').trim();
    let Some(rest) = body.strip_prefix("callback") else {
        return body;
    };
    let Some(rest) = rest.trim_start().strip_prefix('(') else {
        return body;
    };
    let rest = rest.trim_end();
    let rest = rest.strip_suffix(';').unwrap_or(rest).trim_end();
    match rest.strip_suffix(')') {
        Some(inner) => inner.trim(),
        None => body,
    }
}

/// Parses the answer of `/oauth2.0/token`, in any of its shapes: url-encoded
/// success, JSON success (`fmt=json`), JSONP error, JSON error.
pub fn parse_token(body: &str) -> Result<AccessToken, QqError> {
    let inner = unwrap_jsonp(body);
    if inner.is_empty() {
        return Err(QqError::Malformed("empty token answer"));
    }
    if inner.starts_with('{') {
        let obj = json_object(inner)?;
        check_oauth_error(&obj)?;
        let token = obj
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or(QqError::Malformed("token answer has no access_token"))?;
        return access_token(token);
    }
    parse_token_form(inner)
}

/// The url-encoded success form, `access_token=..&expires_in=..&refresh_token=..`.
fn parse_token_form(body: &str) -> Result<AccessToken, QqError> {
    // Only accept something that really looks like a form. An HTML error
    // page that happens to echo "access_token=" from the request URL must not
    // be mistaken for a grant.
    let looks_like_form = body
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\'' | b'{' | b'}'));
    if !looks_like_form {
        return Err(QqError::Malformed(
            "token answer is neither JSON nor a form",
        ));
    }
    let mut token = None;
    for (key, value) in url::form_urlencoded::parse(body.as_bytes()) {
        if key == "access_token" {
            if token.is_some() {
                return Err(QqError::Malformed("token answer has two access_tokens"));
            }
            token = Some(value.into_owned());
        }
    }
    let token = token.ok_or(QqError::Malformed("token answer has no access_token"))?;
    access_token(&token)
}

/// QQ's unionids are short ASCII identifiers; anything else is not one.
fn is_unionid(u: &str) -> bool {
    (1..=128).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses the answer of `/oauth2.0/me` (JSONP or, with `fmt=json`, JSON).
pub fn parse_me(body: &str) -> Result<MeAnswer, QqError> {
    let obj = json_object(unwrap_jsonp(body))?;
    check_oauth_error(&obj)?;
    let client_id = match obj.get("client_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        // App ids are numeric; tolerate QQ sending one as a number.
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(QqError::Malformed("me answer has no client_id")),
    };
    let openid = obj
        .get("openid")
        .and_then(Value::as_str)
        .ok_or(QqError::Malformed("me answer has no openid"))?;
    let openid =
        OpenId::parse(openid).map_err(|_| QqError::Malformed("openid has an unexpected shape"))?;
    let unionid = match obj.get("unionid") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if is_unionid(u) => Some(u.clone()),
        Some(_) => return Err(QqError::Malformed("unionid has an unexpected shape")),
    };
    Ok(MeAnswer {
        client_id,
        openid,
        unionid,
    })
}

/// Parses the answer of `/user/get_user_info`, which reports errors as
/// `ret != 0` with HTTP 200.
pub fn parse_user_info(body: &str) -> Result<UserInfo, QqError> {
    let obj = json_object(unwrap_jsonp(body))?;
    let ret = obj
        .get("ret")
        .ok_or(QqError::Malformed("user info answer has no ret"))?;
    let ret = integer(ret).ok_or(QqError::Malformed("user info ret is not a number"))?;
    if ret != 0 {
        let msg = obj.get("msg").and_then(Value::as_str).unwrap_or("");
        return Err(QqError::api(ret, msg));
    }
    let nickname = obj
        .get("nickname")
        .and_then(Value::as_str)
        .ok_or(QqError::Malformed("user info answer has no nickname"))?;
    // figureurl_qq_2 is missing or empty for people without a 100×100 avatar.
    let avatar = ["figureurl_qq_2", "figureurl_qq_1"]
        .iter()
        .filter_map(|key| obj.get(*key).and_then(Value::as_str))
        .find_map(AvatarUrl::from_qq);
    Ok(UserInfo {
        nickname: nickname.to_owned(),
        avatar,
    })
}

/// Parses `text` as a JSON object; anything else is malformed.
fn json_object(text: &str) -> Result<Map<String, Value>, QqError> {
    if text.is_empty() {
        return Err(QqError::Malformed("empty answer"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(QqError::Malformed("answer is JSON but not an object")),
        Err(_) => Err(QqError::Malformed("answer is not JSON")),
    }
}

/// Turns QQ's OAuth error shape, `{"error":N,"error_description":".."}`, into
/// [`QqError::Api`]. `error` is a number in practice; a numeric string is
/// accepted too, anything else is malformed rather than guessed at.
fn check_oauth_error(obj: &Map<String, Value>) -> Result<(), QqError> {
    let Some(code) = obj.get("error") else {
        return Ok(());
    };
    let code = integer(code).ok_or(QqError::Malformed("error code is not a number"))?;
    let description = obj
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(QqError::api(code, description))
}

/// An integer given as a JSON number or as a string of digits.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks a token's shape: it is later put into URLs and must be a plain,
/// bounded string.
fn access_token(token: &str) -> Result<AccessToken, QqError> {
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(QqError::Malformed("access token has an unexpected shape"));
    }
    Ok(AccessToken(SecretString::from(token)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const OPENID: &str = "1704C8A4A8C8E6A45B07E4C2B8D9F0A1";

    fn token_of(body: &str) -> String {
        parse_token(body).unwrap().expose_secret().to_owned()
    }

    fn api_of(result: Result<impl fmt::Debug, QqError>) -> (i64, String) {
        match result {
            Err(QqError::Api { code, message }) => (code, message),
            other => panic!("expected Api, got {other:?}"),
        }
    }

    fn is_malformed<T: fmt::Debug>(result: Result<T, QqError>) -> bool {
        matches!(result, Err(QqError::Malformed(_)))
    }

    // --- unwrap_jsonp ---

    #[test]
    fn jsonp_variants() {
        assert_eq!(unwrap_jsonp("callback( {\"a\":1} );\n"), "{\"a\":1}");
        assert_eq!(unwrap_jsonp("callback({\"a\":1});"), "{\"a\":1}");
        assert_eq!(unwrap_jsonp("callback({\"a\":1})"), "{\"a\":1}");
        assert_eq!(
            unwrap_jsonp("  callback (\n{\"a\":1}\n) ;  \r\n"),
            "{\"a\":1}"
        );
        assert_eq!(unwrap_jsonp("{\"a\":1}\n"), "{\"a\":1}");
        assert_eq!(unwrap_jsonp("\u{feff}{\"a\":1}"), "{\"a\":1}");
        // Not closed: left alone, so JSON parsing rejects it.
        assert_eq!(unwrap_jsonp("callback( {\"a\":1}"), "callback( {\"a\":1}");
        assert_eq!(unwrap_jsonp("callback"), "callback");
        assert_eq!(unwrap_jsonp(""), "");
    }

    // --- token ---

    #[test]
    fn token_urlencoded_real_sample() {
        let body = "access_token=FE04************************CCE2&expires_in=7776000&refresh_token=88E4************************BE14";
        assert_eq!(token_of(body), "FE04************************CCE2");
    }

    #[test]
    fn token_urlencoded_any_order_and_trailing_newline() {
        let body = "expires_in=7776000&refresh_token=R&access_token=FE04A1B2\n";
        assert_eq!(token_of(body), "FE04A1B2");
    }

    #[test]
    fn token_json_expires_in_string() {
        let body = r#"{"access_token":"FE04************************CCE2","expires_in":"7776000","refresh_token":"88E4************************BE14"}"#;
        assert_eq!(token_of(body), "FE04************************CCE2");
    }

    #[test]
    fn token_json_expires_in_number() {
        let body = r#"{"access_token":"FE04CCE2","expires_in":7776000,"refresh_token":"88E4"}"#;
        assert_eq!(token_of(body), "FE04CCE2");
    }

    #[test]
    fn token_error_jsonp_real_sample() {
        let body =
            "callback( {\"error\":100020,\"error_description\":\"code is reused error\"} );\n";
        assert_eq!(
            api_of(parse_token(body)),
            (100_020, "code is reused error".to_owned())
        );
    }

    #[test]
    fn token_error_json_number_and_string() {
        let body = r#"{"error":100020,"error_description":"code is reused error"}"#;
        assert_eq!(api_of(parse_token(body)).0, 100_020);
        let body = r#"{"error":"100019","error_description":"code to access token error"}"#;
        assert_eq!(api_of(parse_token(body)).0, 100_019);
        let body = r#"{"error":100010}"#;
        assert_eq!(api_of(parse_token(body)), (100_010, String::new()));
    }

    #[test]
    fn token_error_wins_over_token() {
        let body = r#"{"error":100016,"access_token":"X"}"#;
        assert_eq!(api_of(parse_token(body)).0, 100_016);
    }

    #[test]
    fn token_malformed() {
        for body in [
            "",
            "   \n",
            "<html><body>502 Bad Gateway</body></html>",
            "<html>see https://graph.qq.com/oauth2.0/token?access_token=LEAK&x=1</html>",
            "expires_in=7776000",
            "access_token=&expires_in=1",
            "access_token=A&access_token=B",
            "access_token=a%20b",
            "{}",
            r#"{"expires_in":"7776000"}"#,
            r#"{"access_token":123}"#,
            r#"{"access_token":""}"#,
            r#"{"error":"invalid_request"}"#,
            r#"{"error":1.5}"#,
            "[1,2]",
            "null",
            "callback( );",
            "callback( {\"error\":100020 );",
        ] {
            assert!(is_malformed(parse_token(body)), "{body:?}");
        }
    }

    #[test]
    fn token_too_long_is_malformed() {
        let body = format!("access_token={}", "A".repeat(MAX_TOKEN_LEN + 1));
        assert!(is_malformed(parse_token(&body)));
        let body = format!("access_token={}", "A".repeat(MAX_TOKEN_LEN));
        assert!(parse_token(&body).is_ok());
    }

    #[test]
    fn token_debug_hides_secret() {
        let token = parse_token("access_token=SECRETTOKEN42").unwrap();
        assert!(!format!("{token:?}").contains("SECRETTOKEN42"));
    }

    // --- me ---

    #[test]
    fn me_jsonp_real_sample() {
        let body =
            format!("callback( {{\"client_id\":\"101234567\",\"openid\":\"{OPENID}\"}} );\n");
        let me = parse_me(&body).unwrap();
        assert_eq!(me.client_id, "101234567");
        assert_eq!(me.openid.as_str(), OPENID);
    }

    #[test]
    fn me_jsonp_without_spaces_and_json() {
        let body = format!("callback({{\"client_id\":\"1\",\"openid\":\"{OPENID}\"}});");
        assert_eq!(parse_me(&body).unwrap().client_id, "1");
        let body = format!("{{\"client_id\":\"1\",\"openid\":\"{OPENID}\"}}");
        assert_eq!(parse_me(&body).unwrap().openid.as_str(), OPENID);
        let body = format!("{{\"client_id\":101,\"openid\":\"{OPENID}\",\"unionid\":\"U\"}}");
        assert_eq!(parse_me(&body).unwrap().client_id, "101");
        assert_eq!(parse_me(&body).unwrap().unionid.as_deref(), Some("U"));
        for bad in ["\"\"", "7", "\"a b\"", "\"<script>\""] {
            let body = format!("{{\"client_id\":1,\"openid\":\"{OPENID}\",\"unionid\":{bad}}}");
            assert!(parse_me(&body).is_err(), "{bad}");
        }
    }

    #[test]
    fn me_error_real_sample() {
        let body =
            "callback( {\"error\":100016,\"error_description\":\"access token check failed\"} );";
        assert_eq!(
            api_of(parse_me(body)),
            (100_016, "access token check failed".to_owned())
        );
    }

    #[test]
    fn me_malformed() {
        for body in [
            "",
            "callback( );",
            "<html></html>",
            "{}",
            r#"{"client_id":"1"}"#,
            r#"{"openid":"ABC"}"#,
            r#"{"client_id":"","openid":"ABC"}"#,
            r#"{"client_id":"1","openid":""}"#,
            r#"{"client_id":"1","openid":"has space"}"#,
            r#"{"client_id":"1","openid":7}"#,
            "access_token=X",
        ] {
            assert!(is_malformed(parse_me(body)), "{body:?}");
        }
    }

    // --- get_user_info ---

    #[test]
    fn user_info_real_sample() {
        let body = r#"{"ret":0,"msg":"","is_lost":0,"nickname":"Peter","gender":"男","gender_type":1,"province":"","city":"","year":"1990","figureurl":"http:\/\/qzapp.qlogo.cn\/qzapp\/1\/2\/30","figureurl_qq_1":"http://thirdqq.qlogo.cn/g?b=oidb&k=1&s=40","is_yellow_vip":"0"}"#;
        assert_eq!(parse_user_info(body).unwrap().nickname, "Peter");
    }

    #[test]
    fn user_info_unicode_and_empty_nickname() {
        let body = r#"{"ret":0,"msg":"","nickname":"小明\ud83d\ude00"}"#;
        assert_eq!(parse_user_info(body).unwrap().nickname, "小明😀");
        let body = r#"{"ret":"0","msg":"","nickname":""}"#;
        assert_eq!(parse_user_info(body).unwrap().nickname, "");
    }

    #[test]
    fn user_info_errors_real_samples() {
        let body = r#"{"ret":-1,"msg":"client request's parameters are invalid, invalid openid"}"#;
        assert_eq!(
            api_of(parse_user_info(body)),
            (
                -1,
                "client request's parameters are invalid, invalid openid".to_owned()
            )
        );
        let body = r#"{"ret":1002,"msg":"请先登录"}"#;
        assert_eq!(api_of(parse_user_info(body)).0, 1002);
        let body = r#"{"ret":100030}"#;
        assert_eq!(api_of(parse_user_info(body)), (100_030, String::new()));
    }

    #[test]
    fn user_info_malformed() {
        for body in [
            "",
            "<html></html>",
            "{}",
            r#"{"nickname":"P"}"#,
            r#"{"ret":0,"msg":""}"#,
            r#"{"ret":0,"nickname":5}"#,
            r#"{"ret":"zero","nickname":"P"}"#,
            r#"{"ret":null,"nickname":"P"}"#,
            "[]",
        ] {
            assert!(is_malformed(parse_user_info(body)), "{body:?}");
        }
    }

    // --- never panic ---

    /// A tiny xorshift generator, so the "fuzz" test needs no extra crate
    /// and is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn all_parsers(body: &str) {
        let _ = unwrap_jsonp(body);
        let _ = parse_token(body);
        let _ = parse_me(body);
        let _ = parse_user_info(body);
    }

    #[test]
    fn never_panics_on_truncations_and_mutations() {
        let samples = [
            "access_token=FE04************************CCE2&expires_in=7776000&refresh_token=88E4************************BE14".to_owned(),
            r#"{"access_token":"FE04","expires_in":"7776000","refresh_token":"88E4"}"#.to_owned(),
            "callback( {\"error\":100020,\"error_description\":\"code is reused error\"} );\n".to_owned(),
            format!("callback( {{\"client_id\":\"101\",\"openid\":\"{OPENID}\"}} );\n"),
            r#"{"ret":0,"msg":"","nickname":"小明","gender":"男"}"#.to_owned(),
            r#"{"ret":-1,"msg":"client request's parameters are invalid, invalid openid"}"#.to_owned(),
        ];
        let alphabet: Vec<char> =
            "{}[]()\":,;=&%\\ \n\tcallback0123456789-.eE+truefalsnul中\u{feff}"
                .chars()
                .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for sample in &samples {
            let chars: Vec<char> = sample.chars().collect();
            // Every prefix and suffix.
            for i in 0..=chars.len() {
                all_parsers(&chars[..i].iter().collect::<String>());
                all_parsers(&chars[i..].iter().collect::<String>());
            }
            // Random single and multi-character mutations.
            for _ in 0..300 {
                let mut mutated = chars.clone();
                for _ in 0..1 + rng.next() % 4 {
                    if mutated.is_empty() {
                        break;
                    }
                    let at = (rng.next() % mutated.len() as u64) as usize;
                    let with = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                    match rng.next() % 3 {
                        0 => mutated[at] = with,
                        1 => mutated.insert(at, with),
                        _ => {
                            mutated.remove(at);
                        }
                    }
                }
                all_parsers(&mutated.iter().collect::<String>());
            }
        }
        // Pure noise, and pathological nesting.
        for _ in 0..2000 {
            let len = (rng.next() % 64) as usize;
            let noise: String = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            all_parsers(&noise);
        }
        all_parsers(&"[".repeat(100_000));
        all_parsers(&format!("callback({});", "{\"a\":".repeat(50_000)));
    }
}
