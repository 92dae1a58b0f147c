//! Sign-in events: every login (and why one failed), bind, link, unlink,
//! password change or reset, mobile change, session end and deletion, with
//! who, when, from which address and browser. The account centre lists a
//! person's own; they are kept `QQLOGIN_EVENTS_KEEP_DAYS`.
//!
//! A request hands its event to a queue and answers at once; one task writes
//! what has queued up in one transaction, so that a login never waits for
//! its record and a busy minute costs a few commits, not one per login.

use std::net::IpAddr;

use tokio::sync::mpsc;

use crate::db::sign_in_event::{self as queries, NewEvent};
use crate::db::{self, Db};

/// Events the queue holds before new ones are dropped (and the drop logged):
/// a database gone for a while must not grow the service's memory.
const QUEUE: usize = 4096;
/// Events written in one transaction at most.
const BATCH: usize = 256;
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
