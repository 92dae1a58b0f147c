//! Static files, compiled into the binary so it needs nothing beside it.
//! (Behind nginx, `static/` is served by nginx directly.)

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

const APP_CSS: &str = include_str!("../../static/app.css");
const SMS_JS: &str = include_str!("../../static/sms.js");
const AVATAR_JS: &str = include_str!("../../static/avatar.js");

pub async fn serve(file: web::Path<String>) -> HttpResponse {
    let (content_type, body) = match file.as_str() {
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "sms.js" => ("text/javascript; charset=utf-8", SMS_JS),
        "avatar.js" => ("text/javascript; charset=utf-8", AVATAR_JS),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}
