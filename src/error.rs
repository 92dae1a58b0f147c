//! The web layer's one error type. Every failure a person can meet becomes,
//! here and only here, a status and a message in the request's language
//! ([`crate::i18n`]) saying what happened and what to do: an HTML page ([`AppError`]) or a JSON body ([`ApiError`]).
//! The full cause goes to the log, never to the person.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};

use crate::account::AccountError;
use crate::db::DbError;
use crate::flow::ArrivalError;
use crate::i18n::Message;
use crate::image_code::ImageCodeError;
use crate::password::HashError;
use crate::qq::QqError;
use crate::session::attempt::AttemptError;
use crate::session::{SessionError, StateError};
use crate::sms::SendRefused;
use crate::templates::{ErrorPage, Field, render};
use crate::token::TokenError;

/// Why a form (a bind, the account centre's, the password reset) was
/// refused before any account was asked: its input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("the bind token is invalid or expired")]
    Token,
    #[error("the bind token belongs to another browser")]
    OtherBrowser,
    #[error("a field is missing")]
    Missing,
    #[error("the mobile is malformed")]
    Mobile,
    #[error("the password has an impossible length")]
    Password,
    #[error("the SMS code is not six digits")]
    SmsCode,
    #[error("the two new passwords differ")]
    PasswordsDiffer,
    #[error("the deletion was not confirmed")]
    NotConfirmed,
}

/// What is wrong with a request that could not be read: the log says it in
/// English, the JSON API to the person ([`Malformed::message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("query string could not be read")]
    Query,
    #[error("request body could not be read")]
    Body,
    #[error("JSON body could not be read")]
    Json,
    #[error("form body could not be read")]
    Form,
    #[error("no code parameter")]
    MissingCode,
    #[error("image code id is not a UUID")]
    ImageCodeId,
    #[error("this account verifies with its password")]
    HasPassword,
}

impl Malformed {
    pub fn message(self) -> &'static str {
        let t = &crate::i18n::texts().api;
        match self {
            Malformed::Query => t.bad_query,
            Malformed::Body => t.body_unreadable,
            Malformed::Json => t.bad_json,
            Malformed::Form | Malformed::HasPassword => t.bad_form,
            Malformed::MissingCode => t.missing_code,
            Malformed::ImageCodeId => t.bad_image_code_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("form refused: {0}")]
    Input(#[from] InputError),
    #[error("login state refused: {0}")]
    State(#[from] StateError),
    #[error("QQ sent the person back without a code")]
    NoCode,
    #[error("QQ call failed: {0}")]
    Qq(#[from] QqError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("token refused: {0}")]
    Token(#[from] TokenError),
    /// The database is not there (yet): the whole service waits for it.
    #[error("database unavailable")]
    Unavailable,
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("no such page")]
    NotFound,
    #[error("not logged in")]
    Unauthenticated,
    /// An account change without a recent proof of who the person is.
    #[error("re-authentication required")]
    ReauthRequired,
    #[error("bad request: {0}")]
    BadRequest(Malformed),
    #[error("request body too large")]
    TooLarge,
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("request body not sent in time")]
    BodyTimeout,
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("template rendering failed: {0}")]
    Render(#[from] askama::Error),
    #[error("no SMS code sent: {0}")]
    Sms(#[from] SendRefused),
    #[error("image code: {0}")]
    ImageCode(#[from] ImageCodeError),
    /// An SMS code was asked for with neither an image code nor a bind in progress.
    #[error("SMS code asked for without an image code or a bind token")]
    SmsNotAllowed,
}

impl From<AttemptError> for AppError {
    fn from(e: AttemptError) -> Self {
        match e {
            AttemptError::State(e) => Self::State(e),
            AttemptError::Db(e) => e.into(),
        }
    }
}

impl From<ArrivalError> for AppError {
    fn from(e: ArrivalError) -> Self {
        match e {
            ArrivalError::Qq(e) => Self::Qq(e),
            ArrivalError::Account(e) => Self::Account(e),
        }
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        Self::Account(AccountError::Db(e))
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        Self::Account(AccountError::Hash(e))
    }
}

/// What the person is told, in the request's language: a title, what
/// happened and what to do, and the next step.
pub struct Explanation {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: &'static str,
    pub action: Action,
}

/// The one button of an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    LogInAgain,
    Home,
    Account,
    Verify,
}

impl Action {
    pub fn href(self) -> &'static str {
        match self {
            Action::LogInAgain => "/login",
            Action::Home => "/",
            Action::Account => "/account",
            Action::Verify => "/account/verify",
        }
    }

    pub fn label(self) -> &'static str {
        let t = &crate::i18n::texts().common;
        match self {
            Action::LogInAgain => t.log_in_again,
            Action::Home => t.back_home,
            Action::Account => t.back_to_account,
            Action::Verify => t.verify_identity,
        }
    }
}

/// When to come back after the password hasher turned a request away.
const HASHER_BUSY_RETRY_SECS: u64 = 2;

impl AppError {
    pub fn explain(&self) -> Explanation {
        use Action::{Account, Home, LogInAgain};
        use StatusCode as S;
        let m = &crate::i18n::texts().errors;
        // The database is down or too busy: nothing the person did wrong.
        let unavailable = (S::SERVICE_UNAVAILABLE, m.unavailable, Home);
        let (status, message, action) = match self {
            Self::State(StateError::Missing) => (S::BAD_REQUEST, m.state_missing, LogInAgain),
            Self::State(StateError::Mismatch) => (S::BAD_REQUEST, m.state_mismatch, LogInAgain),
            Self::State(StateError::Expired) => (S::BAD_REQUEST, m.state_expired, LogInAgain),
            Self::NoCode => (S::BAD_REQUEST, m.no_code, LogInAgain),
            Self::Qq(e) if e.is_rejected_code() => (S::BAD_REQUEST, m.code_rejected, LogInAgain),
            Self::Qq(QqError::Timeout) => (S::SERVICE_UNAVAILABLE, m.qq_timeout, LogInAgain),
            Self::Qq(_) => (S::SERVICE_UNAVAILABLE, m.qq_failed, LogInAgain),
            Self::Token(_) | Self::Input(InputError::Token) => {
                (S::BAD_REQUEST, m.bind_token, LogInAgain)
            }
            Self::Input(InputError::OtherBrowser) => (S::FORBIDDEN, m.other_browser, LogInAgain),
            Self::Input(InputError::Missing) => (S::BAD_REQUEST, m.missing, LogInAgain),
            Self::Input(InputError::Mobile) => (S::BAD_REQUEST, m.mobile, LogInAgain),
            Self::Input(InputError::Password) => (S::BAD_REQUEST, m.password_length, LogInAgain),
            Self::Input(InputError::SmsCode) => (S::BAD_REQUEST, m.sms_code_format, LogInAgain),
            Self::Input(InputError::PasswordsDiffer) => {
                (S::BAD_REQUEST, m.passwords_differ, Account)
            }
            Self::Input(InputError::NotConfirmed) => (S::BAD_REQUEST, m.not_confirmed, Account),
            Self::Account(AccountError::ReauthFailed) => {
                (S::UNAUTHORIZED, m.reauth_failed, Account)
            }
            Self::Account(AccountError::QqLinkedElsewhere) => {
                (S::CONFLICT, m.qq_linked_elsewhere, Account)
            }
            Self::Account(AccountError::OnlyWayIn) => (S::CONFLICT, m.only_way_in, Account),
            Self::Account(AccountError::NotLinked) => (S::CONFLICT, m.not_linked, Account),
            Self::Account(AccountError::MobileTaken) => (S::CONFLICT, m.mobile_taken, Account),
            Self::Account(AccountError::NoSuchAccount) => {
                (S::NOT_FOUND, m.no_such_account, LogInAgain)
            }
            Self::Account(AccountError::Disabled) => (S::FORBIDDEN, m.disabled, Home),
            Self::Account(AccountError::HeldBySite) => (S::CONFLICT, m.held_by_site, Account),
            Self::Account(AccountError::Gone) => (S::UNAUTHORIZED, m.gone, LogInAgain),
            Self::Csrf => (S::FORBIDDEN, m.csrf, Home),
            Self::NotFound => (S::NOT_FOUND, m.not_found, Home),
            Self::Unauthenticated => (S::UNAUTHORIZED, m.unauthenticated, LogInAgain),
            Self::ReauthRequired => (S::UNAUTHORIZED, m.reauth_required, Action::Verify),
            Self::BadRequest(_) => (S::BAD_REQUEST, m.bad_request, Home),
            Self::TooLarge => (S::PAYLOAD_TOO_LARGE, m.too_large, Home),
            Self::HeadersTooLarge => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                m.headers_too_large,
                Home,
            ),
            Self::BodyTimeout => (S::REQUEST_TIMEOUT, m.body_timeout, Home),
            Self::UnsupportedMediaType => {
                (S::UNSUPPORTED_MEDIA_TYPE, m.unsupported_media_type, Home)
            }
            Self::Account(AccountError::Throttled(_)) => {
                (S::TOO_MANY_REQUESTS, m.throttled, LogInAgain)
            }
            Self::Account(AccountError::Hash(HashError::Busy)) => {
                (S::SERVICE_UNAVAILABLE, m.hasher_busy, Home)
            }
            Self::Account(AccountError::TokenUsed) => (S::BAD_REQUEST, m.token_used, LogInAgain),
            Self::Account(AccountError::Busy) => (S::CONFLICT, m.busy, LogInAgain),
            Self::Account(AccountError::WrongCredentials) => {
                (S::UNAUTHORIZED, m.wrong_credentials, LogInAgain)
            }
            Self::Account(AccountError::WrongPassword) => {
                (S::UNAUTHORIZED, m.wrong_password, LogInAgain)
            }
            Self::Account(AccountError::OpenIdTaken) => (S::CONFLICT, m.openid_taken, LogInAgain),
            Self::Account(AccountError::UserHasOtherQq) => {
                (S::CONFLICT, m.user_has_other_qq, LogInAgain)
            }
            Self::Account(AccountError::NotProven) => (S::BAD_REQUEST, m.not_proven, LogInAgain),
            Self::Account(AccountError::SmsCodeRequired) => {
                (S::BAD_REQUEST, m.sms_code_required, LogInAgain)
            }
            Self::Account(AccountError::SmsCodeInvalid) => {
                (S::BAD_REQUEST, m.sms_code_invalid, LogInAgain)
            }
            Self::Sms(SendRefused::TooSoon(_)) => {
                (S::TOO_MANY_REQUESTS, m.sms_too_soon, LogInAgain)
            }
            Self::Sms(SendRefused::DailyCap(_)) => {
                (S::TOO_MANY_REQUESTS, m.sms_daily_cap, LogInAgain)
            }
            Self::Sms(SendRefused::Sender(e)) => (
                S::SERVICE_UNAVAILABLE,
                Message {
                    detail: e.message(),
                    ..m.sms_failed
                },
                LogInAgain,
            ),
            Self::ImageCode(ImageCodeError::Wrong) => {
                (S::BAD_REQUEST, m.image_code_wrong, LogInAgain)
            }
            Self::SmsNotAllowed => (S::BAD_REQUEST, m.sms_not_allowed, LogInAgain),
            Self::Account(AccountError::Db(DbError::LinkedTwice)) => {
                (S::CONFLICT, m.linked_twice, Home)
            }
            Self::Unavailable => unavailable,
            Self::Sms(SendRefused::Db(e)) if e.is_unavailable() => unavailable,
            Self::Account(AccountError::Db(e)) | Self::ImageCode(ImageCodeError::Db(e))
                if e.is_unavailable() =>
            {
                unavailable
            }
            Self::Account(_)
            | Self::Session(_)
            | Self::Render(_)
            | Self::ImageCode(_)
            | Self::Sms(SendRefused::Db(_)) => (S::INTERNAL_SERVER_ERROR, m.internal, Home),
        };
        Explanation {
            status,
            title: message.title,
            detail: message.detail,
            action,
        }
    }

    /// Whether this failure belongs next to the form that was sent (shown
    /// with the form again) rather than on an error page of its own.
    pub fn belongs_on_the_form(&self) -> bool {
        matches!(
            self,
            Self::Input(_)
                | Self::Account(
                    AccountError::ReauthFailed
                        | AccountError::Disabled
                        | AccountError::OnlyWayIn
                        | AccountError::NotLinked
                        | AccountError::MobileTaken
                        | AccountError::NoSuchAccount
                        | AccountError::WrongPassword
                        | AccountError::TokenUsed
                        | AccountError::OpenIdTaken
                        | AccountError::UserHasOtherQq
                        | AccountError::Throttled(_)
                        | AccountError::NotProven
                        | AccountError::SmsCodeRequired
                        | AccountError::SmsCodeInvalid
                )
                | Self::Sms(
                    SendRefused::TooSoon(_) | SendRefused::DailyCap(_) | SendRefused::Sender(_)
                )
                | Self::SmsNotAllowed
                | Self::ImageCode(ImageCodeError::Wrong)
        )
    }

    /// Whether the bind form is beyond use after this failure (its token is),
    /// so that the person is offered to start the QQ login again.
    pub fn restarts_the_bind(&self) -> bool {
        matches!(
            self,
            Self::Input(InputError::Token | InputError::OtherBrowser)
                | Self::Account(AccountError::TokenUsed | AccountError::OpenIdTaken)
        )
    }

    /// When to come back, in seconds, for a throttled or overloaded answer.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Account(AccountError::Throttled(after))
            | Self::Sms(SendRefused::TooSoon(after) | SendRefused::DailyCap(after)) => {
                Some(after.0)
            }
            Self::Account(AccountError::Hash(HashError::Busy)) => Some(HASHER_BUSY_RETRY_SECS),
            _ => None,
        }
    }

    /// Seconds a form's "获取验证码" button waits after this failure: a code
    /// asked for too soon after the last.
    pub fn resend_in(&self) -> u64 {
        match self {
            Self::Sms(SendRefused::TooSoon(after)) => after.0,
            _ => 0,
        }
    }

    /// The form field this failure concerns, for a page to show it beside.
    pub fn field(&self) -> Option<Field> {
        match self {
            Self::Input(InputError::Mobile)
            | Self::Account(AccountError::MobileTaken | AccountError::NoSuchAccount) => {
                Some(Field::Mobile)
            }
            Self::Input(InputError::Password)
            | Self::Account(AccountError::WrongCredentials | AccountError::WrongPassword) => {
                Some(Field::Password)
            }
            Self::Input(InputError::SmsCode)
            | Self::Account(AccountError::SmsCodeRequired | AccountError::SmsCodeInvalid)
            | Self::Sms(_)
            | Self::SmsNotAllowed => Some(Field::SmsCode),
            _ => None,
        }
    }

    /// A throttled or overloaded answer says when to come back.
    pub fn add_retry_after(&self, response: &mut HttpResponse) {
        if let Some(after) = self.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(after));
        }
    }

    /// Logs the whole cause chain, at a level that matches who is at fault.
    fn log(&self, status: StatusCode) {
        let mut chain = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        if status.is_server_error() {
            log::error!("{status}: {chain}");
        } else {
            log::info!("{status}: {chain}");
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.explain().status
    }

    fn error_response(&self) -> HttpResponse {
        let e = self.explain();
        self.log(e.status);
        let request_id = crate::logging::current_request_id();
        let page = ErrorPage {
            title: e.title,
            detail: e.detail,
            action_href: e.action.href(),
            action_label: e.action.label(),
            request_id: request_id.as_deref(),
        };
        let mut response =
            render(e.status, &page).unwrap_or_else(|_| HttpResponse::build(e.status).body(e.title));
        self.add_retry_after(&mut response);
        response
    }
}

/// The same errors for the JSON API: `{"message": …}` with the same status.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl ApiError {
    /// A 400 naming what is wrong with the request, for the front end to show.
    pub fn invalid(what: Malformed) -> Self {
        Self(AppError::BadRequest(what))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            // A code QQ could never have issued is the client's mistake.
            AppError::Qq(QqError::InvalidCode) => StatusCode::BAD_REQUEST,
            // The original API answers 503 for any trouble with QQ, including a refused code.
            AppError::Qq(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Token(_)
            | AppError::Account(
                AccountError::OpenIdTaken | AccountError::UserHasOtherQq | AccountError::TokenUsed,
            ) => StatusCode::BAD_REQUEST,
            AppError::Account(AccountError::WrongCredentials | AccountError::WrongPassword) => {
                StatusCode::BAD_REQUEST
            }
            other => other.explain().status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        self.0.log(status);
        let message = match &self.0 {
            AppError::BadRequest(what) => what.message(),
            other => other.explain().detail,
        };
        let mut response =
            HttpResponse::build(status).json(serde_json::json!({ "message": message }));
        self.0.add_retry_after(&mut response);
        response
    }
}
