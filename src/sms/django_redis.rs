//! A copy of each sent code for the Django site (`QQLOGIN_DJANGO_SMS_REDIS_URL`).
//!
//! With `/sms_codes/` routed to this service, the Django site's own
//! registration page gets its codes from here, and its `POST /users/` looks
//! the code up in its `verify_codes` Redis as `sms_<mobile>` — where the
//! site's SMS view used to put it, for as long as a code lives. So the code is
//! put there too. The copy is a courtesy to the site: a Redis that does not
//! answer costs a warning, never the person's code.

use std::time::Duration;

use crate::config::RedisUrl;
use crate::domain::{Mobile, SmsCode};

/// How long connecting to or talking to the site's Redis may take.
const WITHIN: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct DjangoCodes {
    client: redis::Client,
}

impl DjangoCodes {
    pub fn new(url: &RedisUrl) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url.0.clone())?,
        })
    }

    /// Sets `sms_<mobile>` to the code for `ttl`, as the Django site does.
    pub async fn store(&self, mobile: &Mobile, code: &SmsCode, ttl: Duration) {
        let (client, key, code) = (
            self.client.clone(),
            format!("sms_{}", mobile.as_str()),
            code.expose().to_owned(),
        );
        let stored = actix_web::rt::task::spawn_blocking(move || {
            let mut conn = client.get_connection_with_timeout(WITHIN)?;
            conn.set_read_timeout(Some(WITHIN))?;
            conn.set_write_timeout(Some(WITHIN))?;
            redis::cmd("SETEX")
                .arg(&key)
                .arg(ttl.as_secs())
                .arg(&code)
                .query::<()>(&mut conn)
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                log::warn!("an SMS code could not be copied to the Django site's Redis: {e}")
            }
            Err(_) => log::warn!("copying an SMS code to the Django site's Redis was cancelled"),
        }
    }
}
