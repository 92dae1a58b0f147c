//! Static files, compiled into the binary so it needs nothing beside it,
//! each under a name that changes with its content ([`crate::site`]): a
//! browser may keep one for a year without asking again.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::site::Site;

pub async fn serve(site: web::Data<Site>, file: web::Path<String>) -> HttpResponse {
    match site.served_as(&file) {
        Some(asset) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, asset.content_type))
            .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}
