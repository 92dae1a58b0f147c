//! Accounts: logging in with a password and linking a QQ account. The pages
//! and the JSON API both call these; neither holds a copy of the logic.

use std::net::IpAddr;

use secrecy::SecretString;

use crate::db::batch::Batched;
use crate::db::user::User;
use crate::db::{self, Db, DbConn, DbError};
use crate::domain::{Mobile, OpenId, Password};
use crate::password::{HashError, Hasher};
use crate::throttle::{Attempt, RetryAfter, Throttle};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Unknown account or wrong password: one answer for both, so the answer
    /// does not reveal which accounts exist.
    #[error("wrong user name or password")]
    WrongCredentials,
    /// Too many failed attempts for this account name or from this address.
    #[error("too many failed attempts; retry after {} s", .0.0)]
    Throttled(RetryAfter),
    /// The mobile's account exists and the password is wrong.
    #[error("wrong password for the existing account")]
    WrongPassword,
    #[error("this QQ account is already linked to a user")]
    OpenIdTaken,
    #[error("this user is already linked to another QQ account")]
    UserHasOtherQq,
    /// The account changed under us twice in a row; the person may simply retry.
    #[error("the account changed during the operation")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// The account operations, with what they need.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    /// Returning logins' look-ups, batched while the database is busy.
    by_openid: Batched<String, User>,
    hasher: Hasher,
    throttle: Throttle,
    app_id: String,
}

impl Accounts {
    pub fn new(db: Db, hasher: Hasher, app_id: String) -> Self {
        let app = app_id.clone();
        Self {
            by_openid: Batched::new(db.clone(), move |conn, openids| {
                db::user::find_by_openids(conn, &app, openids)
            }),
            throttle: Throttle::new(db.clone()),
            db,
            hasher,
            app_id,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The user a QQ account is linked to, if any: the only query of a returning login.
    pub async fn find_by_openid(&self, openid: &OpenId) -> Result<Option<User>, AccountError> {
        Ok(self.by_openid.get(openid.as_str().to_owned()).await?)
    }

    /// The user a QQ account is linked to, if any, with `then` done for
    /// them in the same database write (the pages open the user's session
    /// there: [`crate::session::UserSession::log_in_linked`]). `then` may run
    /// twice ([`Db::write`]).
    pub async fn find_by_openid_then(
        &self,
        openid: &OpenId,
        mut then: impl FnMut(&mut DbConn, &User) -> Result<(), DbError> + Send + 'static,
    ) -> Result<Option<User>, AccountError> {
        let (app_id, openid) = (self.app_id.clone(), openid.as_str().to_owned());
        Ok(self
            .db
            .write(move |conn| {
                let found = db::user::find_by_openid(conn, &app_id, &openid)?;
                if let Some(user) = &found {
                    then(conn, user)?;
                }
                Ok(found)
            })
            .await?)
    }

    pub async fn find_by_id(&self, user_id: i64) -> Result<Option<User>, AccountError> {
        Ok(self
            .db
            .run(move |conn| db::user::find_by_id(conn, user_id))
            .await?)
    }

    /// Logs in by user name or mobile and password, within the throttle's limits.
    pub async fn log_in(
        &self,
        login: &str,
        password: SecretString,
        from: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let attempt = Attempt::new(login, from);
        self.throttle
            .check(&attempt)
            .await?
            .map_err(AccountError::Throttled)?;
        // A password of impossible length cannot be right: no need to hash it.
        // A name or password that cannot exist is wrong without asking the database.
        let login = login.trim();
        let possible_name =
            (1..=64).contains(&login.chars().count()) && !login.chars().any(char::is_control);
        let user = match Password::parse(password) {
            Ok(password) if possible_name => self.check_password(login, password).await?,
            _ => None,
        };
        match user {
            Some(user) => {
                self.throttle.succeeded(&attempt).await?;
                Ok(user)
            }
            None => {
                self.throttle.failed(&attempt).await?;
                Err(AccountError::WrongCredentials)
            }
        }
    }

    /// The user if `password` is theirs; an unknown name costs the same time.
    async fn check_password(
        &self,
        login: &str,
        password: Password,
    ) -> Result<Option<User>, AccountError> {
        let login = login.to_owned();
        let user = self
            .db
            .run(move |conn| db::user::find_by_login(conn, &login))
            .await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        Ok(if self.hasher.verify(password, stored).await? {
            user
        } else {
            None
        })
    }

    /// Links `openid` to the account of `mobile`, creating that account (user
    /// name = mobile, with `password`) when there is none. Returns the user,
    /// now logged in by QQ from here on.
    ///
    /// Safe under races: the unique constraints decide, and creating the user
    /// and its link is one transaction, so a lost race leaves nothing behind.
    pub async fn bind(
        &self,
        openid: &OpenId,
        mobile: &Mobile,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let attempt = Attempt::new(mobile.as_str(), from);
        self.throttle
            .check(&attempt)
            .await?
            .map_err(AccountError::Throttled)?;
        // Twice at most: a concurrent bind may create the same mobile's account
        // between our look-up and our insert; then it is an existing account.
        for _ in 0..2 {
            let (app_id, m) = (self.app_id.clone(), mobile.as_str().to_owned());
            let existing = self
                .db
                .run(move |conn| db::user::find_by_mobile_with_link(conn, &app_id, &m))
                .await?;
            match existing {
                Some((user, linked)) => {
                    let linked = self.link_existing(user, linked, openid, password).await;
                    match &linked {
                        Err(AccountError::WrongPassword) => self.throttle.failed(&attempt).await?,
                        Ok(_) => self.throttle.succeeded(&attempt).await?,
                        Err(_) => {}
                    }
                    return linked;
                }
                None => match self.create_linked(openid, mobile, password.clone()).await {
                    Err(CreateError::MobileTaken) => continue,
                    Err(CreateError::OpenIdTaken) => return Err(AccountError::OpenIdTaken),
                    Err(CreateError::Account(e)) => return Err(e),
                    Ok(user) => return Ok(user),
                },
            }
        }
        Err(AccountError::Busy)
    }

    async fn link_existing(
        &self,
        user: User,
        linked: Option<String>,
        openid: &OpenId,
        password: Password,
    ) -> Result<User, AccountError> {
        if !self
            .hasher
            .verify(password, Some(user.password_hash.clone()))
            .await?
        {
            return Err(AccountError::WrongPassword);
        }
        match linked {
            // Already done (a double submit): nothing to write.
            Some(current) if current == openid.as_str() => return Ok(user),
            Some(_) => return Err(AccountError::UserHasOtherQq),
            None => {}
        }
        let (app_id, openid, user_id) = (self.app_id.clone(), openid.as_str().to_owned(), user.id);
        match self
            .db
            .write(move |conn| db::qq_link::insert(conn, &app_id, &openid, user_id))
            .await
        {
            Ok(()) => Ok(user),
            Err(e) if e.is_unique_violation() => Err(AccountError::OpenIdTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_linked(
        &self,
        openid: &OpenId,
        mobile: &Mobile,
        password: Password,
    ) -> Result<User, CreateError> {
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| CreateError::Account(e.into()))?;
        let (app_id, openid, mobile) = (
            self.app_id.clone(),
            openid.as_str().to_owned(),
            mobile.as_str().to_owned(),
        );
        self.db
            .write(move |conn| {
                use diesel::Connection;
                Ok(conn.transaction::<_, TxError, _>(|conn| {
                    let user = db::user::insert(conn, &mobile, &hash).map_err(TxError::User)?;
                    db::qq_link::insert(conn, &app_id, &openid, user.id).map_err(TxError::Link)?;
                    Ok(user)
                }))
            })
            .await
            .map_err(|e| CreateError::Account(e.into()))?
            .map_err(|e| match e {
                TxError::User(e) if e.is_unique_violation() => CreateError::MobileTaken,
                TxError::Link(e) if e.is_unique_violation() => CreateError::OpenIdTaken,
                TxError::User(e) | TxError::Link(e) => CreateError::Account(e.into()),
                TxError::Diesel(e) => CreateError::Account(DbError::Query(e).into()),
            })
    }
}

enum CreateError {
    MobileTaken,
    OpenIdTaken,
    Account(AccountError),
}

/// Which statement of the create-and-link transaction failed.
enum TxError {
    User(DbError),
    Link(DbError),
    Diesel(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Diesel(e)
    }
}
