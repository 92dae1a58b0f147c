use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Liveness: the process runs and answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: the database answers too.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.migrated.load(Ordering::Acquire) {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database not migrated yet");
    }
    match state.accounts.db().ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            log::warn!("not ready: {e}");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
}
