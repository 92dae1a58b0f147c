//! Operators' commands (`qqlogin <command>`), run instead of the server with
//! the same settings, beside a running service: a table for people, JSON
//! for scripts (`--json`). Exit codes: 0 done; 1 the database (or the
//! import's source) failed; 3 no such user; 2 a bad command line (clap's).

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use time::PrimitiveDateTime;

use crate::config::{
    Command, Config, DatabaseUrl, Output, QqMode, SenderConfig, SessionsCommand, UserTables,
    UsersCommand,
};
use crate::db::sign_in_event::{NewEvent, StoredEvent};
use crate::db::user::User;
use crate::db::{self, Conn, Db, DbConn, DbError};
use crate::events::Kind;
use crate::import::{Summary, import_django};
use crate::qq::stand_in::DEV_APP_ID;

/// How long a command waits for a database connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// Users `users list` prints at most.
const LISTED: i64 = 200;
/// Events `users show` prints.
const EVENTS_SHOWN: i64 = 20;
/// Exit code: the user named is not there.
const NO_SUCH_USER: u8 = 3;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "QQLOGIN_USER_TABLES=django: the users are the Django site's own already, there is nothing to import"
    )]
    SharedAlready,
    #[error("no user {0} (give an id, a user name or a mobile)")]
    NoSuchUser(String),
    #[error("--since {0}: give a day (2026-12-01) or a moment (2026-12-01 08:00:00), UTC")]
    BadSince(String),
}

impl From<diesel::result::Error> for CliError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

pub async fn run(command: Command, config: Config) -> ExitCode {
    let app_id = match &config.qq {
        QqMode::Real { app_id, .. } => app_id.clone(),
        QqMode::DevStandIn => DEV_APP_ID.to_owned(),
    };
    let db = Db::new(
        config.database.clone(),
        config.user_tables,
        2,
        CONNECT_WITHIN,
    );
    if let Command::Check { output } = command {
        return check(&db, &config, output).await;
    }
    let done = async {
        db.migrate().await?;
        match command {
            Command::ImportDjango { from, json } => import(&db, from, json, &config, &app_id).await,
            // Answered above: it reports a database that is away instead of failing on it.
            Command::Check { .. } => Ok(()),
            Command::Migrate => {
                println!("{}: migrations applied", config.database.describe());
                Ok(())
            }
            Command::Users { action } => users(&db, action, &app_id).await,
            Command::Sessions {
                action: SessionsCommand::End { user, output },
            } => end_sessions(&db, &user, output).await,
            Command::Events {
                user,
                since,
                limit,
                output,
            } => events(&db, user, since, limit, output).await,
        }
    };
    match done.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ CliError::NoSuchUser(_)) => {
            eprintln!("qqlogin: {e}");
            ExitCode::from(NO_SUCH_USER)
        }
        Err(e) => {
            eprintln!("qqlogin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import(
    db: &Db,
    from: DatabaseUrl,
    json: bool,
    config: &Config,
    app_id: &str,
) -> Result<(), CliError> {
    if config.user_tables == UserTables::Django {
        return Err(CliError::SharedAlready);
    }
    let source = Db::new(from, UserTables::Qqlogin, 1, CONNECT_WITHIN);
    let summary = import_django(&source, db, app_id).await?;
    if json {
        print_json(&summary);
    } else {
        print!("{}", report(&summary, &config.database));
    }
    Ok(())
}

/// The import's summary, for a person.
fn report(summary: &Summary, target: &DatabaseUrl) -> String {
    let mut text = format!(
        "Imported into {}: {} users copied, {} already here; {} QQ links copied, {} already here; {} rows skipped.\n",
        target.describe(),
        summary.users_copied,
        summary.users_already_here,
        summary.links_copied,
        summary.links_already_here,
        summary.skipped.len(),
    );
    if summary.users_copied == 0 && summary.links_copied == 0 {
        text.push_str("Nothing new: everything copyable was here already.\n");
    }
    for skipped in &summary.skipped {
        text.push_str(&format!("skipped {}: {}\n", skipped.row, skipped.why));
    }
    text
}

/// One thing `check` looked at.
#[derive(Serialize)]
struct Checked {
    what: &'static str,
    ok: bool,
    detail: String,
}

/// The settings (valid, or the program would not have started), the
/// database, QQ's endpoints and the SMS sender.
async fn check(db: &Db, config: &Config, output: Output) -> ExitCode {
    let mut found = vec![Checked {
        what: "settings",
        ok: true,
        detail: match config.dev_reason {
            Some(why) => format!("development mode ({why})"),
            None => "production mode".to_owned(),
        },
    }];
    found.push(match db.ping().await {
        Ok(()) => Checked {
            what: "database",
            ok: true,
            detail: format!("{} answers", config.database.describe()),
        },
        Err(e) => Checked {
            what: "database",
            ok: false,
            detail: format!("{}: {e}", config.database.describe()),
        },
    });
    if config.user_tables == UserTables::Django {
        found.push(shared_links(db).await);
    }
    found.push(match &config.qq {
        QqMode::Real { graph_url, .. } => {
            let me = graph_url.join("oauth2.0/me").ok();
            reachable("QQ", me.as_ref()).await
        }
        QqMode::DevStandIn => Checked {
            what: "QQ",
            ok: true,
            detail: "the development stand-in, in the process".to_owned(),
        },
    });
    found.push(match &config.sms.sender {
        SenderConfig::Log => Checked {
            what: "SMS sender",
            ok: true,
            detail: "log (development mode: codes go to the log)".to_owned(),
        },
        SenderConfig::Webhook { url, .. } => reachable("SMS sender", Some(url)).await,
        SenderConfig::TencentCloud(tc) => reachable("SMS sender", Some(&tc.endpoint)).await,
    });
    let all_ok = found.iter().all(|c| c.ok);
    if output.json {
        print_json(&serde_json::json!({ "ok": all_ok, "checks": found }));
    } else {
        for c in &found {
            println!(
                "{:<11} {:<7} {}",
                c.what,
                if c.ok { "ok" } else { "PROBLEM" },
                c.detail
            );
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether `url` answers at all (any HTTP status will do: a request without
/// credentials is refused by QQ and by a webhook alike, but it arrived).
/// Nothing is sent that would log anyone in or send a text.
/// The Django site's QQ links that the service will not choose between.
async fn shared_links(db: &Db) -> Checked {
    const SHOWN: usize = 10;
    let what = "QQ links";
    let found = db
        .run(|conn| db::shared_tables::links_twice(conn, SHOWN as i64 + 1))
        .await;
    let (openids, users) = match found {
        Ok(found) => found,
        Err(e) => {
            return Checked {
                what,
                ok: false,
                detail: format!("tb_oauth_qq could not be read: {e}"),
            };
        }
    };
    if openids.is_empty() && users.is_empty() {
        return Checked {
            what,
            ok: true,
            detail: "tb_oauth_qq: each QQ account linked to one user, each user to one QQ account"
                .to_owned(),
        };
    }
    let list = |items: &[String]| {
        let mut shown = items
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if items.len() > SHOWN {
            shown.push_str(", …");
        }
        shown
    };
    let users: Vec<String> = users.iter().map(i64::to_string).collect();
    Checked {
        what,
        ok: false,
        detail: format!(
            "tb_oauth_qq links QQ accounts to several users (these cannot log in with QQ until              all but one link are removed): openids [{}]; users with several QQ accounts: [{}]",
            list(&openids),
            list(&users),
        ),
    }
}

async fn reachable(what: &'static str, url: Option<&url::Url>) -> Checked {
    let Some(url) = url else {
        return Checked {
            what,
            ok: false,
            detail: "its URL cannot be formed".to_owned(),
        };
    };
    let client = reqwest::Client::builder().timeout(CONNECT_WITHIN).build();
    let answered = match client {
        Ok(client) => client.get(url.clone()).send().await,
        Err(e) => Err(e),
    };
    let host = url.host_str().unwrap_or("?").to_owned();
    match answered {
        Ok(response) => Checked {
            what,
            ok: true,
            detail: format!("{host} answers (HTTP {})", response.status().as_u16()),
        },
        Err(e) => Checked {
            what,
            ok: false,
            detail: format!("{host} does not answer: {}", e.without_url()),
        },
    }
}

/// A user as commands print it: never its password hash.
#[derive(Serialize)]
struct UserRow {
    id: i64,
    username: String,
    mobile: String,
    active: bool,
    has_password: bool,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            mobile: user.mobile.clone(),
            active: user.is_active,
            has_password: user.has_usable_password(),
        }
    }
}

#[derive(Serialize)]
struct EventRow {
    at: String,
    user_id: Option<i64>,
    kind: String,
    method: Option<String>,
    outcome: String,
    address: Option<String>,
    user_agent: Option<String>,
}

impl From<StoredEvent> for EventRow {
    fn from(e: StoredEvent) -> Self {
        Self {
            at: timestamp(e.at),
            user_id: e.user_id,
            kind: e.kind,
            method: e.method,
            outcome: e.outcome,
            address: e.address,
            user_agent: e.user_agent,
        }
    }
}

#[derive(Serialize)]
struct Shown {
    user: UserRow,
    qq_openid: Option<String>,
    qq_nickname: Option<String>,
    qq_linked_at: Option<String>,
    sessions: usize,
    events: Vec<EventRow>,
}

async fn users(db: &Db, action: UsersCommand, app_id: &str) -> Result<(), CliError> {
    let app_id = app_id.to_owned();
    match action {
        UsersCommand::List { search, output } => {
            let found = db
                .run(move |conn| db::user::list(conn, search.as_deref(), LISTED))
                .await?;
            let rows: Vec<UserRow> = found.iter().map(UserRow::from).collect();
            if output.json {
                print_json(&rows);
            } else {
                print_users(&rows);
            }
        }
        UsersCommand::Show { user, output } => {
            let found = user_named(db, &user).await?;
            let shown = db
                .run(move |conn| {
                    let link = db::qq_link::of_user(conn, &app_id, found.id)?;
                    Ok(Shown {
                        qq_openid: link.as_ref().map(|l| l.openid.clone()),
                        qq_nickname: link.as_ref().and_then(|l| l.nickname.clone()),
                        qq_linked_at: link.as_ref().map(|l| timestamp(l.created_at)),
                        sessions: db::session::of_user(conn, found.id, db::now())?.len(),
                        events: db::sign_in_event::list(conn, Some(found.id), None, EVENTS_SHOWN)?
                            .into_iter()
                            .map(EventRow::from)
                            .collect(),
                        user: UserRow::from(&found),
                    })
                })
                .await?;
            if output.json {
                print_json(&shown);
            } else {
                print_shown(&shown);
            }
        }
        UsersCommand::Disable { user, output } => {
            let (found, ended) = db
                .transaction(move |conn| {
                    let found = find(conn, &user)?;
                    db::user::set_active(conn, found.id, false)?;
                    let ended = db::session::end_all(conn, found.id, None)?;
                    record(conn, Kind::Disable, found.id)?;
                    Ok::<_, CliError>((found, ended))
                })
                .await?;
            changed(output, &found, "disabled", ended);
        }
        UsersCommand::Enable { user, output } => {
            let found = db
                .transaction(move |conn| {
                    let found = find(conn, &user)?;
                    db::user::set_active(conn, found.id, true)?;
                    record(conn, Kind::Enable, found.id)?;
                    Ok::<_, CliError>(found)
                })
                .await?;
            changed(output, &found, "enabled", 0);
        }
        UsersCommand::Unlink { user, output } => {
            let (found, unlinked) = db
                .transaction(move |conn| {
                    let found = find(conn, &user)?;
                    let unlinked = db::qq_link::delete_of_user(conn, &app_id, found.id)?;
                    if unlinked {
                        record(conn, Kind::Unlink, found.id)?;
                    }
                    Ok::<_, CliError>((found, unlinked))
                })
                .await?;
            let what = if unlinked {
                "unlinked from QQ"
            } else {
                "not linked to QQ"
            };
            changed(output, &found, what, 0);
        }
    }
    Ok(())
}

async fn end_sessions(db: &Db, user: &str, output: Output) -> Result<(), CliError> {
    let user = user.to_owned();
    let (found, ended) = db
        .transaction(move |conn| {
            let found = find(conn, &user)?;
            let ended = db::session::end_all(conn, found.id, None)?;
            if ended > 0 {
                record(conn, Kind::SessionEnd, found.id)?;
            }
            Ok::<_, CliError>((found, ended))
        })
        .await?;
    changed(output, &found, "logged out everywhere", ended);
    Ok(())
}

async fn events(
    db: &Db,
    user: Option<String>,
    since: Option<String>,
    limit: i64,
    output: Output,
) -> Result<(), CliError> {
    let since = since
        .map(|s| parse_since(&s).ok_or(CliError::BadSince(s)))
        .transpose()?;
    let user_id = match user {
        Some(user) => Some(user_named(db, &user).await?.id),
        None => None,
    };
    let rows: Vec<EventRow> = db
        .run(move |conn| db::sign_in_event::list(conn, user_id, since, limit))
        .await?
        .into_iter()
        .map(EventRow::from)
        .collect();
    if output.json {
        print_json(&rows);
    } else {
        print_events(&rows);
    }
    Ok(())
}

async fn user_named(db: &Db, reference: &str) -> Result<User, CliError> {
    let named = reference.to_owned();
    db.run(move |conn| db::user::find_by_reference(conn, &named))
        .await?
        .ok_or_else(|| CliError::NoSuchUser(reference.to_owned()))
}

fn find(conn: &mut Conn<'_>, reference: &str) -> Result<User, CliError> {
    db::user::find_by_reference(conn, reference)?
        .ok_or_else(|| CliError::NoSuchUser(reference.to_owned()))
}

/// An operator's change, as a sign-in event (no address: it came from here).
fn record(conn: &mut DbConn, kind: Kind, user_id: i64) -> Result<(), DbError> {
    db::sign_in_event::insert_all(
        conn,
        &[NewEvent {
            user_id: Some(user_id),
            at: db::now(),
            kind: kind.as_str(),
            method: None,
            outcome: crate::events::Event::OK,
            address: None,
            user_agent: Some("qqlogin (operator)".to_owned()),
        }],
    )
}

/// What a change did, for a person or a script.
fn changed(output: Output, user: &User, what: &str, sessions_ended: usize) {
    if output.json {
        print_json(&serde_json::json!({
            "user": UserRow::from(user), "done": what, "sessions_ended": sessions_ended,
        }));
    } else {
        println!(
            "user {} ({}): {what}; {sessions_ended} sessions ended",
            user.id, user.username
        );
    }
}

fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn print_users(rows: &[UserRow]) {
    let lines = rows.iter().map(|u| {
        vec![
            u.id.to_string(),
            u.username.clone(),
            u.mobile.clone(),
            yes_no(u.active).to_owned(),
            yes_no(u.has_password).to_owned(),
        ]
    });
    print_table(&["ID", "USERNAME", "MOBILE", "ACTIVE", "PASSWORD"], lines);
}

fn print_shown(shown: &Shown) {
    let u = &shown.user;
    println!("user      {} ({})", u.id, u.username);
    println!("mobile    {}", u.mobile);
    println!("active    {}", yes_no(u.active));
    println!("password  {}", yes_no(u.has_password));
    match (&shown.qq_openid, &shown.qq_linked_at) {
        (Some(openid), Some(at)) => println!(
            "qq        {openid} ({}), linked {at}",
            shown.qq_nickname.as_deref().unwrap_or("no nickname")
        ),
        _ => println!("qq        not linked"),
    }
    println!("sessions  {}", shown.sessions);
    println!();
    print_events(&shown.events);
}

fn print_events(rows: &[EventRow]) {
    let lines = rows.iter().map(|e| {
        vec![
            e.at.clone(),
            e.user_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            e.kind.clone(),
            e.method.clone().unwrap_or_else(|| "-".to_owned()),
            e.outcome.clone(),
            e.address.clone().unwrap_or_else(|| "-".to_owned()),
        ]
    });
    print_table(
        &["AT (UTC)", "USER", "KIND", "METHOD", "OUTCOME", "ADDRESS"],
        lines,
    );
}

/// Columns padded to their widest cell (by characters: user names may be Chinese).
fn print_table(header: &[&str], lines: impl Iterator<Item = Vec<String>>) {
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(lines);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn timestamp(at: PrimitiveDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    format!("{} {}", at.date(), at.time())
}

/// `YYYY-MM-DD`, or with ` HH:MM:SS` after it.
fn parse_since(text: &str) -> Option<PrimitiveDateTime> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text} 00:00:00")
    } else {
        text.to_owned()
    };
    crate::import::parse_datetime(&full)
}
