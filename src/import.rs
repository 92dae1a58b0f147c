//! `qqlogin import-django --from URL`: the Django site's users and QQ links
//! copied into this service's tables, for a site that leaves Django for good.
//!
//! One transaction; idempotent (a user already here under the same mobile
//! and user name, a link already here, is left as it is and counted as
//! such). A user keeps its Django id where that id is free. Nothing is
//! chosen silently: what is not copied is listed with the reason.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::{Date, Month, PrimitiveDateTime};

use crate::db::django::{self as source, DjangoLink, DjangoUser, ImportedUser};
use crate::db::qq_link::NewLink;
use crate::db::{self, Conn, Db, DbError};
use crate::domain::{Mobile, OpenId};

/// What an import did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub users_copied: usize,
    pub users_already_here: usize,
    pub links_copied: usize,
    pub links_already_here: usize,
    pub skipped: Vec<Skipped>,
}

/// A row not copied, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// `user <id>` or `openid <openid>`, as at the Django site.
    pub row: String,
    pub why: &'static str,
}

/// Reads the Django site's tables from `from` and copies them into `to`,
/// linking QQ accounts for `app_id`.
pub async fn import_django(from: &Db, to: &Db, app_id: &str) -> Result<Summary, DbError> {
    let (users, links) = from
        .run(|conn| Ok((source::users(conn)?, source::links(conn)?)))
        .await?;
    let app_id = app_id.to_owned();
    to.transaction(move |conn| copy(conn, &users, &links, &app_id))
        .await
}

fn copy(
    conn: &mut Conn<'_>,
    users: &[DjangoUser],
    links: &[DjangoLink],
    app_id: &str,
) -> Result<Summary, DbError> {
    let mut summary = Summary::default();
    // Django's user id → this service's.
    let mut ids = HashMap::new();
    for user in users {
        match copy_user(conn, user)? {
            Copied::New(id) => {
                summary.users_copied += 1;
                ids.insert(user.id, id);
            }
            Copied::AlreadyHere(id) => {
                summary.users_already_here += 1;
                ids.insert(user.id, id);
            }
            Copied::Not(why) => summary.skipped.push(Skipped {
                row: format!("user {}", user.id),
                why,
            }),
        }
    }
    db::django::move_id_sequence(conn)?;
    for (link, refused) in sort_links(links) {
        let row = format!("openid {}", link.openid);
        if let Some(why) = refused {
            summary.skipped.push(Skipped { row, why });
            continue;
        }
        let Some(&user_id) = ids.get(&link.user_id) else {
            summary.skipped.push(Skipped {
                row,
                why: "its user was not copied",
            });
            continue;
        };
        match copy_link(conn, app_id, &link.openid, user_id)? {
            Ok(true) => summary.links_copied += 1,
            Ok(false) => summary.links_already_here += 1,
            Err(why) => summary.skipped.push(Skipped { row, why }),
        }
    }
    Ok(summary)
}

enum Copied {
    New(i64),
    AlreadyHere(i64),
    Not(&'static str),
}

fn copy_user(conn: &mut Conn<'_>, user: &DjangoUser) -> Result<Copied, DbError> {
    let Some(mobile) = user.mobile.as_deref().and_then(|m| Mobile::parse(m).ok()) else {
        return Ok(Copied::Not("no well-formed mobile"));
    };
    if let Some(here) = db::user::find_by_mobile(conn, mobile.as_str())? {
        return Ok(if here.username == user.username {
            Copied::AlreadyHere(here.id)
        } else {
            Copied::Not("its mobile belongs to another account here")
        });
    }
    if db::user::find_by_login(conn, &user.username)?.is_some() {
        return Ok(Copied::Not("its user name belongs to another account here"));
    }
    let imported = ImportedUser {
        id: user.id,
        username: &user.username,
        mobile: mobile.as_str(),
        password_hash: &user.password,
        is_active: user.is_active,
        joined: user
            .date_joined
            .as_deref()
            .and_then(parse_datetime)
            .unwrap_or_else(db::now),
    };
    if db::user::find_by_id(conn, user.id)?.is_none() {
        db::django::insert_with_id(conn, &imported)?;
        Ok(Copied::New(user.id))
    } else {
        Ok(Copied::New(db::django::insert_with_new_id(
            conn, &imported,
        )?))
    }
}

/// The links in order, each with the reason it may not be copied: Django
/// never kept an openid to one user, nor a user to one QQ account; this
/// service does, and will not choose which of several is right.
fn sort_links(links: &[DjangoLink]) -> Vec<(&DjangoLink, Option<&'static str>)> {
    let mut users_of: HashMap<&str, HashSet<i64>> = HashMap::new();
    let mut openids_of: HashMap<i64, HashSet<&str>> = HashMap::new();
    for link in links {
        users_of
            .entry(&link.openid)
            .or_default()
            .insert(link.user_id);
        openids_of
            .entry(link.user_id)
            .or_default()
            .insert(&link.openid);
    }
    let mut seen = HashSet::new();
    links
        .iter()
        // The same link twice is one link.
        .filter(|link| seen.insert((link.user_id, link.openid.as_str())))
        .map(|link| {
            let refused = if OpenId::parse(&link.openid).is_err() {
                Some("the openid is malformed")
            } else if users_of[link.openid.as_str()].len() > 1 {
                Some("the openid is linked to several users")
            } else if openids_of[&link.user_id].len() > 1 {
                Some("its user holds several QQ accounts")
            } else {
                None
            };
            (link, refused)
        })
        .collect()
}

/// `Ok(true)`: linked now; `Ok(false)`: it was already; `Err`: why not.
fn copy_link(
    conn: &mut Conn<'_>,
    app_id: &str,
    openid: &str,
    user_id: i64,
) -> Result<Result<bool, &'static str>, DbError> {
    if let Some((here, _)) = db::user::find_by_openid(conn, app_id, openid)? {
        return Ok(if here.id == user_id {
            Ok(false)
        } else {
            Err("the openid is linked to another account here")
        });
    }
    if db::qq_link::of_user(conn, app_id, user_id)?.is_some() {
        return Ok(Err("its user is linked to another QQ account here"));
    }
    let link = NewLink {
        app_id,
        openid,
        unionid: None,
        nickname: None,
        avatar_url: None,
    };
    db::qq_link::insert(conn, link, user_id)?;
    Ok(Ok(true))
}

/// `YYYY-MM-DD HH:MM:SS` at the start of `text` (what either database
/// writes for a datetime, with or without fractions or an offset), to the
/// second, as written.
pub fn parse_datetime(text: &str) -> Option<PrimitiveDateTime> {
    let head = text.get(..19)?;
    let numbers: Vec<u16> = head
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [year, month, day, hour, minute, second] = numbers[..] else {
        return None;
    };
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::from(year), month, u8::try_from(day).ok()?).ok()?;
    date.with_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_as_either_database_writes_them() {
        let at = parse_datetime("2019-03-01 10:20:30.123456").unwrap();
        assert_eq!(at.to_string(), "2019-03-01 10:20:30.0");
        assert_eq!(
            parse_datetime("2019-03-01 10:20:30+08"),
            Some(at.replace_nanosecond(0).unwrap())
        );
        assert_eq!(
            parse_datetime("2019-03-01T10:20:30"),
            Some(at.replace_nanosecond(0).unwrap())
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2019-13-01 10:20:30"), None);
    }
}
