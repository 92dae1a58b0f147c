//! Accounts: logging in with a password and linking a QQ account; what a
//! logged-in person may change is in [`changes`]. The pages and the JSON API
//! both call these; neither holds a copy of the logic. Each operation records
//! its sign-in event ([`crate::events`]).

mod changes;

pub use changes::{Credential, Overview};

use secrecy::SecretString;

use crate::config::BindRequireSms;
use crate::db::qq_link::NewLink;
use crate::db::user::User;
use crate::db::{self, Db, DbConn, DbError};
use crate::domain::{Mobile, OpenId, Password, SmsCode};
use crate::events::{Client, Event, Events, Kind, Method};
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
    /// Linking from the account centre: that QQ account belongs to another account.
    #[error("this QQ account is linked to another user")]
    QqLinkedElsewhere,
    /// Unlinking QQ would leave the account with no way in (no usable password).
    #[error("QQ is the account's only way in")]
    OnlyWayIn,
    #[error("the account has no QQ link")]
    NotLinked,
    /// The new mobile belongs to another account.
    #[error("the mobile belongs to another account")]
    MobileTaken,
    /// No account has this mobile (said only after the mobile was proven).
    #[error("no account has this mobile")]
    NoSuchAccount,
    /// The password (or code) typed to prove who one is again is wrong.
    #[error("wrong password or code at re-authentication")]
    ReauthFailed,
    /// The account is disabled (Django's `is_active = false`): no way in.
    #[error("the account is disabled")]
    Disabled,
    /// The Django site's own rows (orders, addresses) still name the account,
    /// so its database refuses to delete it.
    #[error("the Django site's data still refers to the account")]
    HeldBySite,
    /// The logged-in account no longer exists.
    #[error("the account no longer exists")]
    Gone,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl AccountError {
    /// The failure, as a sign-in event records it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WrongCredentials => "wrong_credentials",
            Self::Throttled(_) => "throttled",
            Self::WrongPassword => "wrong_password",
            Self::NotProven => "not_proven",
            Self::SmsCodeRequired => "sms_code_required",
            Self::SmsCodeInvalid => "sms_code_invalid",
            Self::OpenIdTaken => "qq_already_linked",
            Self::UserHasOtherQq => "user_has_other_qq",
            Self::TokenUsed => "token_used",
            Self::Busy => "busy",
            Self::Db(DbError::LinkedTwice) => "qq_linked_twice",
            Self::Db(_) => "database",
            Self::Hash(_) => "hasher_busy",
            Self::OnlyWayIn => "only_way_in",
            Self::QqLinkedElsewhere => "qq_linked_elsewhere",
            Self::NotLinked => "not_linked",
            Self::MobileTaken => "mobile_taken",
            Self::NoSuchAccount => "no_such_account",
            Self::Gone => "account_gone",
            Self::HeldBySite => "held_by_site",
            Self::ReauthFailed => "reauth_failed",
            Self::Disabled => "disabled",
        }
    }
}

/// The account operations, with what they need.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    hasher: Hasher,
    throttle: Throttle,
    sms: SmsCodes,
    events: Events,
    bind_require: BindRequireSms,
    app_id: String,
}

/// What a bind is given: the person's typed fields, validated.
pub struct BindRequest<'a> {
    pub pending: &'a PendingBind,
    pub mobile: &'a Mobile,
    pub password: Password,
    pub sms_code: Option<SmsCode>,
    pub client: &'a Client,
    /// The JSON API's bind (`Method::QqApi`) or the page's (`Method::Qq`).
    pub method: Method,
}

/// A user a QQ account is linked to, and whether the link's stored QQ
/// nickname and avatar are due for a refresh (at most once a day).
pub struct Linked {
    pub user: User,
    pub profile_stale: bool,
}

/// How often a link's QQ nickname and avatar are asked of QQ again, at most.
const PROFILE_FRESH_FOR: time::Duration = time::Duration::days(1);

/// What [`Accounts`] is built from.
pub struct AccountsConfig {
    pub app_id: String,
    pub free_tries: FreeTries,
    pub bind_require: BindRequireSms,
}

impl Accounts {
    pub fn new(
        db: Db,
        hasher: Hasher,
        sms: SmsCodes,
        events: Events,
        config: AccountsConfig,
    ) -> Self {
        Self {
            throttle: Throttle::new(db.clone(), config.free_tries),
            db,
            hasher,
            sms,
            events,
            bind_require: config.bind_require,
            app_id: config.app_id,
        }
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Passwords being hashed or waiting to be, now.
    pub fn hashes_in_line(&self) -> usize {
        self.hasher.in_line()
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
    ) -> Result<Option<Linked>, AccountError> {
        let (app_id, openid) = (self.app_id.clone(), openid.as_str().to_owned());
        let found = match unionid.map(str::to_owned) {
            None => {
                self.db
                    .run(move |conn| db::user::find_by_openid(conn, &app_id, &openid))
                    .await?
            }
            Some(unionid) => self.find_by_unionid(app_id, openid, unionid).await?,
        };
        let stale_before = db::now() - PROFILE_FRESH_FOR;
        Ok(found.map(|(user, profile_at)| Linked {
            user,
            profile_stale: profile_at.is_none_or(|at| at < stale_before),
        }))
    }

    async fn find_by_unionid(
        &self,
        app_id: String,
        openid: String,
        unionid: String,
    ) -> Result<Option<db::user::LinkedUser>, AccountError> {
        let u = unionid.clone();
        if let Some(found) = self
            .db
            .run(move |conn| db::user::find_by_unionid(conn, &u))
            .await?
        {
            return Ok(Some(found));
        }
        let (a, o) = (app_id.clone(), openid.clone());
        let found = self
            .db
            .run(move |conn| db::user::find_by_openid(conn, &a, &o))
            .await?;
        if found.is_some() {
            self.db
                .write(move |conn| db::qq_link::add_unionid(conn, &app_id, &openid, &unionid))
                .await?;
        }
        Ok(found)
    }

    /// Stores the QQ account's nickname and avatar as QQ shows them now.
    pub async fn refresh_profile(
        &self,
        openid: &OpenId,
        nickname: Option<String>,
        avatar: Option<crate::domain::AvatarUrl>,
    ) -> Result<(), AccountError> {
        let (app_id, openid) = (self.app_id.clone(), openid.as_str().to_owned());
        Ok(self
            .db
            .write(move |conn| {
                db::qq_link::set_profile(
                    conn,
                    &app_id,
                    &openid,
                    nickname.as_deref(),
                    avatar.as_ref().map(|a| a.as_str()),
                )
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
        client: &Client,
    ) -> Result<User, AccountError> {
        let attempt = self.throttle.attempt(login, client.address);
        let failed =
            |user_id, why| Event::failed(Kind::Login, Some(Method::Password), user_id, why);
        if let Err(after) = self.throttle.reserve(&attempt).await? {
            self.events.record(failed(None, "throttled"), client);
            return Err(AccountError::Throttled(after));
        }
        // A password of impossible length cannot be right: no need to hash it.
        // A name or password that cannot exist is wrong without asking the database.
        let login = login.trim();
        let possible_name =
            (1..=64).contains(&login.chars().count()) && !login.chars().any(char::is_control);
        let checked = match Password::parse(password) {
            Ok(password) if possible_name => self.check_password(login, password).await?,
            _ => Checked::NoSuchUser,
        };
        let user = match checked {
            Checked::Right(user) if !user.is_active => {
                self.events
                    .record(failed(Some(user.id), "disabled"), client);
                return Err(AccountError::Disabled);
            }
            Checked::Right(user) => user,
            Checked::Wrong(user_id) => {
                self.events
                    .record(failed(Some(user_id), "wrong_password"), client);
                return Err(AccountError::WrongCredentials);
            }
            Checked::NoSuchUser => {
                self.events.record(failed(None, "unknown_account"), client);
                return Err(AccountError::WrongCredentials);
            }
        };
        self.forgive(&attempt).await;
        self.events.record(
            Event::ok(Kind::Login, Some(Method::Password), user.id),
            client,
        );
        Ok(user)
    }

    /// A right password gives back the try it reserved. Should that fail, the
    /// person is still logged in: the try only stays counted.
    async fn forgive(&self, attempt: &Attempt) {
        if let Err(e) = self.throttle.succeeded(attempt).await {
            log::warn!("a successful try could not be given back to the throttle: {e}");
        }
    }

    /// Whether `password` is the account's; an unknown name costs the same time.
    async fn check_password(
        &self,
        login: &str,
        password: Password,
    ) -> Result<Checked, AccountError> {
        let login = login.to_owned();
        let user = self
            .db
            .run(move |conn| db::user::find_by_login(conn, &login))
            .await?;
        let stored = user.as_ref().and_then(User::usable_password_hash);
        let right = self.hasher.verify(password.clone(), stored).await?;
        Ok(match user {
            Some(user) if right => {
                if self.hasher.is_outdated(&user.password_hash) {
                    self.store_again(user.id, password).await;
                }
                Checked::Right(user)
            }
            Some(user) => Checked::Wrong(user.id),
            None => Checked::NoSuchUser,
        })
    }

    /// Stores a right password that was found under an outdated hash (another
    /// algorithm, or fewer rounds) again as the hasher makes them now. Should
    /// that fail, the login goes on: the old hash still works, and the next
    /// login tries again.
    async fn store_again(&self, user_id: i64, password: Password) {
        let stored = async {
            let hash = self.hasher.hash(password).await?;
            self.db
                .write(move |conn| db::user::set_password_hash(conn, user_id, &hash))
                .await?;
            Ok::<_, AccountError>(())
        };
        match stored.await {
            Ok(()) => log::info!("user {user_id}'s outdated password hash was replaced"),
            Err(e) => {
                log::warn!("user {user_id}'s outdated password hash could not be replaced: {e}")
            }
        }
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
        let (client, method) = (request.client, request.method);
        let bound = self.bind_unrecorded(request).await;
        let event = match &bound {
            Ok(user) => Event::ok(Kind::Bind, Some(method), user.id),
            Err(e) => Event::failed(Kind::Bind, Some(method), None, e.reason()),
        };
        self.events.record(event, client);
        bound
    }

    async fn bind_unrecorded(&self, request: BindRequest<'_>) -> Result<User, AccountError> {
        let BindRequest {
            pending,
            mobile,
            password,
            sms_code,
            client,
            method: _,
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
            .attempt(mobile.as_str(), client.address)
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
            .verify(password, user.usable_password_hash())
            .await?
        {
            // Only someone who proved the mobile learns that it is registered.
            return Err(if proof.is_some() {
                AccountError::WrongPassword
            } else {
                AccountError::NotProven
            });
        }
        if !user.is_active {
            return Err(AccountError::Disabled);
        }
        match linked {
            // Linked to this QQ account a moment ago (two binds of it at once): done.
            Some(current) if current == pending.openid.as_str() => return Ok(user),
            Some(_) => return Err(AccountError::UserHasOtherQq),
            None => {}
        }
        let (link, user_id) = (self.new_link(pending), user.id);
        let token = crate::secret::db_key(&pending.id);
        let proof = proof.cloned();
        self.db
            .transaction(move |conn| {
                use_up_token(conn, &token)?;
                db::qq_link::insert(conn, link.as_new(), user_id).map_err(TxError::Link)?;
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
        let (link, mobile) = (self.new_link(pending), mobile.as_str().to_owned());
        let token = crate::secret::db_key(&pending.id);
        let proof = proof.clone();
        self.db
            .transaction(move |conn| {
                use_up_token(conn, &token)?;
                let user = db::user::insert(conn, &mobile, &hash).map_err(TxError::User)?;
                db::qq_link::insert(conn, link.as_new(), user.id).map_err(TxError::Link)?;
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

/// A link to insert, owned, so that it can travel to the blocking thread.
struct OwnedLink {
    app_id: String,
    openid: String,
    unionid: Option<String>,
    nickname: Option<String>,
    avatar_url: Option<String>,
}

impl OwnedLink {
    fn as_new(&self) -> NewLink<'_> {
        NewLink {
            app_id: &self.app_id,
            openid: &self.openid,
            unionid: self.unionid.as_deref(),
            nickname: self.nickname.as_deref(),
            avatar_url: self.avatar_url.as_deref(),
        }
    }
}

impl Accounts {
    /// The link a pending bind makes, with the QQ face it was shown with.
    fn new_link(&self, pending: &PendingBind) -> OwnedLink {
        OwnedLink {
            app_id: self.app_id.clone(),
            openid: pending.openid.as_str().to_owned(),
            unionid: pending.unionid.clone(),
            nickname: pending.nickname.clone(),
            avatar_url: pending.avatar.as_ref().map(|a| a.as_str().to_owned()),
        }
    }
}

/// What a password check found.
enum Checked {
    Right(User),
    /// The account exists (its id) and the password is wrong.
    Wrong(i64),
    NoSuchUser,
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
