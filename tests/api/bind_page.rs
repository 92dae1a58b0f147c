//! The bind page's two ways, "我已有账号" and "我是新用户": two forms that
//! post the contract's fields to the same route, and a refusal shown beside
//! the field it concerns, in the way the person used.

use qqlogin::config::BindRequireSms;

use crate::helpers::{
    Backend, Browser, Options, PASSWORD, Page, TestApp, new_openid, spawn_app_with,
};

async fn on_the_bind_page(bind_require: BindRequireSms) -> (TestApp, Browser, Page) {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            tweak: Box::new(move |c| c.sms.bind_require = bind_require),
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    (app, browser, page)
}

/// `page`'s bind form sent with a mobile that is not one (`12345`) and
/// `fields`: the refusal.
async fn bind_a_bad_mobile(
    app: &TestApp,
    browser: &Browser,
    page: &Page,
    fields: &[(&str, &str)],
) -> Page {
    let token = page.field("access_token").unwrap();
    let csrf = page.field("csrf_token").unwrap();
    let mut form = vec![
        ("access_token", token.as_str()),
        ("csrf_token", csrf.as_str()),
        ("mobile", "12345"),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(fields);
    let refused = app.post_form(browser, "/oauth/qq/bind", &form).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    refused
}

/// The form of the way `way` on `page`.
fn form_of<'a>(page: &'a Page, way: &str) -> &'a str {
    let start = page
        .body
        .find(&format!(
            "<form method=\"post\" action=\"/oauth/qq/bind#{way}\">"
        ))
        .unwrap_or_else(|| panic!("no form for {way}: {}", page.body));
    let end = start + page.body[start..].find("</form>").unwrap();
    &page.body[start..end]
}

#[actix_web::test]
async fn both_ways_post_the_contracts_fields_to_the_same_route() {
    let (_app, _browser, page) = on_the_bind_page(BindRequireSms::New).await;
    let existing = form_of(&page, "existing");
    let new = form_of(&page, "new");
    for form in [existing, new] {
        for field in ["csrf_token", "access_token", "mobile", "password"] {
            assert!(
                form.contains(&format!("name=\"{field}\"")),
                "{field}: {form}"
            );
        }
        assert!(form.contains("type=\"tel\" inputmode=\"numeric\" autocomplete=\"tel\""));
    }
    assert!(existing.contains("autocomplete=\"current-password\""));
    assert!(
        !existing.contains("name=\"sms_code\""),
        "no code to link an account"
    );
    assert!(new.contains(
        "name=\"sms_code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\""
    ));
    assert!(new.contains("autocomplete=\"new-password\""));
    assert!(new.contains("formaction=\"/oauth/qq/sms#new\""));
}

#[actix_web::test]
async fn when_every_bind_takes_a_code_the_existing_way_asks_for_it_too() {
    let (_app, _browser, page) = on_the_bind_page(BindRequireSms::Always).await;
    let existing = form_of(&page, "existing");
    assert!(
        existing.contains("id=\"existing-sms_code\" name=\"sms_code\""),
        "{existing}"
    );
    assert!(existing.contains("formaction=\"/oauth/qq/sms#existing\""));
}

#[actix_web::test]
async fn a_refusal_is_shown_beside_its_field_in_the_way_used_with_the_mobile_kept() {
    let (app, browser, page) = on_the_bind_page(BindRequireSms::New).await;
    // The new way's fields keep the single form's ids: `mobile`, not `new-mobile`.
    for (way, prefix, other) in [("new", "", "existing-"), ("existing", "existing-", "")] {
        let refused = bind_a_bad_mobile(&app, &browser, &page, &[("way", way)]).await;
        let form = form_of(&refused, way);
        assert!(
            form.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"{prefix}mobile-error\""
            )),
            "{form}"
        );
        assert!(form.contains(&format!(
            "<p class=\"field-error\" id=\"{prefix}mobile-error\" role=\"alert\">"
        )));
        assert!(
            form.contains("value=\"12345\""),
            "the mobile is kept: {form}"
        );
        assert!(
            !refused
                .body
                .contains(&format!("id=\"{other}mobile-error\""))
        );
    }
}

/// A form of another making, without `way`: one with an SMS code is
/// answered in the new way, one without in the existing way.
#[actix_web::test]
async fn a_bind_without_a_way_is_answered_where_it_most_likely_came_from() {
    let (app, browser, page) = on_the_bind_page(BindRequireSms::New).await;
    for (sms_code, shown_at) in [
        ("123456", "id=\"mobile-error\""),
        ("", "id=\"existing-mobile-error\""),
    ] {
        let refused = bind_a_bad_mobile(&app, &browser, &page, &[("sms_code", sms_code)]).await;
        assert!(
            refused.body.contains(shown_at),
            "{shown_at}: {}",
            refused.body
        );
    }
}
