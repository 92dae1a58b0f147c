//! Image codes (issue 22): the picture at `/image_codes/<uuid>/` and the
//! single-use check `/sms_codes/` makes of what was typed. Answers are read
//! through `ImageCodes::answer_for_tests`, a hook of debug builds only.

use qqlogin::db::{self, image_code};
use qqlogin::domain::ImageCodeId;
use qqlogin::image_code::{ImageCodeError, ImageCodes, TTL};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::backend_tests;
use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};

const FRONT_END: &str = "http://www.meiduo.site:8080";

/// A fresh UUID (version 4 in form), as the front end makes one.
fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random_range(0..0x1000u16),
        0x8000 | rng.random_range(0..0x4000u16),
        rng.random_range(0..1u64 << 48),
    )
}

/// `GET /image_codes/<id>/`, without credentials, as an `<img>` asks.
async fn fetch_image(app: &TestApp, id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(&format!("/image_codes/{id}/")))
        .send()
        .await
        .unwrap()
}

/// Asks the service for an image for `id`; returns its answer.
async fn issue(app: &TestApp, id: &str) -> String {
    let response = fetch_image(app, id).await;
    assert_eq!(response.status(), 200);
    answer(app, id).await.expect("an answer is stored")
}

async fn answer(app: &TestApp, id: &str) -> Option<String> {
    codes(app)
        .answer_for_tests(&ImageCodeId::parse(id).unwrap())
        .await
}

/// The service `/sms_codes/` checks with, on the application's database.
fn codes(app: &TestApp) -> ImageCodes {
    ImageCodes::new(app.db.clone())
}

fn assert_wrong(result: Result<(), ImageCodeError>) {
    assert!(
        matches!(result, Err(ImageCodeError::Wrong)),
        "{result:?} should be refused as a wrong code"
    );
}

async fn the_image_is_a_small_png_never_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = fetch_image(&app, &new_id()).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    let picture = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
    assert_eq!((picture.width(), picture.height()), (120, 40));
}

async fn the_right_answer_passes_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = new_id();
    let answer = issue(&app, &id).await;
    assert_eq!(answer.chars().count(), 4, "{answer}");

    codes(&app).check(&id, &answer).await.unwrap();
    assert_wrong(codes(&app).check(&id, &answer).await);
}

async fn a_wrong_answer_fails_and_uses_the_code_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = new_id();
    let answer = issue(&app, &id).await;
    // Not among the characters ever drawn, so surely wrong.
    assert_wrong(codes(&app).check(&id, "0000").await);

    assert_wrong(codes(&app).check(&id, &answer).await);
    assert_eq!(self::answer(&app, &id).await, None);
}

async fn the_answer_may_be_typed_in_any_case(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = new_id();
    let answer = issue(&app, &id).await;

    let typed = format!(" {} ", answer.to_lowercase());
    codes(&app).check(&id.to_uppercase(), &typed).await.unwrap();
}

async fn an_expired_code_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let (fresh, stale) = (new_id(), new_id());
    let (fresh_answer, stale_answer) = (issue(&app, &fresh).await, issue(&app, &stale).await);
    let almost = db::now() + TTL - time::Duration::seconds(5);
    let past = db::now() + TTL + time::Duration::seconds(1);

    codes(&app)
        .check_at(&fresh, &fresh_answer, almost)
        .await
        .unwrap();
    assert_wrong(codes(&app).check_at(&stale, &stale_answer, past).await);
    assert_eq!(answer(&app, &stale).await, None, "used up all the same");
}

async fn a_new_image_for_an_id_replaces_its_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = new_id();
    let first = issue(&app, &id).await;
    let mut second = issue(&app, &id).await;
    // One chance in 31^4 that the same code is drawn twice.
    while second == first {
        second = issue(&app, &id).await;
    }

    assert_wrong(codes(&app).check(&id, &first).await);
}

async fn unknown_and_malformed_ids_fail_the_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = new_id();
    let answer = issue(&app, &id).await;

    assert_wrong(codes(&app).check(&new_id(), &answer).await);
    assert_wrong(codes(&app).check("", &answer).await);
    assert_wrong(codes(&app).check(&id[1..], &answer).await);
    codes(&app).check(&id, &answer).await.unwrap();
}

async fn new_images_purge_expired_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = new_id();
    let stored = old.clone();
    app.db
        .write(move |conn| {
            image_code::put(
                conn,
                &stored,
                "ABCD",
                db::now() - time::Duration::seconds(1),
            )
        })
        .await
        .unwrap();
    assert_eq!(answer(&app, &old).await.as_deref(), Some("ABCD"));

    issue(&app, &new_id()).await;

    assert_eq!(answer(&app, &old).await, None);
}

async fn a_malformed_id_is_a_json_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for id in ["nope", "0f8fad5bd9cb469fa16570867728950e", "%7B0f8fad5b%7D"] {
        let response = fetch_image(&app, id).await;
        assert_eq!(response.status(), 400, "{id}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{id}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let response = reqwest::Client::new()
        .post(app.url(&format!("/image_codes/{}/", new_id())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

async fn the_configured_front_end_may_load_it_across_origins(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            cors_origins: vec![FRONT_END.into()],
            ..Default::default()
        },
    )
    .await;

    let response = reqwest::Client::new()
        .get(app.url(&format!("/image_codes/{}/", new_id())))
        .header("origin", FRONT_END)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], FRONT_END);
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
}

async fn another_instance_checks_a_code_this_one_drew(backend: Backend) {
    let first = spawn_app(backend.clone()).await;
    let second = spawn_app_with(
        backend,
        Options {
            database: Some(first.config.database.clone()),
            ..Default::default()
        },
    )
    .await;
    let id = new_id();
    assert_eq!(fetch_image(&first, &id).await.status(), 200);
    let drawn_by_first = answer(&first, &id).await.unwrap();
    // The second instance draws for the same id: the first now knows the new answer.
    let mut drawn_by_second = issue(&second, &id).await;
    while drawn_by_second == drawn_by_first {
        drawn_by_second = issue(&second, &id).await;
    }

    assert_eq!(answer(&first, &id).await, Some(drawn_by_second.clone()));
    codes(&first).check(&id, &drawn_by_second).await.unwrap();
    assert_wrong(codes(&second).check(&id, &drawn_by_second).await);
}

backend_tests!(
    the_image_is_a_small_png_never_cached,
    the_right_answer_passes_once,
    a_wrong_answer_fails_and_uses_the_code_up,
    the_answer_may_be_typed_in_any_case,
    an_expired_code_fails,
    a_new_image_for_an_id_replaces_its_answer,
    unknown_and_malformed_ids_fail_the_check,
    new_images_purge_expired_answers,
    a_malformed_id_is_a_json_400,
    the_configured_front_end_may_load_it_across_origins,
    another_instance_checks_a_code_this_one_drew,
);
