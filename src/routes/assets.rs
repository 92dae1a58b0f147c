//! Static files, compiled into the binary so it needs nothing beside it.
//! (Behind nginx, `static/` is served by nginx directly.)

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

const APP_CSS: &str = include_str!("../../static/app.css");

pub async fn serve(file: web::Path<String>) -> HttpResponse {
    match file.as_str() {
        "app.css" => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
            .body(APP_CSS),
        _ => HttpResponse::NotFound().finish(),
    }
}
