//! `GET /metrics`: Prometheus's text, for the peers in `QQLOGIN_METRICS_ALLOW`.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db;
use crate::metrics::{InUse, render};
use crate::state::AppState;

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // The connecting peer itself: behind nginx that is nginx, whose config
    // keeps /metrics to itself (docs/operating.md).
    let allowed = req
        .peer_addr()
        .is_some_and(|peer| state.metrics_allow.contains(peer.ip()));
    if !allowed {
        return HttpResponse::Forbidden().body("metrics are not for this address\n");
    }
    let accounts = &state.accounts;
    let (open, idle) = accounts.db().connections();
    // Without the database the rest is still worth reading.
    let sessions = accounts
        .db()
        .run(|conn| db::session::count_live(conn, db::now()))
        .await
        .unwrap_or(-1);
    let text = render(InUse {
        db_busy: open.saturating_sub(idle),
        db_idle: idle,
        sessions,
        hashes_in_line: accounts.hashes_in_line(),
    });
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(text)
}
