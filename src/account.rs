//! Accounts: logging in with a password and linking a QQ account. The pages
//! and the JSON API both call these; neither holds a copy of the logic.

use std::net::IpAddr;

use secrecy::SecretString;

use crate::config::BindRequireSms;
use crate::db::user::User;
use crate::db::{self, Db, DbConn, DbError};
use crate::domain::{Mobile, OpenId, Password, SmsCode};
use crate::password::{HashError, Hasher};
use crate::sms::{CodeError, Proof, SmsCodes};
use crate::throttle::{Attempt, FreeTries, RetryAfter, Throttle};
use crate::token::{BIND_TOKEN_TTL, PendingBind};

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
    /// The mobile's account exists and the password is wrong (said only to
    /// someone who proved the mobile with an SMS code).
    #[error("wrong password for the existing account")]
    WrongPassword,
    /// No SMS code, and either no account for the mobile or a wrong password
    /// for it: one answer for both, so that whether a number is registered
    /// stays private until the number is proven.
    #[error("no SMS code, and no account or a wrong password")]
    NotProven,
    /// An SMS code is required for every bind (`QQLOGIN_BIND_REQUIRE_SMS=always`).
    #[error("an SMS code is required")]
    SmsCodeRequired,
    /// The SMS code typed is wrong, expired or used.
    #[error("the SMS code is wrong, expired or used")]
    SmsCodeInvalid,
    #[error("this QQ account is already linked to a user")]
    OpenIdTaken,
    #[error("this user is already linked to another QQ account")]
    UserHasOtherQq,
    /// The bind token was used by a bind that succeeded.
    #[error("the bind token was used already")]
    TokenUsed,
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
    hasher: Hasher,
    throttle: Throttle,
    sms: SmsCodes,
    bind_require: BindRequireSms,
    app_id: String,
}

/// What a bind is given: the person's typed fields, validated.
pub struct BindRequest<'a> {
    pub pending: &'a PendingBind,
    pub mobile: &'a Mobile,
    pub password: Password,
    pub sms_code: Option<SmsCode>,
    pub from: Option<IpAddr>,
}

impl Accounts {
    pub fn new(
        db: Db,
        hasher: Hasher,
        sms: SmsCodes,
        app_id: String,
        free_tries: FreeTries,
        bind_require: BindRequireSms,
    ) -> Self {
        Self {
            throttle: Throttle::new(db.clone(), free_tries),
            db,
            hasher,
            sms,
            bind_require,
            app_id,
        }
    }

    pub fn sms(&self) -> &SmsCodes {
        &self.sms
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The user a QQ account is linked to, if any: the only query of a
    /// returning login. With a unionid (`QQ_USE_UNIONID`) a link made by any
    /// of the developer's QQ apps is found first; a link made by this app's
    /// openid alone is found next, and gains the unionid.
    pub async fn find_linked(
        &self,
        openid: &OpenId,
        unionid: Option<&str>,
    ) -> Result<Option<User>, AccountError> {
        let (app_id, openid) = (self.app_id.clone(), openid.as_str().to_owned());
        let Some(unionid) = unionid.map(str::to_owned) else {
            return Ok(self
                .db
                .run(move |conn| db::user::find_by_openid(conn, &app_id, &openid))
                .await?);
        };
        let u = unionid.clone();
        if let Some(user) = self
            .db
            .run(move |conn| db::user::find_by_unionid(conn, &u))
            .await?
        {
            return Ok(Some(user));
        }
        let (a, o) = (app_id.clone(), openid.clone());
        let user = self
            .db
            .run(move |conn| db::user::find_by_openid(conn, &a, &o))
            .await?;
        if user.is_some() {
            self.db
                .write(move |conn| db::qq_link::add_unionid(conn, &app_id, &openid, &unionid))
                .await?;
        }
        Ok(user)
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
        let attempt = self.throttle.attempt(login, from);
        self.throttle
            .reserve(&attempt)
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
        let user = user.ok_or(AccountError::WrongCredentials)?;
        self.forgive(&attempt).await;
        Ok(user)
    }

    /// A right password gives back the try it reserved. Should that fail, the
    /// person is still logged in: the try only stays counted.
    async fn forgive(&self, attempt: &Attempt) {
        if let Err(e) = self.throttle.succeeded(attempt).await {
            log::warn!("a successful try could not be given back to the throttle: {e}");
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

    /// Links the pending QQ account to the account of `mobile`, creating that
    /// account (user name = mobile, with `password`) when there is none, and
    /// uses up the bind token (and the SMS code). Returns the user, now logged
    /// in by QQ from here on.
    ///
    /// A new account needs an SMS code for its mobile; an existing one needs
    /// its password (and the code too under `QQLOGIN_BIND_REQUIRE_SMS=always`).
    /// Every cheap check comes first (token unused, QQ account unlinked, the
    /// code, the throttle), the password hash last. Safe under races: the
    /// unique constraints decide, and each write is one transaction with the
    /// token's and the code's use, so a lost race leaves nothing behind.
    pub async fn bind(&self, request: BindRequest<'_>) -> Result<User, AccountError> {
        let BindRequest {
            pending,
            mobile,
            password,
            sms_code,
            from,
        } = request;
        let (app_id, openid, token) = (
            self.app_id.clone(),
            pending.openid.as_str().to_owned(),
            crate::secret::db_key(&pending.id),
        );
        let m = mobile.as_str().to_owned();
        let (used, linked, existing) = self
            .db
            .run(move |conn| {
                Ok((
                    db::oauth_state::is_used(conn, &token)?,
                    db::user::find_by_openid(conn, &app_id, &openid)?.is_some(),
                    db::user::find_by_mobile_with_link(conn, &app_id, &m)?,
                ))
            })
            .await?;
        if used {
            return Err(AccountError::TokenUsed);
        }
        if linked {
            return Err(AccountError::OpenIdTaken);
        }
        let proof = match sms_code {
            Some(code) => Some(self.sms.check(mobile, &code).await.map_err(|e| match e {
                CodeError::Invalid => AccountError::SmsCodeInvalid,
                CodeError::Db(e) => AccountError::Db(e),
            })?),
            None if self.bind_require == BindRequireSms::Always => {
                return Err(AccountError::SmsCodeRequired);
            }
            None => None,
        };
        let attempt = self
            .throttle
            .attempt(mobile.as_str(), from)
            .with_bind_token(&pending.id);
        self.throttle
            .reserve(&attempt)
            .await?
            .map_err(AccountError::Throttled)?;
        let bound = match (existing, proof) {
            (Some((user, link)), proof) => {
                self.link_existing(user, link, pending, password, proof.as_ref())
                    .await
            }
            (None, Some(proof)) => match self
                .create_linked(pending, mobile, password.clone(), &proof)
                .await
            {
                // Someone created this mobile's account a moment ago: it is an existing one now.
                Err(CreateError::MobileTaken) => {
                    self.link_to_mobile(pending, mobile, password, &proof).await
                }
                Err(CreateError::Account(e)) => Err(e),
                Ok(user) => Ok(user),
            },
            (None, None) => {
                // The same time as a wrong password for an existing account,
                // so that the answer's timing does not tell them apart either.
                self.hasher.verify(password, None).await?;
                Err(AccountError::NotProven)
            }
        };
        if bound.is_ok() {
            self.forgive(&attempt).await;
        }
        bound
    }

    async fn link_to_mobile(
        &self,
        pending: &PendingBind,
        mobile: &Mobile,
        password: Password,
        proof: &Proof,
    ) -> Result<User, AccountError> {
        let (app_id, m) = (self.app_id.clone(), mobile.as_str().to_owned());
        match self
            .db
            .run(move |conn| db::user::find_by_mobile_with_link(conn, &app_id, &m))
            .await?
        {
            Some((user, link)) => {
                self.link_existing(user, link, pending, password, Some(proof))
                    .await
            }
            None => Err(AccountError::Busy),
        }
    }

    async fn link_existing(
        &self,
        user: User,
        linked: Option<String>,
        pending: &PendingBind,
        password: Password,
        proof: Option<&Proof>,
    ) -> Result<User, AccountError> {
        if !self
            .hasher
            .verify(password, Some(user.password_hash.clone()))
            .await?
        {
            // Only someone who proved the mobile learns that it is registered.
            return Err(if proof.is_some() {
                AccountError::WrongPassword
            } else {
                AccountError::NotProven
            });
        }
        match linked {
            // Linked to this QQ account a moment ago (two binds of it at once): done.
            Some(current) if current == pending.openid.as_str() => return Ok(user),
            Some(_) => return Err(AccountError::UserHasOtherQq),
            None => {}
        }
        let (app_id, openid, user_id) = (
            self.app_id.clone(),
            pending.openid.as_str().to_owned(),
            user.id,
        );
        let token = crate::secret::db_key(&pending.id);
        let unionid = pending.unionid.clone();
        let proof = proof.cloned();
        self.db
            .transaction(move |conn| {
                use_up_token(conn, &token)?;
                db::qq_link::insert(conn, &app_id, &openid, unionid.as_deref(), user_id)
                    .map_err(TxError::Link)?;
                use_up_code(conn, proof.as_ref())
            })
            .await
            .map_err(AccountError::from)?;
        Ok(user)
    }

    async fn create_linked(
        &self,
        pending: &PendingBind,
        mobile: &Mobile,
        password: Password,
        proof: &Proof,
    ) -> Result<User, CreateError> {
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| CreateError::Account(e.into()))?;
        let (app_id, openid, mobile) = (
            self.app_id.clone(),
            pending.openid.as_str().to_owned(),
            mobile.as_str().to_owned(),
        );
        let token = crate::secret::db_key(&pending.id);
        let unionid = pending.unionid.clone();
        let proof = proof.clone();
        self.db
            .transaction(move |conn| {
                use_up_token(conn, &token)?;
                let user = db::user::insert(conn, &mobile, &hash).map_err(TxError::User)?;
                db::qq_link::insert(conn, &app_id, &openid, unionid.as_deref(), user.id)
                    .map_err(TxError::Link)?;
                use_up_code(conn, Some(&proof))?;
                Ok(user)
            })
            .await
            .map_err(|e| match e {
                TxError::User(e) if e.is_unique_violation() => CreateError::MobileTaken,
                other => CreateError::Account(other.into()),
            })
    }
}

/// Marks the bind token keyed `token` used, in the bind's own transaction.
fn use_up_token(conn: &mut DbConn, token: &str) -> Result<(), TxError> {
    let forget_at = db::now().saturating_add(BIND_TOKEN_TTL);
    if db::oauth_state::use_once(conn, token, forget_at)? {
        Ok(())
    } else {
        Err(TxError::TokenUsed)
    }
}

/// Uses up the SMS code that proved the mobile, last in the bind's
/// transaction: a bind that lost a race on the account or the link says so,
/// rather than that its code is gone.
fn use_up_code(conn: &mut DbConn, proof: Option<&Proof>) -> Result<(), TxError> {
    match proof.map(|p| p.use_up(conn)).transpose()? {
        Some(false) => Err(TxError::CodeUsed),
        _ => Ok(()),
    }
}

enum CreateError {
    MobileTaken,
    Account(AccountError),
}

/// Why a bind's transaction was rolled back.
enum TxError {
    TokenUsed,
    /// A concurrent bind used the SMS code first.
    CodeUsed,
    User(DbError),
    Link(DbError),
    Other(DbError),
    Diesel(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Diesel(e)
    }
}

impl From<DbError> for TxError {
    fn from(e: DbError) -> Self {
        Self::Other(e)
    }
}

impl From<TxError> for AccountError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::TokenUsed => Self::TokenUsed,
            TxError::CodeUsed => Self::SmsCodeInvalid,
            TxError::Link(e) if e.is_unique_violation() => Self::OpenIdTaken,
            TxError::User(e) | TxError::Link(e) | TxError::Other(e) => Self::Db(e),
            TxError::Diesel(e) => Self::Db(DbError::Query(e)),
        }
    }
}
