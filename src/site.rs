//! The site's own face on every page — its name, logo and accent colour, as
//! the operator sets them — and the static files the pages load, each served
//! under a name carrying a hash of its content: browsers keep them for a
//! year, and a new release or a new accent colour is a new name, never a
//! stale copy.

use std::path::Path;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::middleware::Next;
use actix_web::web;
use sha2::{Digest, Sha256};

use crate::domain::AccentColor;

/// The largest logo accepted: a logo is a few kilobytes; more is a mistake.
const MAX_LOGO_BYTES: usize = 256 * 1024;
/// Where static files are served.
const STATIC_PREFIX: &str = "/static/";

const APP_CSS: &str = include_str!("../static/app.css");
const SMS_JS: &str = include_str!("../static/sms.js");
const AVATAR_JS: &str = include_str!("../static/avatar.js");

/// The operator's settings for the site's face (`QQLOGIN_SITE_*`, `QQLOGIN_ACCENT_COLOR`).
#[derive(Debug, Clone, Default)]
pub struct SiteConfig {
    /// None: the catalogue's name for a sign-in service, in the page's language.
    pub name: Option<String>,
    pub logo: Option<Logo>,
    pub accent: Option<AccentColor>,
}

/// The operator's logo, read once at start-up (`QQLOGIN_SITE_LOGO`).
#[derive(Clone)]
pub struct Logo {
    bytes: Vec<u8>,
    /// What templates call it: `logo.png`, …
    name: &'static str,
    content_type: &'static str,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Logo({}, {} bytes)", self.content_type, self.bytes.len())
    }
}

impl Logo {
    /// Reads the image at `path`; its type is told by its extension.
    pub fn read(path: &Path) -> Result<Self, String> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let (name, content_type) = match extension.as_deref() {
            Some("png") => ("logo.png", "image/png"),
            Some("jpg" | "jpeg") => ("logo.jpg", "image/jpeg"),
            Some("webp") => ("logo.webp", "image/webp"),
            Some("gif") => ("logo.gif", "image/gif"),
            Some("svg") => ("logo.svg", "image/svg+xml"),
            _ => return Err("must be a .png, .jpg, .webp, .gif or .svg file".to_owned()),
        };
        let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
        if bytes.is_empty() || bytes.len() > MAX_LOGO_BYTES {
            return Err(format!(
                "must be a file of 1 byte to {} KiB",
                MAX_LOGO_BYTES / 1024
            ));
        }
        Ok(Self {
            bytes,
            name,
            content_type,
        })
    }
}

/// A static file as served: its fingerprinted path and its content.
pub struct Asset {
    /// `app.css`: what templates call it.
    name: &'static str,
    /// `/static/app.<hash>.css`: where it is served.
    path: String,
    pub content_type: &'static str,
    pub body: web::Bytes,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Self {
        let hash = Sha256::digest(&body);
        let fingerprint = base16ct::lower::encode_string(&hash[..8]);
        let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
        Self {
            name,
            path: format!("{STATIC_PREFIX}{stem}.{fingerprint}.{extension}"),
            content_type,
            body: web::Bytes::from(body),
        }
    }
}

/// The site as every page shows it, built once at start-up.
pub struct Site {
    name: Option<String>,
    /// The logo's path, when the operator set one.
    pub logo: Option<String>,
    assets: Vec<Asset>,
}

impl Site {
    pub fn new(config: &SiteConfig) -> Self {
        let mut assets = vec![
            Asset::new(
                "app.css",
                "text/css; charset=utf-8",
                stylesheet(config.accent).into_bytes(),
            ),
            Asset::new("sms.js", "text/javascript; charset=utf-8", SMS_JS.into()),
            Asset::new(
                "avatar.js",
                "text/javascript; charset=utf-8",
                AVATAR_JS.into(),
            ),
        ];
        let logo = config.logo.as_ref().map(|logo| {
            let asset = Asset::new(logo.name, logo.content_type, logo.bytes.clone());
            let path = asset.path.clone();
            assets.push(asset);
            path
        });
        Self {
            name: config.name.clone(),
            logo,
            assets,
        }
    }

    /// The site's name, as the operator set it or in the page's language.
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .unwrap_or(crate::i18n::texts().common.default_site_name)
    }

    /// Where the static file `name` (`app.css`, `sms.js`, …) is served:
    /// templates name files only through this.
    pub fn asset(&self, name: &str) -> &str {
        self.assets
            .iter()
            .find(|a| a.name == name)
            .map_or("", |a| a.path.as_str())
    }

    /// The static file served at `/static/{file}`.
    pub fn served_as(&self, file: &str) -> Option<&Asset> {
        self.assets
            .iter()
            .find(|a| a.path.strip_prefix(STATIC_PREFIX) == Some(file))
    }
}

/// The stylesheet, with the operator's accent colour (when set) in place of
/// the default one.
fn stylesheet(accent: Option<AccentColor>) -> String {
    match accent {
        None => APP_CSS.to_owned(),
        Some(accent) => format!(
            "{APP_CSS}\n/* The operator's accent colour (QQLOGIN_ACCENT_COLOR). */\n\
             :root {{ --accent: {accent}; --on-accent: {}; }}\n",
            accent.text_color()
        ),
    }
}

tokio::task_local! {
    static SITE: Arc<Site>;
}

/// The site of the request being served. Error pages are rendered where no
/// application state can be reached (`ResponseError`), so the layout finds
/// the site here rather than in each page's fields.
pub fn current() -> Arc<Site> {
    SITE.try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::new(Site::new(&SiteConfig::default())))
}

/// Middleware: serves the request with its site in scope ([`current`]). An
/// error no handler turned into a response (a middleware's: the database
/// away) is rendered here too, still in scope, so that its page looks like
/// every other.
pub async fn in_scope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(site) = req
        .app_data::<web::Data<Site>>()
        .map(|s| s.clone().into_inner())
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    SITE.scope(site, async move {
        match next.call(req).await {
            Ok(response) => Ok(response.map_into_boxed_body()),
            Err(e) => {
                let page = e.error_response();
                Err(InternalError::from_response(e.to_string(), page).into())
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_served_under_a_name_that_changes_with_its_content() {
        let plain = Site::new(&SiteConfig::default());
        let css = plain.asset("app.css");
        assert!(
            css.starts_with("/static/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/app.0123456789abcdef.css".len());
        let file = css.trim_start_matches("/static/");
        assert_eq!(
            plain.served_as(file).map(|a| a.body.len()),
            Some(APP_CSS.len())
        );

        let red = Site::new(&SiteConfig {
            accent: AccentColor::parse("#e4393c").ok(),
            ..SiteConfig::default()
        });
        assert_ne!(red.asset("app.css"), css, "a new accent is a new name");
        assert_eq!(red.asset("sms.js"), plain.asset("sms.js"));
        assert!(
            plain.served_as("app.css").is_none(),
            "only fingerprinted names"
        );
    }

    #[test]
    fn the_accent_colour_ends_the_stylesheet() {
        let css = stylesheet(AccentColor::parse("#ffd500").ok());
        assert!(
            css.ends_with(":root { --accent: #ffd500; --on-accent: #111111; }\n"),
            "{css}"
        );
    }
}
