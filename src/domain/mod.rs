//! Domain types that validate once, at the edge: everything past a parse holds
//! a value known to be well-formed. Nothing here knows actix or diesel.

mod accent_color;
mod avatar_url;
mod image_code_id;
mod local_path;
mod mobile;
mod openid;
mod password;
mod sms_code;

pub use accent_color::{AccentColor, InvalidAccentColor};
pub use avatar_url::AvatarUrl;
pub use image_code_id::{ImageCodeId, InvalidImageCodeId};
pub use local_path::LocalPath;
pub use mobile::{InvalidMobile, Mobile};
pub use openid::{InvalidOpenId, OpenId};
pub use password::{InvalidPassword, Password};
pub use sms_code::{InvalidSmsCode, SmsCode};
