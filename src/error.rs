//! The web layer's one error type. Every failure a person can meet becomes,
//! here and only here, a status and a message in Chinese saying what happened
//! and what to do: an HTML page ([`AppError`]) or a JSON body ([`ApiError`]).
//! The full cause goes to the log, never to the person.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};

use crate::account::AccountError;
use crate::db::DbError;
use crate::flow::ArrivalError;
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
    BadRequest(&'static str),
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

/// What the person is told: a title, what happened and what to do, and the next step.
pub struct Explanation {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: &'static str,
    pub action: (&'static str, &'static str),
}

const TRY_QQ_AGAIN: (&str, &str) = ("/login", "重新登录");
/// When to come back after the password hasher turned a request away.
const HASHER_BUSY_RETRY_SECS: u64 = 2;
const HOME: (&str, &str) = ("/", "返回首页");
const ACCOUNT: (&str, &str) = ("/account", "返回账号中心");
/// The database is down or too busy: nothing the person did wrong.
const UNAVAILABLE: (StatusCode, &str, &str, (&str, &str)) = (
    StatusCode::SERVICE_UNAVAILABLE,
    "服务暂时不可用",
    "系统正在维护或繁忙，请稍后再试。",
    HOME,
);

impl AppError {
    pub fn explain(&self) -> Explanation {
        use StatusCode as S;
        let (status, title, detail, action) = match self {
            Self::State(StateError::Missing) => (
                S::BAD_REQUEST,
                "登录请求已失效",
                "这个QQ登录请求已经用过或不属于这个浏览器。请重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::State(StateError::Mismatch) => (
                S::BAD_REQUEST,
                "无法确认登录请求",
                "QQ返回的登录请求与本浏览器发起的不一致。为保护你的账号，登录已停止，请在本浏览器重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::State(StateError::Expired) => (
                S::BAD_REQUEST,
                "登录请求已过期",
                "从发起QQ登录到返回本站用时太久。请重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::NoCode => (
                S::BAD_REQUEST,
                "QQ没有完成授权",
                "你可能在QQ页面取消了授权。可以重新点击“QQ登录”，或用手机号和密码登录。",
                TRY_QQ_AGAIN,
            ),
            Self::Qq(e) if e.is_rejected_code() => (
                S::BAD_REQUEST,
                "QQ授权已失效",
                "QQ的授权码已经用过或已过期（例如刷新了页面）。请重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::Qq(QqError::Timeout) => (
                S::SERVICE_UNAVAILABLE,
                "QQ暂时没有响应",
                "QQ服务器响应超时。请稍后重试，或用手机号和密码登录。",
                TRY_QQ_AGAIN,
            ),
            Self::Qq(_) => (
                S::SERVICE_UNAVAILABLE,
                "QQ登录暂时不可用",
                "与QQ通信时出现问题。请稍后重试，或用手机号和密码登录。",
                TRY_QQ_AGAIN,
            ),
            Self::Token(_) | Self::Input(InputError::Token) => (
                S::BAD_REQUEST,
                "绑定链接已失效",
                "这个绑定页面已过期或无效。请重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::OtherBrowser) => (
                S::FORBIDDEN,
                "请在本浏览器重新登录",
                "这个绑定页面不是在当前浏览器打开的。请在本浏览器重新点击“QQ登录”。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::Missing) => (
                S::BAD_REQUEST,
                "信息不完整",
                "请填写手机号和密码。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::Mobile) => (
                S::BAD_REQUEST,
                "手机号有误",
                "请输入正确的手机号（11位，以1开头）。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::Password) => (
                S::BAD_REQUEST,
                "密码长度不对",
                "密码长度应为8到128个字符。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::SmsCode) => (
                S::BAD_REQUEST,
                "短信验证码有误",
                "短信验证码是6位数字，请检查后重新输入。",
                TRY_QQ_AGAIN,
            ),
            Self::Input(InputError::PasswordsDiffer) => (
                S::BAD_REQUEST,
                "两次密码不一致",
                "两次输入的新密码不一样，请重新输入。",
                ACCOUNT,
            ),
            Self::Input(InputError::NotConfirmed) => (
                S::BAD_REQUEST,
                "请确认注销",
                "注销无法撤销。如果确定，请在确认框中输入“注销”两个字。",
                ACCOUNT,
            ),
            Self::Account(AccountError::ReauthFailed) => (
                S::UNAUTHORIZED,
                "验证失败",
                "密码或验证码不正确，请重新输入。",
                ACCOUNT,
            ),
            Self::Account(AccountError::QqLinkedElsewhere) => (
                S::CONFLICT,
                "这个QQ账号已绑定其他账号",
                "一个QQ账号只能绑定一个账号。请先用这个QQ登录，在那个账号的账号中心解除绑定，再回来绑定。",
                ACCOUNT,
            ),
            Self::Account(AccountError::OnlyWayIn) => (
                S::CONFLICT,
                "无法解除QQ绑定",
                "你的账号还没有设置密码，QQ是唯一的登录方式。请先设置密码，再解除QQ绑定。",
                ACCOUNT,
            ),
            Self::Account(AccountError::NotLinked) => (
                S::CONFLICT,
                "没有绑定QQ",
                "你的账号现在没有绑定QQ账号。",
                ACCOUNT,
            ),
            Self::Account(AccountError::MobileTaken) => (
                S::CONFLICT,
                "手机号已被使用",
                "这个手机号已经注册了另一个账号，不能换到这个手机号。",
                ACCOUNT,
            ),
            Self::Account(AccountError::NoSuchAccount) => (
                S::NOT_FOUND,
                "手机号未注册",
                "这个手机号没有注册账号。可以用QQ登录，在绑定页面用它创建账号。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::Disabled) => (
                S::FORBIDDEN,
                "账号已停用",
                "这个账号已被停用，无法登录。如有疑问，请联系网站客服。",
                HOME,
            ),
            Self::Account(AccountError::HeldBySite) => (
                S::CONFLICT,
                "暂时无法注销",
                "网站上还有这个账号的订单或地址等记录，暂时无法注销。请联系网站客服处理。",
                ACCOUNT,
            ),
            Self::Account(AccountError::Gone) => (
                S::UNAUTHORIZED,
                "账号不存在",
                "这个账号已经注销或不存在。",
                TRY_QQ_AGAIN,
            ),
            Self::Csrf => (
                S::FORBIDDEN,
                "页面已过期",
                "为保护你的账号，这个表单已失效。请返回，刷新页面后重新提交。",
                HOME,
            ),
            Self::NotFound => (
                S::NOT_FOUND,
                "页面不存在",
                "这个地址没有页面，可能输错了。",
                HOME,
            ),
            Self::Unauthenticated => (
                S::UNAUTHORIZED,
                "请先登录",
                "这个页面需要登录后查看。",
                TRY_QQ_AGAIN,
            ),
            Self::ReauthRequired => (
                S::UNAUTHORIZED,
                "请先验证身份",
                "为了你的账号安全，修改账号前需要再输入一次密码（或短信验证码）。验证后10分钟内可以直接修改。",
                ("/account/verify", "验证身份"),
            ),
            Self::BadRequest(_) => (
                S::BAD_REQUEST,
                "请求无效",
                "请求的格式不正确。请返回首页重试。",
                HOME,
            ),
            Self::TooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "请求过大",
                "提交的内容太长了。请返回重试。",
                HOME,
            ),
            Self::HeadersTooLarge => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "请求头过大",
                "浏览器发送的信息（例如Cookie）太多了。请清除本站的Cookie后重试。",
                HOME,
            ),
            Self::BodyTimeout => (
                S::REQUEST_TIMEOUT,
                "提交超时",
                "提交的内容没有及时送达，可能是网络不稳定。请重新提交。",
                HOME,
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "请求格式不支持",
                "请以JSON（application/json）或表单格式提交。",
                HOME,
            ),
            Self::Account(AccountError::Throttled(_)) => (
                S::TOO_MANY_REQUESTS,
                "尝试次数过多",
                "密码错误次数过多，为保护账号安全请稍后再试。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::Hash(HashError::Busy)) => (
                S::SERVICE_UNAVAILABLE,
                "服务繁忙",
                "现在登录的人太多，请几秒钟后再试。",
                HOME,
            ),
            Self::Account(AccountError::TokenUsed) => (
                S::BAD_REQUEST,
                "绑定已完成",
                "这个绑定页面已经用过了：QQ账号已绑定，请直接用QQ登录。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::Busy) => (
                S::CONFLICT,
                "请重试",
                "账号信息刚刚发生了变化，请再提交一次。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::WrongCredentials) => (
                S::UNAUTHORIZED,
                "用户名或密码错误",
                "用户名或密码错误，请重试。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::WrongPassword) => (
                S::UNAUTHORIZED,
                "密码不正确",
                "这个手机号已经注册，但密码不正确。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::OpenIdTaken) => (
                S::CONFLICT,
                "这个QQ账号已绑定",
                "这个QQ账号已经绑定了账号，请直接用QQ登录。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::UserHasOtherQq) => (
                S::CONFLICT,
                "该账号已绑定其他QQ",
                "这个手机号的账号已经绑定了另一个QQ账号。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::NotProven) => (
                S::BAD_REQUEST,
                "请验证手机号",
                "请获取并填写短信验证码；如果这个手机号已经注册，也可以输入它的正确密码。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::SmsCodeRequired) => (
                S::BAD_REQUEST,
                "请填写短信验证码",
                "请点击“获取验证码”，把收到的6位短信验证码填进来。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::SmsCodeInvalid) => (
                S::BAD_REQUEST,
                "短信验证码不正确",
                "短信验证码错误、已过期或已经用过，请重新获取。",
                TRY_QQ_AGAIN,
            ),
            Self::Sms(SendRefused::TooSoon(_)) => (
                S::TOO_MANY_REQUESTS,
                "发送太频繁",
                "验证码刚刚发送过，请一分钟后再获取。",
                TRY_QQ_AGAIN,
            ),
            Self::Sms(SendRefused::DailyCap(_)) => (
                S::TOO_MANY_REQUESTS,
                "今天的次数已用完",
                "今天获取短信验证码的次数太多了，请明天再试。",
                TRY_QQ_AGAIN,
            ),
            Self::Sms(SendRefused::Sender(e)) => (
                S::SERVICE_UNAVAILABLE,
                "短信发送失败",
                e.message(),
                TRY_QQ_AGAIN,
            ),
            Self::ImageCode(ImageCodeError::Wrong) => (
                S::BAD_REQUEST,
                "图片验证码有误",
                "图片验证码有误，请点击图片换一张后重新输入。",
                TRY_QQ_AGAIN,
            ),
            Self::SmsNotAllowed => (
                S::BAD_REQUEST,
                "无法发送验证码",
                "请先用QQ登录，或填写图片验证码，再获取短信验证码。",
                TRY_QQ_AGAIN,
            ),
            Self::Account(AccountError::Db(DbError::LinkedTwice)) => (
                S::CONFLICT,
                "这个QQ账号绑定了多个账号",
                "网站上有不止一个账号绑定了这个QQ账号，无法确定登录哪一个。请用手机号和密码登录，或联系网站客服处理。",
                HOME,
            ),
            Self::Unavailable => UNAVAILABLE,
            Self::Sms(SendRefused::Db(e)) if e.is_unavailable() => UNAVAILABLE,
            Self::Account(AccountError::Db(e)) | Self::ImageCode(ImageCodeError::Db(e))
                if e.is_unavailable() =>
            {
                UNAVAILABLE
            }
            Self::Account(_)
            | Self::Session(_)
            | Self::Render(_)
            | Self::ImageCode(_)
            | Self::Sms(SendRefused::Db(_)) => (
                S::INTERNAL_SERVER_ERROR,
                "出错了",
                "服务器出现了问题，我们已记录下来。请稍后重试。",
                HOME,
            ),
        };
        Explanation {
            status,
            title,
            detail,
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
            action_href: e.action.0,
            action_label: e.action.1,
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
    pub fn invalid(message: &'static str) -> Self {
        Self(AppError::BadRequest(message))
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
            AppError::BadRequest(message) => message,
            other => other.explain().detail,
        };
        let mut response =
            HttpResponse::build(status).json(serde_json::json!({ "message": message }));
        self.0.add_retry_after(&mut response);
        response
    }
}
