//! Property-based fuzzing of everything that parses input from outside: QQ's
//! answers, tokens, and the domain types. Each property runs proptest's
//! default 256 cases, so the whole module finishes in about a second.

use proptest::prelude::*;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::domain::{LocalPath, Mobile, OpenId};
use crate::qq::answer::{parse_me, parse_token, parse_user_info};
use crate::token::Keys;

/// Strings shaped like QQ's answers: JSONP around JSON-ish text, url-encoded pairs.
fn qq_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<String>().prop_map(|s| format!("callback( {s} );\n")),
        "[a-z_]{1,12}=[^&]{0,20}(&[a-z_]{1,12}=[^&]{0,20}){0,4}",
        r#"\{"(error|ret|openid|client_id|access_token|expires_in|nickname|msg)":("[^"]{0,20}"|-?[0-9]{1,20}|null|\[\]|\{\})\}"#,
        r#"callback\( ?\{"(error|openid|client_id)":("[^"]{0,20}"|-?[0-9]{1,20})(,"[a-z_]{1,12}":"[^"]{0,10}")?\} ?\);?\s*"#,
    ]
}

fn keys() -> Keys {
    Keys::derive(&SecretString::from("k".repeat(64)))
}

proptest! {
    #[test]
    fn qq_answer_parsers_never_panic(body in qq_like()) {
        let _ = parse_token(&body);
        let _ = parse_me(&body);
        let _ = parse_user_info(&body);
    }

    #[test]
    fn token_decoding_never_panics_or_accepts_garbage(
        token in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}"]
    ) {
        let keys = keys();
        let now = OffsetDateTime::now_utc();
        prop_assert!(keys.verify_bind_token(&token, now).is_err());
        prop_assert!(keys.verify_login_token(&token, now).is_err());
    }

    #[test]
    fn a_sanitised_next_is_always_a_local_path(raw in any::<String>()) {
        let next = LocalPath::sanitize(Some(&raw));
        let p = next.as_str();
        prop_assert!(p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\"));
        prop_assert!(!p.chars().any(char::is_control));
    }

    #[test]
    fn domain_parsers_never_panic_and_keep_their_promises(raw in any::<String>()) {
        if let Ok(m) = Mobile::parse(&raw) {
            prop_assert_eq!(m.as_str().len(), 11);
            prop_assert!(m.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok(o) = OpenId::parse(&raw) {
            prop_assert!(o.as_str().len() <= 64 && !o.as_str().is_empty());
        }
    }
}
