//! Sign-in events: every login (and why one failed), bind, link, unlink,
//! password change or reset, mobile change, session end and deletion, with
//! who, when, from which address and browser. The account centre lists a
//! person's own; they are kept `QQLOGIN_EVENTS_KEEP_DAYS`.
//!
//! A request hands its event to a queue and answers at once; one task writes
//! what has queued up, a tenth of a second at a time, in one transaction: a
//! login never waits for its record, and a busy second costs a few commits,
//! not one per login. (A hard stop loses what queued in its last moment.)

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::db::sign_in_event::{self as queries, NewEvent};
use crate::db::{self, Db};

/// Events the queue holds before new ones are dropped (and the drop logged):
/// a database gone for a while must not grow the service's memory.
const QUEUE: usize = 16_384;
/// Events written in one transaction at most.
const BATCH: usize = 1024;
/// How long events gather before a batch that is not full is written.
const GATHER: Duration = Duration::from_millis(100);
/// User agents are kept to this many characters.
const MAX_USER_AGENT_CHARS: usize = 200;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    Bind,
    Link,
    Unlink,
    PasswordChange,
    PasswordReset,
    MobileChange,
    /// A session ended: logged out, or ended from the account centre.
    SessionEnd,
    Delete,
    /// An operator disabled the account (`qqlogin users disable`), or enabled it.
    Disable,
    Enable,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Bind => "bind",
            Self::Link => "link",
            Self::Unlink => "unlink",
            Self::PasswordChange => "password_change",
            Self::PasswordReset => "password_reset",
            Self::MobileChange => "mobile_change",
            Self::SessionEnd => "session_end",
            Self::Delete => "delete",
            Self::Disable => "disable",
            Self::Enable => "enable",
        }
    }
}

/// How the person proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// QQ, through the pages.
    Qq,
    /// QQ, through the JSON API.
    QqApi,
    Password,
    SmsCode,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qq => "qq",
            Self::QqApi => "qq_api",
            Self::Password => "password",
            Self::SmsCode => "sms_code",
        }
    }
}

/// Where a request came from, as far as the service can tell.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// One event: `outcome` is `"ok"` or the reason of the failure.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub kind: Kind,
    pub method: Option<Method>,
    pub user_id: Option<i64>,
    pub outcome: &'static str,
}

impl Event {
    pub const OK: &'static str = "ok";

    pub fn ok(kind: Kind, method: Option<Method>, user_id: i64) -> Self {
        Self {
            kind,
            method,
            user_id: Some(user_id),
            outcome: Self::OK,
        }
    }

    pub fn failed(
        kind: Kind,
        method: Option<Method>,
        user_id: Option<i64>,
        why: &'static str,
    ) -> Self {
        Self {
            kind,
            method,
            user_id,
            outcome: why,
        }
    }
}

/// The queue to the events' writer; cheap to clone.
#[derive(Clone)]
pub struct Events {
    queue: mpsc::Sender<NewEvent>,
}

impl Events {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        actix_web::rt::spawn(write_events(db, waiting));
        Self { queue }
    }

    /// Records `event` from `client`, without waiting for the database.
    pub fn record(&self, event: Event, client: &Client) {
        crate::metrics::event(
            event.kind.as_str(),
            event.method.map(Method::as_str),
            event.outcome,
        );
        let row = NewEvent {
            user_id: event.user_id,
            at: db::now(),
            kind: event.kind.as_str(),
            method: event.method.map(Method::as_str),
            outcome: event.outcome,
            address: client.address.map(|a| a.to_string()),
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        };
        if let Err(e) = self.queue.try_send(row) {
            log::warn!("a sign-in event was dropped, its queue is full or closed: {e}");
        }
    }

    /// An event without an address or browser: a deleted account's last.
    pub fn record_anonymous(&self, event: Event) {
        self.record(event, &Client::default());
    }
}

async fn write_events(db: Db, mut waiting: mpsc::Receiver<NewEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            actix_web::rt::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                match waiting.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        let rows = std::mem::take(&mut batch);
        let n = rows.len();
        let written = db
            .transaction(move |conn| queries::insert_all(conn, &rows))
            .await;
        if let Err(e) = written {
            log::warn!("{n} sign-in events could not be written: {e}");
        }
    }
}

/// A user agent in a few words, the browser and the system, as pages show it.
pub fn short_agent(ua: Option<&str>) -> String {
    let t = &crate::i18n::texts().common;
    let Some(ua) = ua.filter(|ua| !ua.trim().is_empty()) else {
        return t.unknown_device.to_owned();
    };
    let browser = [
        ("MicroMessenger", t.wechat),
        ("MQQBrowser", t.qq_browser),
        (" QQ/", "QQ"),
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let system = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "Mac"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} · {s}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_come_out_short() {
        let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(short_agent(Some(phone)), "Safari · iPhone");
        let wechat = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0";
        assert_eq!(short_agent(Some(wechat)), "微信 · Android");
        assert_eq!(short_agent(Some("curl/8.0")), "curl/8.0");
        assert_eq!(short_agent(None), "未知设备");
    }
}
