//! What a logged-in person may see and change of their account: the account
//! centre's overview, asking again who they are, unlinking and linking QQ,
//! the password, the mobile, the sessions, deleting the account; and the
//! forgotten password, by SMS code.

use crate::db::qq_link::Link;
use crate::db::session::UserSessionRow;
use crate::db::sign_in_event::StoredEvent;
use crate::db::user::User;
use crate::db::{self, DbError};
use crate::domain::{Mobile, Password, SmsCode};
use crate::events::{Client, Event, Kind, Method};
use crate::sms::{CodeError, Proof};
use crate::token::PendingBind;

use super::{AccountError, Accounts};

/// Sign-ins the account centre lists.
const SIGN_INS_LISTED: i64 = 20;
/// What counts as a sign-in: a login, and the bind that logs a QQ account in
/// for the first time.
const SIGN_INS: [Kind; 2] = [Kind::Login, Kind::Bind];

/// What the account centre shows.
pub struct Overview {
    pub user: User,
    pub link: Option<Link>,
    /// The newest sign-ins (logins and binds), successful or not, newest first.
    pub sign_ins: Vec<StoredEvent>,
    pub sessions: Vec<UserSessionRow>,
}

/// How a person proves who they are again.
pub enum Credential {
    Password(Password),
    /// A code sent to the account's mobile: for accounts without a usable password.
    SmsCode(SmsCode),
}

impl Accounts {
    /// Everything the account centre shows, in one trip to the database.
    pub async fn overview(&self, user_id: i64) -> Result<Option<Overview>, AccountError> {
        let app_id = self.app_id.clone();
        Ok(self
            .db
            .run(move |conn| {
                let Some(user) = db::user::find_by_id(conn, user_id)? else {
                    return Ok(None);
                };
                Ok(Some(Overview {
                    link: db::qq_link::of_user(conn, &app_id, user_id)?,
                    sign_ins: db::sign_in_event::recent(
                        conn,
                        user_id,
                        &SIGN_INS.map(Kind::as_str),
                        SIGN_INS_LISTED,
                    )?,
                    sessions: db::session::of_user(conn, user_id, db::now())?,
                    user,
                }))
            })
            .await?)
    }

    /// Checks who the person is again before an action that matters: the
    /// account's password, or, for an account without one, an SMS code sent
    /// to its mobile. Wrong passwords count against the same throttle as logins.
    pub async fn verify_again(
        &self,
        user_id: i64,
        credential: Credential,
        client: &Client,
    ) -> Result<User, AccountError> {
        let user = self.find_by_id(user_id).await?.ok_or(AccountError::Gone)?;
        match credential {
            Credential::Password(password) => {
                let attempt = self.throttle.attempt(&user.mobile, client.address);
                self.throttle
                    .reserve(&attempt)
                    .await?
                    .map_err(AccountError::Throttled)?;
                let stored = user.usable_password_hash();
                if !self.hasher.verify(password, stored).await? {
                    return Err(AccountError::ReauthFailed);
                }
                self.forgive(&attempt).await;
                Ok(user)
            }
            // A code is the proof only of an account that has no password:
            // for the others, a stolen phone must not stand in for it.
            Credential::SmsCode(_) if user.has_usable_password() => Err(AccountError::ReauthFailed),
            Credential::SmsCode(code) => {
                let proof = self
                    .prove_mobile(&user.mobile, &code)
                    .await
                    .map_err(|e| match e {
                        AccountError::SmsCodeInvalid => AccountError::ReauthFailed,
                        other => other,
                    })?;
                self.use_up(proof).await?;
                Ok(user)
            }
        }
    }

    /// Unlinks the account's QQ account, unless QQ is its only way in.
    pub async fn unlink_qq(&self, user: &User, client: &Client) -> Result<(), AccountError> {
        let done = async {
            if !user.has_usable_password() {
                return Err(AccountError::OnlyWayIn);
            }
            let (app_id, user_id) = (self.app_id.clone(), user.id);
            let removed = self
                .db
                .write(move |conn| db::qq_link::delete_of_user(conn, &app_id, user_id))
                .await?;
            if removed {
                Ok(())
            } else {
                Err(AccountError::NotLinked)
            }
        }
        .await;
        self.record(Kind::Unlink, None, user.id, &done, client);
        done
    }

    /// Links the QQ account QQ just vouched for to the logged-in account. One
    /// QQ account per user: refused when this account has one, or that QQ
    /// account is linked to another.
    pub async fn link_qq(
        &self,
        user_id: i64,
        pending: &PendingBind,
        client: &Client,
    ) -> Result<(), AccountError> {
        let link = self.new_link(pending);
        let done = self
            .db
            .transaction(move |conn| {
                if db::qq_link::of_user(conn, &link.app_id, user_id)?.is_some() {
                    return Err(AccountError::UserHasOtherQq);
                }
                match db::qq_link::insert(conn, link.as_new(), user_id) {
                    Err(e) if e.is_unique_violation() => Err(AccountError::QqLinkedElsewhere),
                    other => Ok(other?),
                }
            })
            .await;
        self.record(Kind::Link, Some(Method::Qq), user_id, &done, client);
        done
    }

    /// Sets a new password and ends every other session of the account.
    pub async fn change_password(
        &self,
        user_id: i64,
        new: Password,
        keep_session: Option<String>,
        client: &Client,
    ) -> Result<(), AccountError> {
        let hash = self.hasher.hash(new).await?;
        let done = self
            .db
            .transaction(move |conn| {
                db::user::set_password_hash(conn, user_id, &hash)?;
                db::session::end_all(conn, user_id, keep_session.as_deref())?;
                Ok::<_, AccountError>(())
            })
            .await;
        self.record(Kind::PasswordChange, None, user_id, &done, client);
        done
    }

    /// Moves the account to `mobile`, proven by `code`.
    pub async fn change_mobile(
        &self,
        user: &User,
        mobile: &Mobile,
        code: &SmsCode,
        client: &Client,
    ) -> Result<(), AccountError> {
        let done = async {
            let proof = self.prove_mobile(mobile.as_str(), code).await?;
            let (user, mobile) = (user.clone(), mobile.as_str().to_owned());
            self.db
                .transaction(move |conn| {
                    match db::user::set_mobile(conn, &user, &mobile) {
                        Err(e) if e.is_unique_violation() => return Err(AccountError::MobileTaken),
                        other => other?,
                    }
                    use_up_in(conn, &proof)
                })
                .await
        }
        .await;
        self.record(
            Kind::MobileChange,
            Some(Method::SmsCode),
            user.id,
            &done,
            client,
        );
        done
    }

    /// Ends the session `handle` of the account.
    pub async fn end_session(
        &self,
        user_id: i64,
        handle: String,
        client: &Client,
    ) -> Result<bool, AccountError> {
        let ended = self
            .db
            .write(move |conn| db::session::end_one(conn, user_id, &handle))
            .await?;
        if ended {
            self.events
                .record(Event::ok(Kind::SessionEnd, None, user_id), client);
        }
        Ok(ended)
    }

    /// Ends every session of the account but `keep` (this browser's).
    pub async fn end_other_sessions(
        &self,
        user_id: i64,
        keep: Option<String>,
        client: &Client,
    ) -> Result<usize, AccountError> {
        let ended = self
            .db
            .write(move |conn| db::session::end_all(conn, user_id, keep.as_deref()))
            .await?;
        if ended > 0 {
            self.events
                .record(Event::ok(Kind::SessionEnd, None, user_id), client);
        }
        Ok(ended)
    }

    /// Deletes the account (注销): the user, its QQ link and sessions go; its
    /// sign-in events stay, stripped of everything that names the person.
    pub async fn delete(&self, user: &User) -> Result<(), AccountError> {
        let (user_id, mobile) = (user.id, user.mobile.clone());
        self.db
            .transaction(move |conn| {
                db::sign_in_event::forget_user(conn, user_id)?;
                db::session::end_all(conn, user_id, None)?;
                db::sms_code::forget(conn, &mobile)?;
                db::user::delete(conn, user_id)?;
                Ok::<_, AccountError>(())
            })
            .await
            .map_err(|e| match e {
                AccountError::Db(e) if e.is_foreign_key_violation() => AccountError::HeldBySite,
                other => other,
            })?;
        self.events.record_anonymous(Event {
            kind: Kind::Delete,
            method: None,
            user_id: None,
            outcome: Event::OK,
        });
        Ok(())
    }

    /// The forgotten password: `code` proves `mobile`, whose account gets
    /// the password `new`; every session of the account ends. Whether the
    /// mobile has an account is said only once the code proved it.
    pub async fn reset_password(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        new: Password,
        client: &Client,
    ) -> Result<User, AccountError> {
        let proof = self.prove_mobile(mobile.as_str(), code).await?;
        let m = mobile.as_str().to_owned();
        let user = self
            .db
            .run(move |conn| db::user::find_by_mobile(conn, &m))
            .await?
            .ok_or(AccountError::NoSuchAccount)?;
        let hash = self.hasher.hash(new).await?;
        let user_id = user.id;
        let done = self
            .db
            .transaction(move |conn| {
                db::user::set_password_hash(conn, user_id, &hash)?;
                db::session::end_all(conn, user_id, None)?;
                use_up_in(conn, &proof)
            })
            .await;
        self.record(
            Kind::PasswordReset,
            Some(Method::SmsCode),
            user_id,
            &done,
            client,
        );
        done.map(|()| user)
    }

    /// The QQ link of `user_id`, if any (the reset page offers to remove it).
    pub async fn link_of(&self, user_id: i64) -> Result<Option<Link>, AccountError> {
        let app_id = self.app_id.clone();
        Ok(self
            .db
            .run(move |conn| db::qq_link::of_user(conn, &app_id, user_id))
            .await?)
    }

    /// Checks `code` for `mobile`: wrong, expired or used is one error.
    async fn prove_mobile(&self, mobile: &str, code: &SmsCode) -> Result<Proof, AccountError> {
        let mobile = Mobile::parse(mobile).map_err(|_| AccountError::SmsCodeInvalid)?;
        self.sms.check(&mobile, code).await.map_err(|e| match e {
            CodeError::Invalid => AccountError::SmsCodeInvalid,
            CodeError::Db(e) => AccountError::Db(e),
        })
    }

    async fn use_up(&self, proof: Proof) -> Result<(), AccountError> {
        self.db
            .transaction(move |conn| use_up_in(conn, &proof))
            .await
    }

    fn record(
        &self,
        kind: Kind,
        method: Option<Method>,
        user_id: i64,
        done: &Result<(), AccountError>,
        client: &Client,
    ) {
        let event = match done {
            Ok(()) => Event::ok(kind, method, user_id),
            Err(e) => Event::failed(kind, method, Some(user_id), e.reason()),
        };
        self.events.record(event, client);
    }
}

/// Uses up the code that proved a mobile, inside the change's transaction.
fn use_up_in(conn: &mut db::DbConn, proof: &Proof) -> Result<(), AccountError> {
    if proof.use_up(conn)? {
        Ok(())
    } else {
        Err(AccountError::SmsCodeInvalid)
    }
}

impl From<diesel::result::Error> for AccountError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}
