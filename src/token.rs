//! Signed tokens: the bind token that carries a pending QQ openid to the bind
//! form, and the login JWT of the JSON API.
//!
//! Each kind has its own key, derived from `SECRET_KEY` with HKDF, and its own
//! audience: a token of one kind can never pass as the other. The algorithm is
//! fixed to HS256 here, whatever a token's header claims.
//!
//! With `QQLOGIN_DJANGO_SECRET_KEY`, login JWTs are the Django site's own
//! instead: what djangorestframework-jwt 1.11 issues (HS256 under the site's
//! `SECRET_KEY`, `user_id`, `username`, `exp`, `email`, no audience), so that
//! the site's other endpoints accept them; such tokens are accepted here too.

use std::collections::HashSet;

use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::domain::{AvatarUrl, LocalPath, OpenId};

/// How long a person has to fill in the bind form after QQ sent them back.
pub const BIND_TOKEN_TTL: time::Duration = time::Duration::minutes(10);

const BIND_AUDIENCE: &str = "qqlogin:qq-bind";
const LOGIN_AUDIENCE: &str = "qqlogin:login";

/// Why a token was refused. Deliberately coarse: the person learns only
/// "start again", the log learns which.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed, forged or of another kind")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token could not be signed")]
    Signing,
}

/// Every key the process signs or verifies with, derived once at start.
#[derive(Clone)]
pub struct Keys {
    /// Encrypts the session cookie.
    pub cookie: actix_web::cookie::Key,
    /// The cookie key of `SECRET_KEY_PREVIOUS`: still accepted, never used to write.
    pub cookie_previous: Option<actix_web::cookie::Key>,
    bind: TokenKey,
    login: TokenKey,
    /// The Django site's key, when login JWTs are the site's own.
    django: Option<DjangoKey>,
    /// Keys the stored SMS codes' HMACs.
    pub sms_code: SmsCodeKey,
}

/// The HMAC key of stored SMS codes: a stolen database gives no code back,
/// where a plain hash of six digits would fall to a million guesses.
#[derive(Clone)]
pub struct SmsCodeKey([u8; 32]);

impl SmsCodeKey {
    /// The stored form of `code` for `mobile`: hex HMAC-SHA256 over both, so a
    /// code is bound to the mobile it was sent to.
    pub fn hash(&self, mobile: &crate::domain::Mobile, code: &crate::domain::SmsCode) -> String {
        let message = format!("{}:{}", mobile.as_str(), code.expose());
        base16ct::lower::encode_string(&crate::secret::hmac_sha256(&self.0, message.as_bytes()))
    }
}

/// One token kind's key: signs with the current secret, verifies with the
/// current and (during a rotation) the previous one.
#[derive(Clone)]
struct TokenKey {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
}

impl TokenKey {
    fn new(current: &[u8; 32], previous: Option<&[u8; 32]>) -> Self {
        let decoding = std::iter::once(current)
            .chain(previous)
            .map(|k| DecodingKey::from_secret(k))
            .collect();
        Self {
            encoding: EncodingKey::from_secret(current),
            decoding,
        }
    }
}

/// The Django site's `SECRET_KEY`, used as it is (not derived): the key
/// djangorestframework-jwt signs and verifies with.
#[derive(Clone)]
struct DjangoKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys derived from one secret.
struct Derived {
    cookie: actix_web::cookie::Key,
    bind: [u8; 32],
    login: [u8; 32],
    sms_code: [u8; 32],
}

fn derive_from(master: &SecretString) -> Derived {
    let hk = Hkdf::<Sha256>::new(
        Some(b"qqlogin key derivation v1"),
        master.expose_secret().as_bytes(),
    );
    let expand = |info: &[u8], out: &mut [u8]| {
        // At most 64 bytes, far below HKDF-SHA256's limit of 255 * 32: this cannot fail.
        #[expect(
            clippy::expect_used,
            reason = "output length is a constant within HKDF's bound"
        )]
        hk.expand(info, out)
            .expect("HKDF output length is within bounds"); // ok: constant length
    };
    let (mut cookie, mut bind, mut login, mut sms_code) =
        ([0u8; 64], [0u8; 32], [0u8; 32], [0u8; 32]);
    expand(b"session cookie", &mut cookie);
    expand(b"qq bind token", &mut bind);
    expand(b"login jwt", &mut login);
    expand(b"sms code hmac", &mut sms_code);
    Derived {
        cookie: actix_web::cookie::Key::from(&cookie),
        bind,
        login,
        sms_code,
    }
}

impl Keys {
    /// Derives one key per purpose from the master secret.
    pub fn derive(master: &SecretString) -> Self {
        Self::with_previous(master, None)
    }

    /// As [`Keys::derive`]; `previous` (the secret being rotated out) still
    /// verifies tokens and cookies, and never signs.
    pub fn with_previous(master: &SecretString, previous: Option<&SecretString>) -> Self {
        let current = derive_from(master);
        let previous = previous.map(derive_from);
        Self {
            bind: TokenKey::new(&current.bind, previous.as_ref().map(|p| &p.bind)),
            login: TokenKey::new(&current.login, previous.as_ref().map(|p| &p.login)),
            sms_code: SmsCodeKey(current.sms_code),
            cookie: current.cookie,
            cookie_previous: previous.map(|p| p.cookie),
            django: None,
        }
    }

    /// The same keys, with login JWTs made and accepted as the Django site
    /// makes them, under its `secret`.
    pub fn with_django_secret(self, secret: Option<&SecretString>) -> Self {
        let django = secret.map(|secret| {
            let bytes = secret.expose_secret().as_bytes();
            DjangoKey {
                encoding: EncodingKey::from_secret(bytes),
                decoding: DecodingKey::from_secret(bytes),
            }
        });
        Self { django, ..self }
    }

    /// Signs a bind token for `pending`, valid for [`BIND_TOKEN_TTL`] from `now`.
    pub fn issue_bind_token(
        &self,
        pending: &PendingBind,
        now: OffsetDateTime,
    ) -> Result<String, TokenError> {
        let claims = BindClaims {
            aud: BIND_AUDIENCE.to_owned(),
            jti: pending.id.clone(),
            sub: pending.openid.clone(),
            iat: now.unix_timestamp(),
            exp: (now + BIND_TOKEN_TTL).unix_timestamp(),
            nick: pending.nickname.clone(),
            next: pending.next.as_str().to_owned(),
            bnd: pending.browser.clone(),
            uni: pending.unionid.clone(),
            av: pending.avatar.as_ref().map(|a| a.as_str().to_owned()),
        };
        sign(&self.bind, &claims)
    }

    /// Checks a bind token's signature, kind and expiry against `now`.
    pub fn verify_bind_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<PendingBind, TokenError> {
        let claims: BindClaims = verify(&self.bind, BIND_AUDIENCE, token, now)?;
        Ok(PendingBind {
            id: claims.jti,
            openid: claims.sub,
            nickname: claims.nick,
            next: LocalPath::sanitize(Some(&claims.next)),
            browser: claims.bnd,
            unionid: claims.uni,
            avatar: claims.av.as_deref().and_then(AvatarUrl::from_qq),
        })
    }

    /// Signs a login JWT for the JSON API.
    pub fn issue_login_token(
        &self,
        user_id: i64,
        username: &str,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<String, TokenError> {
        let ttl = i64::try_from(ttl.as_secs()).map_err(|_| TokenError::Signing)?;
        let exp = now.unix_timestamp().saturating_add(ttl);
        if let Some(django) = &self.django {
            let claims = DjangoClaims {
                user_id,
                username: username.to_owned(),
                exp,
                // The Django site's users carry an e-mail address; this service's do not.
                email: String::new(),
            };
            return jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &django.encoding)
                .map_err(|_| TokenError::Signing);
        }
        let claims = LoginClaims {
            aud: LOGIN_AUDIENCE.to_owned(),
            user_id,
            username: username.to_owned(),
            iat: now.unix_timestamp(),
            exp,
        };
        sign(&self.login, &claims)
    }

    /// Checks a login JWT; returns the user id it was issued for.
    pub fn verify_login_token(&self, token: &str, now: OffsetDateTime) -> Result<i64, TokenError> {
        let ours = verify::<LoginClaims>(&self.login, LOGIN_AUDIENCE, token, now);
        match (&self.django, ours) {
            (Some(django), Err(TokenError::Invalid)) => verify_django(django, token, now),
            (_, ours) => ours.map(|claims| claims.user_id),
        }
    }
}

/// A QQ account waiting to be linked, as the bind token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBind {
    /// This token's own id: a successful bind uses it up, and tries at its
    /// password are counted against it.
    pub id: String,
    pub openid: OpenId,
    /// The QQ nickname, shown on the bind page so the person knows which QQ account.
    pub nickname: Option<String>,
    /// Where to go once bound.
    pub next: LocalPath,
    /// The nonce of the browser session that finished the callback; `None` for
    /// tokens handed out by the JSON API, whose clients keep no cookies.
    pub browser: Option<String>,
    /// QQ's unionid for the person, under `QQ_USE_UNIONID`: stored with the link.
    pub unionid: Option<String>,
    /// The QQ avatar, stored with the link for the account centre.
    pub avatar: Option<AvatarUrl>,
}

impl PendingBind {
    /// A new pending bind, with an id of its own.
    pub fn new(
        openid: OpenId,
        nickname: Option<String>,
        next: LocalPath,
        browser: Option<String>,
    ) -> Self {
        Self {
            id: crate::secret::time_ordered_token(),
            openid,
            nickname,
            next,
            browser,
            unionid: None,
            avatar: None,
        }
    }

    /// The same, with the QQ avatar to store with the link.
    pub fn with_avatar(self, avatar: Option<AvatarUrl>) -> Self {
        Self { avatar, ..self }
    }

    /// The same, with QQ's unionid for the person, to be stored with the link.
    pub fn with_unionid(self, unionid: Option<String>) -> Self {
        Self { unionid, ..self }
    }
}

#[derive(Serialize, Deserialize)]
struct BindClaims {
    aud: String,
    jti: String,
    sub: OpenId,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nick: Option<String>,
    next: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bnd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    av: Option<String>,
}

/// The login JWT's claims: the names the original Django front ends read.
#[derive(Serialize, Deserialize)]
struct LoginClaims {
    aud: String,
    user_id: i64,
    username: String,
    iat: i64,
    exp: i64,
}

/// The claims djangorestframework-jwt 1.11's `jwt_payload_handler` makes.
#[derive(Serialize, Deserialize)]
struct DjangoClaims {
    user_id: i64,
    username: String,
    exp: i64,
    #[serde(default)]
    email: String,
}

/// A login JWT checked as djangorestframework-jwt checks it: HS256 under the
/// site's key, `exp` with no leeway, no audience expected (a token that names
/// one is refused, as PyJWT refuses it).
fn verify_django(key: &DjangoKey, token: &str, now: OffsetDateTime) -> Result<i64, TokenError> {
    if token.len() > 4096 {
        return Err(TokenError::Invalid);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::from(["exp".to_owned()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
        .map_err(|_| TokenError::Invalid)?;
    if data.claims.get("aud").is_some() {
        return Err(TokenError::Invalid);
    }
    let claims: DjangoClaims =
        serde_json::from_value(data.claims).map_err(|_| TokenError::Invalid)?;
    if claims.exp <= now.unix_timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims.user_id)
}

trait Expiring {
    fn exp(&self) -> i64;
}
impl Expiring for BindClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}
impl Expiring for LoginClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

fn sign<C: Serialize>(key: &TokenKey, claims: &C) -> Result<String, TokenError> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key.encoding)
        .map_err(|_| TokenError::Signing)
}

fn verify<C: serde::de::DeserializeOwned + Expiring>(
    key: &TokenKey,
    audience: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<C, TokenError> {
    // Bounded before parsing: a token is a few hundred bytes.
    if token.len() > 4096 {
        return Err(TokenError::Invalid);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[audience]);
    // Expiry is checked below against the caller's `now`, so tests can move time.
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::from(["exp".to_owned(), "aud".to_owned()]);
    let claims = key
        .decoding
        .iter()
        .find_map(|k| jsonwebtoken::decode::<C>(token, k, &validation).ok())
        .ok_or(TokenError::Invalid)?
        .claims;
    if claims.exp() <= now.unix_timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys(secret: &str) -> Keys {
        Keys::derive(&SecretString::from(secret.repeat(64)))
    }

    fn pending() -> PendingBind {
        PendingBind {
            id: "0123456789ab.token-id".into(),
            openid: OpenId::parse("ABCDEF0123456789ABCDEF0123456789").unwrap(),
            nickname: Some("小明".into()),
            next: LocalPath::sanitize(Some("/orders")),
            browser: Some("nonce".into()),
            unionid: Some("UID_ABCDEF".into()),
            avatar: AvatarUrl::from_qq("http://thirdqq.qlogo.cn/g?b=oidb&k=1&s=100"),
        }
    }

    #[test]
    fn a_bind_token_round_trips() {
        let k = keys("a");
        let now = OffsetDateTime::now_utc();
        let token = k.issue_bind_token(&pending(), now).unwrap();
        assert_eq!(k.verify_bind_token(&token, now).unwrap(), pending());
    }

    #[test]
    fn a_bind_token_expires_after_ten_minutes() {
        let k = keys("a");
        let then = OffsetDateTime::now_utc();
        let token = k.issue_bind_token(&pending(), then).unwrap();
        assert!(
            k.verify_bind_token(&token, then + time::Duration::minutes(9))
                .is_ok()
        );
        assert_eq!(
            k.verify_bind_token(&token, then + BIND_TOKEN_TTL),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let now = OffsetDateTime::now_utc();
        let token = keys("a").issue_bind_token(&pending(), now).unwrap();
        assert_eq!(
            keys("b").verify_bind_token(&token, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn the_previous_secret_verifies_during_a_rotation_but_never_signs() {
        let now = OffsetDateTime::now_utc();
        let old = keys("a");
        let rotated = Keys::with_previous(
            &SecretString::from("b".repeat(64)),
            Some(&SecretString::from("a".repeat(64))),
        );
        let issued_before = old
            .issue_login_token(7, "u", std::time::Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(rotated.verify_login_token(&issued_before, now), Ok(7));
        let issued_after = rotated
            .issue_login_token(7, "u", std::time::Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(
            old.verify_login_token(&issued_after, now),
            Err(TokenError::Invalid),
            "signed with the new key"
        );
        assert_eq!(keys("b").verify_login_token(&issued_after, now), Ok(7));
    }

    #[test]
    fn token_kinds_never_pass_for_each_other() {
        let k = keys("a");
        let now = OffsetDateTime::now_utc();
        let bind = k.issue_bind_token(&pending(), now).unwrap();
        let login = k
            .issue_login_token(7, "13800138000", std::time::Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(k.verify_login_token(&bind, now), Err(TokenError::Invalid));
        assert!(k.verify_bind_token(&login, now).is_err());
        assert_eq!(k.verify_login_token(&login, now), Ok(7));
    }

    #[test]
    fn alg_none_and_tampered_payloads_are_refused() {
        let k = keys("a");
        let now = OffsetDateTime::now_utc();
        let token = k
            .issue_login_token(7, "u", std::time::Duration::from_secs(60), now)
            .unwrap();
        let mut parts = token.split('.');
        let (_, payload, sig) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            k.verify_login_token(&format!("{none_header}.{payload}."), now)
                .is_err()
        );
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(claims.replace("\"user_id\":7", "\"user_id\":1"));
        assert!(
            k.verify_login_token(
                &format!("{}.{forged}.{sig}", token.split('.').next().unwrap()),
                now
            )
            .is_err()
        );
        assert!(k.verify_login_token("garbage", now).is_err());
        assert!(k.verify_login_token(&"a".repeat(100_000), now).is_err());
    }

    fn django_keys(secret: &str) -> Keys {
        keys("a").with_django_secret(Some(&SecretString::from(secret.to_owned())))
    }

    fn claims_of(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn with_a_django_secret_login_tokens_are_the_django_sites_own() {
        let k = django_keys("django-insecure-short key");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let token = k
            .issue_login_token(
                7,
                "13800138000",
                std::time::Duration::from_secs(86_400),
                now,
            )
            .unwrap();
        assert_eq!(
            claims_of(&token),
            serde_json::json!({
                "user_id": 7, "username": "13800138000", "exp": 1_800_086_400, "email": "",
            }),
            "djangorestframework-jwt's payload, and no audience PyJWT would refuse"
        );
        assert_eq!(k.verify_login_token(&token, now), Ok(7));
        let later = now + time::Duration::days(1);
        assert_eq!(
            k.verify_login_token(&token, later),
            Err(TokenError::Expired)
        );
        let other_site = django_keys("another site's secret");
        assert_eq!(
            other_site.verify_login_token(&token, now),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_django_token_naming_an_audience_is_refused_as_pyjwt_refuses_it() {
        let secret = "django-insecure-short key";
        let k = django_keys(secret);
        let now = OffsetDateTime::now_utc();
        let claims = serde_json::json!({
            "user_id": 7, "username": "u", "exp": now.unix_timestamp() + 60, "aud": "x",
        });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        assert_eq!(k.verify_login_token(&token, now), Err(TokenError::Invalid));
    }

    #[test]
    fn the_services_own_login_tokens_still_pass_beside_django_ones() {
        let own = keys("a");
        let now = OffsetDateTime::now_utc();
        let token = own
            .issue_login_token(9, "u", std::time::Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(django_keys("s").verify_login_token(&token, now), Ok(9));
    }
}
