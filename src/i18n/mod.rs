//! The pages' two languages: Chinese by default, English when asked. The
//! language of a request is chosen once, as it arrives ([`in_scope`]): the
//! `lang` cookie the switcher sets wins, then what `Accept-Language`
//! prefers, then Chinese. Everything said to the person — pages, error
//! pages, the JSON API's messages, the SMS notices — comes from that
//! language's catalogue ([`texts`]).

mod catalogue;
mod en;
mod zh;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    ACCEPT_LANGUAGE, CONTENT_LANGUAGE, CONTENT_TYPE, COOKIE as COOKIE_HEADER, HeaderValue, VARY,
};
use actix_web::http::{Method, Uri};
use actix_web::middleware::Next;

pub use catalogue::{Message, Texts};

/// The cookie the switcher sets: `en` or `zh-CN` (contract).
pub const COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The tag pages carry (`<html lang>`, `Content-Language`) and the cookie holds.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language a tag names (`en-GB`, `zh-Hans-CN`, `ZH`), by its
    /// primary subtag; `None` for one we do not speak.
    pub fn of_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::Zh)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language of a request with this `lang` cookie and `Accept-Language`.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        cookie
            .and_then(Self::of_tag)
            .or_else(|| accept_language.and_then(preferred))
            .unwrap_or_default()
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &zh::TEXTS,
            Lang::En => &en::TEXTS,
        }
    }

    /// The language the switcher offers.
    pub fn other(self) -> Self {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// The language `Accept-Language` likes best among ours: the highest
/// quality wins, the first listed among equals; `q=0` means "not this".
fn preferred(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in header.split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::of_tag) else {
            continue;
        };
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((lang, quality));
        }
    }
    best.map(|(lang, _)| lang)
}

/// What a request's pages need to know of it: its language, and where the
/// switcher brings the person back to.
struct Scope {
    lang: Lang,
    uri: Uri,
    repeatable: bool,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// The language of the request being served; Chinese outside one.
pub fn current() -> Lang {
    SCOPE.try_with(|s| s.lang).unwrap_or_default()
}

/// The texts of the request being served, in its language.
pub fn texts() -> &'static Texts {
    current().texts()
}

/// Where the switcher brings the person back to: this page again when it
/// was a GET that can be repeated, else the home page. A GET carrying QQ's
/// `code` cannot: the code is spent. Pages shown in answer to a form name
/// their own address instead (`{% block here %}`).
pub fn back() -> String {
    SCOPE
        .try_with(|s| match s.uri.path_and_query() {
            Some(here) if s.repeatable && here.as_str().len() <= MAX_BACK => here.to_string(),
            _ => "/".to_owned(),
        })
        .unwrap_or_else(|_| "/".to_owned())
}

/// The longest address the switcher returns to.
const MAX_BACK: usize = 2048;

/// Runs `f` in `lang` instead: the switcher's answer is in the language chosen.
pub async fn speaking<F: Future>(lang: Lang, f: F) -> F::Output {
    let (uri, repeatable) = SCOPE
        .try_with(|s| (s.uri.clone(), s.repeatable))
        .unwrap_or_default();
    SCOPE
        .scope(
            Scope {
                lang,
                uri,
                repeatable,
            },
            f,
        )
        .await
}

/// The `lang` cookie's value. Read from the header itself: the request's
/// parsed cookies are kept once parsed, and a middleware after this one may
/// still rewrite the header (`accept_previous_key`).
fn lang_cookie(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get_all(COOKIE_HEADER)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// Middleware: serves the request in its language ([`current`]). A page or
/// a JSON message says which (`Content-Language`), and that it depends on
/// the cookie and `Accept-Language` (`Vary`).
pub async fn in_scope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let accept = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = Lang::negotiate(lang_cookie(&req).as_deref(), accept);
    let uri = req.uri().clone();
    let repeatable = req.method() == Method::GET
        && !uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("code=")));
    let scope = Scope {
        lang,
        uri,
        repeatable,
    };
    let mut response = SCOPE.scope(scope, next.call(req)).await?;
    let is_text = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if is_text {
        let headers = response.headers_mut();
        // The switcher's answer already says: it is in the language chosen.
        if !headers.contains_key(CONTENT_LANGUAGE) {
            headers.insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
        }
        headers.append(VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_wins_then_accept_language_then_chinese() {
        use Lang::{En, Zh};
        let cases = [
            (None, None, Zh),
            (None, Some("en-US,en;q=0.9"), En),
            (None, Some("fr-FR,fr;q=0.9"), Zh),
            (None, Some("fr,en;q=0.8,zh;q=0.9"), Zh),
            (None, Some("zh;q=0.5, en-GB;q=0.7"), En),
            (None, Some("en;q=0, zh-TW"), Zh),
            (None, Some("en;q=0"), Zh),
            (None, Some("EN"), En),
            (None, Some("en;q=abc"), En),
            (None, Some("zh-CN,en;q=1"), Zh),
            (None, Some(";;,,q=1"), Zh),
            (Some("en"), Some("zh-CN"), En),
            (Some("zh-CN"), Some("en"), Zh),
            (Some("klingon"), Some("en"), En),
        ];
        for (cookie, accept, lang) in cases {
            assert_eq!(
                Lang::negotiate(cookie, accept),
                lang,
                "{cookie:?} {accept:?}"
            );
        }
    }

    /// Every text, as `(key, text)`, of a catalogue: the functions called
    /// with a marker that must come out.
    fn every_text(texts: &Texts) -> Vec<(String, String)> {
        fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, v) in map {
                        walk(&format!("{prefix}.{key}"), v, out);
                    }
                }
                serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
                other => out.push((prefix.to_owned(), other.to_string())),
            }
        }
        let mut out = Vec::new();
        let value = serde_json::to_value(texts).unwrap_or_default();
        walk("", &value, &mut out);
        let x = "⟨X⟩";
        let c = &texts.common;
        for (key, text) in [
            ("common.point_qq_password", (c.point_qq_password)(x)),
            ("common.linked_at", (c.linked_at)(x)),
            ("common.request_id", (c.request_id)(x)),
            ("home.hello", (texts.home.hello)(x)),
            ("account.signed_in_at", (texts.account.signed_in_at)(x)),
            ("verify.code_sent_to", (texts.verify.code_sent_to)(x)),
            ("delete.confirm_label", (texts.delete.confirm_label)(x)),
            ("sms.sent", (texts.sms.sent)(x, 5)),
            ("sms.dev_code", (texts.sms.dev_code)(x)),
        ] {
            assert!(text.contains(x), "{key} drops its value: {text}");
            out.push((key.to_owned(), text.replace(x, "")));
        }
        out
    }

    /// A text written straight into a page or a handler would be shown in
    /// Chinese to everyone: texts people read live in the catalogues only.
    #[test]
    fn no_text_is_written_outside_the_catalogues() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let is_chinese = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
        let mut files = Vec::new();
        let mut dirs = vec![
            root.join("templates"),
            root.join("src/routes"),
            root.join("src/account"),
        ];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.extend(
            [
                "src/error.rs",
                "src/events.rs",
                "src/sms/mod.rs",
                "src/sms/sender/mod.rs",
                "src/sms/sender/tencent_cloud.rs",
                "src/site.rs",
                "static/sms.js",
            ]
            .map(|f| root.join(f)),
        );
        assert!(files.len() > 25, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            // Comments say why, in any language; unit tests may quote texts.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut in_comment = false;
            for (n, line) in code.lines().enumerate() {
                let trimmed = line.trim_start();
                if trimmed.starts_with("{#") {
                    in_comment = true;
                }
                let comment = in_comment || trimmed.starts_with("//");
                if trimmed.contains("#}") {
                    in_comment = false;
                }
                assert!(
                    comment || !line.chars().any(is_chinese),
                    "{}:{}: a text outside the catalogues: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }

    #[test]
    fn every_text_is_there_in_both_languages() {
        let zh = every_text(Lang::Zh.texts());
        let en = every_text(Lang::En.texts());
        assert!(zh.len() > 250, "{} texts", zh.len());
        assert_eq!(
            zh.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            en.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        );
        let is_chinese = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
        for ((key, zh), (_, en)) in zh.iter().zip(&en) {
            assert!(
                !zh.trim().is_empty() && !en.trim().is_empty(),
                "{key} is empty"
            );
            assert!(!en.chars().any(is_chinese), "{key} is untranslated: {en}");
            let resend = key == ".common.resend_countdown" || key == ".common.resend_spoken";
            assert!(!resend || (zh.contains("{}") && en.contains("{}")), "{key}");
        }
    }
}
