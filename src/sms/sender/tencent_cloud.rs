//! The `tencentcloud` sender: Tencent Cloud SMS `SendSms`, API 3.0, version
//! 2021-01-11, signed with TC3-HMAC-SHA256
//! (https://cloud.tencent.com/document/api/382/55981).
//!
//! The template's two parameters are the code and its validity in minutes.
//! Tencent Cloud answers HTTP 200 both ways: a refused request carries
//! `Response.Error`, an accepted one a `SendStatusSet` whose entry says
//! whether this number was sent to ("Ok") or not (e.g.
//! `LimitExceeded.PhoneNumberDailyLimit`).

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::{SendError, clean_provider_text, read_capped, tc3, ttl_minutes};
use crate::config::TencentCloudConfig;
use crate::domain::{Mobile, SmsCode};

/// The service name in the credential scope.
pub const SERVICE: &str = "sms";
pub const ACTION: &str = "SendSms";
pub const VERSION: &str = "2021-01-11";
/// Exactly as signed: a client adding or dropping the charset would break
/// the signature.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Time allowed for the whole call. There is no retry: SendSms is not
/// idempotent, and a request that timed out may still have been sent.
const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(super) struct TencentCloud {
    http: reqwest::Client,
    config: TencentCloudConfig,
    /// The `Host` header, as signed: with the port when it is not the scheme's.
    host: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendSms<'a> {
    phone_number_set: [String; 1],
    sms_sdk_app_id: &'a str,
    sign_name: &'a str,
    template_id: &'a str,
    template_param_set: [&'a str; 2],
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    send_status_set: Vec<SendStatus>,
    #[serde(default)]
    request_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendStatus {
    code: String,
    #[serde(default)]
    message: String,
}

impl TencentCloud {
    pub(super) fn new(config: TencentCloudConfig) -> Result<Self, SendError> {
        let url = &config.endpoint;
        let Some(host) = url
            .host_str()
            .filter(|_| matches!(url.scheme(), "http" | "https"))
        else {
            return Err(build_err("the endpoint must be an http(s) URL with a host"));
        };
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        for (value, reason) in [
            (config.secret_id.as_str(), "the SecretId is empty"),
            (config.secret_key.expose_secret(), "the SecretKey is empty"),
            (config.sdk_app_id.as_str(), "the SmsSdkAppId is empty"),
            (config.template_id.as_str(), "the template id is empty"),
            (config.region.as_str(), "the region is empty"),
        ] {
            if value.trim().is_empty() {
                return Err(build_err(reason));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qqlogin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Build {
                reason: "the HTTP client could not be built",
                source: Some(e.without_url()),
            })?;
        Ok(Self { http, config, host })
    }

    pub(super) async fn send(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        ttl: Duration,
    ) -> Result<(), SendError> {
        let minutes = ttl_minutes(ttl).to_string();
        let body = serde_json::to_vec(&SendSms {
            phone_number_set: [format!("+86{}", mobile.as_str())],
            sms_sdk_app_id: &self.config.sdk_app_id,
            sign_name: &self.config.sign_name,
            template_id: &self.config.template_id,
            template_param_set: [code.expose(), &minutes],
        })
        .map_err(|_| SendError::Malformed("the SendSms body could not be serialised"))?;
        let url: &Url = &self.config.endpoint;
        let now = OffsetDateTime::now_utc();
        let authorization = tc3::authorization(
            &self.config.secret_id,
            self.config.secret_key.expose_secret(),
            SERVICE,
            &tc3::Request {
                method: "POST",
                path: url.path(),
                query: "",
                // The action is signed too, so a captured request cannot be
                // replayed as another call.
                headers: &[
                    ("content-type", CONTENT_TYPE),
                    ("host", &self.host),
                    ("x-tc-action", ACTION),
                ],
                payload: &body,
            },
            now,
        );
        let response = self
            .http
            .post(url.clone())
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::HOST, &self.host)
            .header("X-TC-Action", ACTION)
            .header("X-TC-Timestamp", now.unix_timestamp().to_string())
            .header("X-TC-Version", VERSION)
            .header("X-TC-Region", &self.config.region)
            .body(body)
            .send()
            .await
            .map_err(SendError::from_transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(SendError::Status(status.as_u16()));
        }
        parse_answer(&read_capped(response).await?)
    }
}

/// Reads SendSms's answer for one number.
fn parse_answer(body: &[u8]) -> Result<(), SendError> {
    let Envelope { response } = serde_json::from_slice(body)
        .map_err(|_| SendError::Malformed("not a JSON object with a Response"))?;
    let request_id = clean_provider_text(&response.request_id);
    if let Some(error) = response.error {
        return Err(SendError::Refused {
            code: clean_provider_text(&error.code),
            message: clean_provider_text(&error.message),
            request_id,
        });
    }
    let status = response
        .send_status_set
        .into_iter()
        .next()
        .ok_or(SendError::Malformed(
            "neither Error nor a SendStatusSet entry",
        ))?;
    if status.code == "Ok" {
        Ok(())
    } else {
        Err(SendError::NotSent {
            code: clean_provider_text(&status.code),
            message: clean_provider_text(&status.message),
            request_id,
        })
    }
}

/// What the person is told for the codes that are about their number
/// (https://cloud.tencent.com/document/api/382/55981, "错误码"); `None` for
/// the rest, which are the operator's to fix and get the generic message.
pub(super) fn person_message(code: &str) -> Option<&'static str> {
    let t = &crate::i18n::texts().sms;
    Some(match code {
        "LimitExceeded.PhoneNumberDailyLimit"
        | "LimitExceeded.PhoneNumberSameContentDailyLimit" => t.daily_limit,
        "LimitExceeded.PhoneNumberOneHourLimit" => t.hourly_limit,
        "LimitExceeded.PhoneNumberThirtySecondLimit" | "LimitExceeded.DeliveryFrequencyLimit" => {
            t.too_frequent
        }
        "InvalidParameterValue.IncorrectPhoneNumber" => t.bad_number,
        "FailedOperation.PhoneNumberInBlacklist" => t.unsubscribed,
        _ => return None,
    })
}

fn build_err(reason: &'static str) -> SendError {
    SendError::Build {
        reason,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shapes below are Tencent Cloud's own: the success and the
    // per-number failure as SendSms returns them, the request error as in
    // the API's "错误码" page (https://cloud.tencent.com/document/api/382/52075).

    #[test]
    fn ok_is_success() {
        let body = br#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619",
            "PhoneNumber":"+8613800138000","Fee":1,"SessionContext":"","Code":"Ok",
            "Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#;
        assert!(parse_answer(body).is_ok());
    }

    #[test]
    fn a_daily_limit_is_told_to_the_person() {
        let body = br#"{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613800138000",
            "Fee":0,"SessionContext":"","Code":"LimitExceeded.PhoneNumberDailyLimit",
            "Message":"the number of sms messages sent from a single mobile number every day exceeds the upper limit",
            "IsoCode":"CN"}],"RequestId":"3c1293ec-daa5-42f9-9f2c-ba3118031853"}}"#;
        let err = parse_answer(body).unwrap_err();
        assert!(
            matches!(&err, SendError::NotSent { code, .. } if code == "LimitExceeded.PhoneNumberDailyLimit")
        );
        assert_eq!(
            err.message(),
            "这个手机号今天接收的短信已达上限，请明天再试"
        );
        assert!(!err.is_operator_problem());
        assert!(
            err.to_string()
                .contains("3c1293ec-daa5-42f9-9f2c-ba3118031853")
        );
    }

    #[test]
    fn a_request_error_is_the_operators() {
        let body = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure",
            "Message":"The provided credentials could not be validated. Please check your signature is correct."},
            "RequestId":"ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}}"#;
        let err = parse_answer(body).unwrap_err();
        assert_eq!(err.provider_code(), Some("AuthFailure.SignatureFailure"));
        assert_eq!(err.message(), "短信发送失败，请稍后再试");
        assert!(err.is_operator_problem());
    }

    #[test]
    fn anything_else_is_malformed() {
        for body in [
            &b"<html>502</html>"[..],
            br#"{"Response":{"RequestId":"x"}}"#,
            br#"{"Response":{"SendStatusSet":[],"RequestId":"x"}}"#,
            br#"{"Error":"x"}"#,
        ] {
            assert!(
                matches!(parse_answer(body), Err(SendError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_body_has_the_number_in_e164_and_the_two_template_parameters() {
        let body = serde_json::to_string(&SendSms {
            phone_number_set: ["+8613800138000".to_owned()],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1110",
            template_param_set: ["012345", "5"],
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1110","TemplateParamSet":["012345","5"]}"#
        );
    }
}
