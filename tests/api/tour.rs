//! The tour: the main pages in both languages, on a phone and on a laptop,
//! as a person walks through them on day one — the login, QQ, the bind page
//! (refused beside a field, a code sent), home, the account centre and the
//! pages behind it, the password reset, an error page. Each page is asserted to be in the language chosen, to fit the
//! screen and to pass axe-core ([`Phone::assert_accessible`]), and is photographed into `target/screenshots/tour/`. With
//! `QQLOGIN_README_SCREENSHOTS=1` the pictures also replace those under
//! `docs/screenshots/` that README shows.

use std::path::Path;

use fantoccini::Locator;
use qqlogin::i18n::{Lang, Texts};

use super::{Phone, Screen, in_browser_on};
use crate::helpers::{Backend, PASSWORD};

/// The submit button of one of the bind page's ways (`#new`, `#existing`).
fn submit_of(way: &str) -> String {
    format!("#{way} form > button[type=submit]:not(.default-action)")
}

async fn tour(lang: Lang, screen: Screen) {
    let name = format!("tour_{}_{}", lang.tag(), screen.name());
    in_browser_on(Backend::Sqlite, &name, screen, move |phone| async move {
        let t = lang.texts();
        let tour = Tour {
            phone,
            lang,
            screen,
        };
        tour.phone.goto("/login").await;
        if lang != Lang::Zh {
            tour.switch_to(lang, "/login").await;
        }
        tour.is_at(t.login.title, "/login").await;
        tour.shoot("login").await;

        tour.phone.click(Locator::Css("a.button.qq")).await;
        tour.is_at(t.dev_qq.title, "/dev/qq/oauth2.0/authorize")
            .await;
        tour.phone.fill("#nickname", "小明").await;
        tour.phone.click(Locator::Css("form button.qq")).await;
        tour.is_at(t.bind.title, "/oauth/qq/callback").await;
        let greeting = format!("{}小明{}", t.bind.as_qq_before, t.bind.as_qq_after);
        assert!(
            tour.phone.body_text().await.contains(&greeting),
            "{greeting}"
        );
        tour.shoot("bind").await;

        if lang == Lang::Zh {
            // English and back on the one page that cannot be fetched again:
            // the bind goes on, with the same QQ account.
            tour.switch_to(Lang::En, "/lang").await;
            tour.phone
                .assert_page(Lang::En.texts().bind.title, "/lang")
                .await;
            tour.in_language(Lang::En).await;
            assert!(
                tour.phone
                    .body_text()
                    .await
                    .contains("You are logging in with the QQ account “小明”.")
            );
            tour.switch_to(Lang::Zh, "/lang").await;
            tour.is_at(t.bind.title, "/lang").await;
            assert!(tour.phone.body_text().await.contains(&greeting));
        }

        // "I already have an account", with a mobile that is not one: the
        // reason beside the field, the mobile kept.
        tour.phone.fill("#existing-mobile", "12345").await;
        tour.phone.fill("#existing-password", PASSWORD).await;
        tour.phone.click(Locator::Css(&submit_of("existing"))).await;
        tour.is_at(t.bind.title, "/oauth/qq/bind").await;
        let error = tour.phone.text_of("#existing-mobile-error").await;
        assert_eq!(error, t.errors.mobile.detail);
        tour.shoot("bind-refused").await;

        // "I am new here": a code sent, then the bind.
        tour.phone.fill("#mobile", "13800138000").await;
        tour.phone.click(Locator::Css("#send-sms")).await;
        tour.is_at(t.bind.title, "/oauth/qq/sms").await;
        let notice = tour.phone.text_of("#new [role=status]").await;
        assert!(
            notice.starts_with(&(t.sms.sent)("138****8000", 5)),
            "{notice}"
        );
        let countdown = tour.phone.text_of("#send-sms").await;
        let (before, after) = t.common.resend_countdown.split_once("{}").unwrap();
        assert!(
            countdown.starts_with(before) && countdown.ends_with(after),
            "the button counts down in the page's language: {countdown}"
        );
        let spoken = tour
            .phone
            .live_text_once_filled("#send-sms + [aria-live=polite]")
            .await;
        let (before, after) = t.common.resend_spoken.split_once("{}").unwrap();
        assert!(
            spoken.starts_with(before) && spoken.ends_with(after),
            "screen readers hear the countdown in the page's language: {spoken}"
        );
        tour.shoot("bind-code-sent").await;
        let code = last_six_digits(&notice);
        tour.phone.fill("#sms_code", &code).await;
        tour.phone.fill("#password", PASSWORD).await;
        tour.phone.click(Locator::Css(&submit_of("new"))).await;
        tour.is_at(t.home.title, "/").await;
        assert_eq!(tour.phone.h1().await, (t.home.hello)("13800138000"));
        tour.shoot("home").await;

        tour.phone.goto("/account").await;
        tour.is_at(t.account.title, "/account").await;
        tour.shoot("account").await;

        // The pages behind the account centre: pictures kept in target/ only.
        for (path, title, page) in [
            ("/account/verify", t.verify.title, "verify"),
            ("/account/delete", t.delete.title, "delete"),
            ("/password/reset", t.reset.title, "password-reset"),
        ] {
            tour.phone.goto(path).await;
            tour.is_at(title, path).await;
            tour.shoot(page).await;
        }

        tour.phone.goto("/no/such/page").await;
        tour.is_at(t.errors.not_found.title, "/no/such/page").await;
        tour.shoot("error").await;
    })
    .await;
}

/// The code the development sender shows in the notice.
fn last_six_digits(notice: &str) -> String {
    let digits: Vec<char> = notice.chars().filter(char::is_ascii_digit).collect();
    assert!(digits.len() >= 6, "no code in {notice}");
    digits[digits.len() - 6..].iter().collect()
}

struct Tour {
    phone: Phone,
    lang: Lang,
    screen: Screen,
}

impl Tour {
    /// The page shown is `title`, at `path`, in the tour's language, and
    /// fits the screen.
    async fn is_at(&self, title: &str, path: &str) {
        self.phone.assert_page(title, path).await;
        assert_eq!(self.lang_shown().await, self.lang, "at {path}");
        self.in_language(self.lang).await;
        self.phone.assert_fits_the_screen().await;
        let page = format!("{title} at {path}, {}", self.screen.name());
        self.phone.assert_accessible(&page).await;
    }

    async fn lang_shown(&self) -> Lang {
        let tag = self
            .phone
            .client
            .execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap_or_else(|e| panic!("<html lang>: {e}"));
        Lang::of_tag(tag.as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("<html lang={tag}>"))
    }

    async fn in_language(&self, shown: Lang) {
        let footer = self.phone.text_of(".site-footer").await;
        let texts: &Texts = shown.texts();
        assert!(
            footer.contains(texts.common.footer_qq)
                && footer.contains(shown.other().texts().common.language_name),
            "the footer in {shown:?} offers the other language: {footer}"
        );
    }

    /// Presses the switcher, which offers `lang`; the page comes back at `path` in it.
    async fn switch_to(&self, lang: Lang, path: &str) {
        let button = self.phone.text_of(".lang-switch button").await;
        assert_eq!(button, lang.texts().common.language_name);
        self.phone.click(Locator::Css(".lang-switch button")).await;
        assert_eq!(self.lang_shown().await, lang, "switched at {path}");
        assert_eq!(self.phone.path().await, path);
    }

    /// The pictures README shows: every page on the phone, the two that
    /// change most with the width on the laptop, the login in dark mode.
    fn in_readme(&self, page: &str) -> bool {
        match self.screen {
            Screen::Phone => matches!(
                page,
                "login" | "bind" | "bind-refused" | "home" | "account" | "error"
            ),
            Screen::Desktop => matches!(page, "login" | "bind"),
            Screen::DarkPhone => page == "login",
        }
    }

    /// Saves the screen as `target/screenshots/tour/{lang}/{page}-{screen}.png`,
    /// and under `docs/screenshots/` when asked to.
    async fn shoot(&self, page: &str) {
        let png = self
            .phone
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {page}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let file = format!("{}/{page}-{}.png", self.lang.tag(), self.screen.name());
        let mut dirs = vec![super::screenshot_dir().join("tour")];
        if std::env::var_os("QQLOGIN_README_SCREENSHOTS").is_some() && self.in_readme(page) {
            dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"));
        }
        for dir in dirs {
            let path = dir.join(&file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            println!("screenshot: {}", path.display());
        }
    }
}

#[actix_web::test]
async fn in_chinese_on_a_phone() {
    tour(Lang::Zh, Screen::Phone).await;
}

#[actix_web::test]
async fn in_english_on_a_phone() {
    tour(Lang::En, Screen::Phone).await;
}

#[actix_web::test]
async fn in_chinese_on_a_phone_in_dark_mode() {
    tour(Lang::Zh, Screen::DarkPhone).await;
}

#[actix_web::test]
async fn in_chinese_on_a_laptop() {
    tour(Lang::Zh, Screen::Desktop).await;
}

#[actix_web::test]
async fn in_english_on_a_laptop() {
    tour(Lang::En, Screen::Desktop).await;
}
