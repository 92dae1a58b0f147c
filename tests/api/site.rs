//! The site's own face, as the operator sets it (`QQLOGIN_SITE_NAME`,
//! `QQLOGIN_SITE_LOGO`, `QQLOGIN_ACCENT_COLOR`), and the static files every
//! page loads: fingerprinted, kept a year, compressed.

use qqlogin::domain::AccentColor;
use qqlogin::site::Logo;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};

use crate::helpers::{Backend, Browser, Options, TestApp, spawn_app_with};

const SITE: &str = "美多商城";
const YEAR_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A 1×1 PNG, as an operator's logo.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

async fn spawn_site(tweak: impl FnOnce(&mut qqlogin::config::Config) + 'static) -> TestApp {
    spawn_app_with(
        Backend::Sqlite,
        Options {
            tweak: Box::new(tweak),
            ..Options::default()
        },
    )
    .await
}

/// The static file the login page links as `attribute="/static/{stem}.<hash>.<extension>"`:
/// its path, and the answer to a plain GET of it.
async fn linked_file(
    app: &TestApp,
    attribute: &str,
    stem: &str,
    extension: &str,
) -> (String, reqwest::Response) {
    let browser = Browser::new();
    let html = app.get(&browser, "/login").await.body;
    let marker = format!("{attribute}=\"/static/{stem}.");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker}… in {html}"))
        + attribute.len()
        + 2;
    let path = html[at..].split('"').next().unwrap().to_owned();
    let fingerprint = path
        .strip_prefix(&format!("/static/{stem}."))
        .and_then(|rest| rest.strip_suffix(&format!(".{extension}")))
        .unwrap_or_else(|| panic!("{path}"));
    assert!(
        fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{path}"
    );
    let response = browser.client.get(app.url(&path)).send().await.unwrap();
    (path, response)
}

#[actix_web::test]
async fn every_page_names_itself_and_the_site_in_its_title_and_shows_the_site() {
    let app = spawn_site(|c| c.site.name = Some(SITE.to_owned())).await;
    let browser = Browser::new();
    for (path, title) in [
        ("/login", "登录"),
        ("/", "首页"),
        ("/password/reset", "找回密码"),
        ("/no/such/page", "页面不存在"),
    ] {
        let page = app.get(&browser, path).await;
        assert!(
            page.body
                .contains(&format!("<title>{title} - {SITE}</title>")),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!(
                "<a class=\"brand\" href=\"/\"><span>{SITE}</span></a>"
            )),
            "{path} shows the site's name at the top: {}",
            page.body
        );
    }
}

#[actix_web::test]
async fn the_site_name_is_escaped_like_any_text() {
    let app = spawn_site(|c| c.site.name = Some("<b>店</b>".to_owned())).await;
    let page = app.get(&Browser::new(), "/login").await;
    assert!(!page.body.contains("<b>店</b>"), "{}", page.body);
    assert!(
        page.body.contains("&#60;b&#62;店&#60;/b&#62;"),
        "{}",
        page.body
    );
}

#[actix_web::test]
async fn the_logo_is_served_under_a_fingerprinted_name_kept_a_year() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logo.png");
    std::fs::write(&path, PNG).unwrap();
    let logo = Logo::read(&path).unwrap();
    let app = spawn_site(move |c| c.site.logo = Some(logo)).await;
    let (_, image) = linked_file(&app, "src", "logo", "png").await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(image.headers()[CACHE_CONTROL], YEAR_IMMUTABLE);
    assert_eq!(image.bytes().await.unwrap(), PNG);
}

#[test]
fn a_logo_must_be_an_image_file_of_sensible_size() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("logo.txt");
    std::fs::write(&text, "hello").unwrap();
    assert!(Logo::read(&text).is_err(), "not an image's extension");
    assert!(Logo::read(&dir.path().join("missing.png")).is_err());
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, vec![0u8; 300 * 1024]).unwrap();
    assert!(Logo::read(&huge).is_err(), "300 KiB for a logo");
}

#[actix_web::test]
async fn the_stylesheet_is_fingerprinted_kept_a_year_and_compressed() {
    let app = spawn_site(|_| {}).await;
    let (href, plain) = linked_file(&app, "href", "app", "css").await;
    let browser = Browser::new();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()[CACHE_CONTROL], YEAR_IMMUTABLE);
    assert_eq!(plain.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let css = plain.bytes().await.unwrap();
    assert!(css.starts_with(b"/* qqlogin's pages."));

    for encoding in ["br", "gzip"] {
        let packed = browser
            .client
            .get(app.url(&href))
            .header(ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(packed.headers()[CONTENT_ENCODING], encoding);
        let size = packed.bytes().await.unwrap().len();
        assert!(
            size * 2 < css.len(),
            "{encoding}: {size} of {} bytes",
            css.len()
        );
    }

    // Another name, or the bare one, is not a file of ours.
    for other in ["/static/app.css", "/static/app.0000000000000000.css"] {
        let response = browser.client.get(app.url(other)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{other}");
    }
}

#[actix_web::test]
async fn pages_are_never_compressed_since_they_carry_a_csrf_token() {
    let app = spawn_site(|_| {}).await;
    let browser = Browser::new();
    let page = browser
        .client
        .get(app.url("/login"))
        .header(ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get(CONTENT_ENCODING).is_none(), "BREACH");
}

#[actix_web::test]
async fn the_accent_colour_is_in_the_stylesheet_under_a_name_of_its_own() {
    let plain = spawn_site(|_| {}).await;
    let red = spawn_site(|c| c.site.accent = AccentColor::parse("#c7000b").ok()).await;
    let (plain_href, _) = linked_file(&plain, "href", "app", "css").await;
    let (red_href, red_css) = linked_file(&red, "href", "app", "css").await;
    assert_ne!(
        plain_href, red_href,
        "a cached stylesheet never hides a new colour"
    );
    let css = red_css.text().await.unwrap();
    assert!(
        css.ends_with(":root { --accent: #c7000b; --on-accent: #ffffff; }\n"),
        "{css}"
    );
}

/// A page a middleware refuses (here: the database away) names the site
/// like any other.
#[actix_web::test]
async fn the_page_for_a_database_away_still_names_the_site() {
    let closed_port = qqlogin::config::DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none");
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            database: Some(closed_port.unwrap()),
            tweak: Box::new(|c| c.site.name = Some(SITE.to_owned())),
            ..Options::default()
        },
    )
    .await;
    let page = app.get(&Browser::new(), "/login").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("服务暂时不可用"), "{}", page.body);
    assert!(
        page.body.contains(&format!(" - {SITE}</title>")),
        "{}",
        page.body
    );
}
