//! Image codes (图片验证码) for the original front ends: the picture behind
//! `GET /image_codes/<uuid>/`, and the one check of what the person read off
//! it, which `/sms_codes/` asks before it sends anything.
//!
//! Answers live in the database, so that every instance of the service can
//! check a code another one drew.

use actix_web::web;
use captcha_rs::CaptchaBuilder;
use image::codecs::png::PngEncoder;
use time::PrimitiveDateTime;

use crate::db::{self, Db, DbError};
use crate::domain::ImageCodeId;

/// How long an image's answer stays good.
pub const TTL: time::Duration = time::Duration::minutes(5);
/// What [`ImageCodes::issue`] draws.
pub const CONTENT_TYPE: &str = "image/png";

/// Digits and capitals without the look-alikes (0/O, 1/I/L): read off a
/// phone's screen, nothing should be a guess. Checks ignore case, so the
/// person may type them in lower case.
const ALPHABET: [char; 31] = [
    '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'M',
    'N', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z',
];
const LENGTH: usize = 4;
/// About the size the original front ends show it at (110×40 CSS pixels).
const WIDTH: u32 = 120;
const HEIGHT: u32 = 40;
/// Curves and circles across the characters, but no speckle noise: the
/// characters stay legible on a small screen.
const COMPLEXITY: u32 = 1;

/// Why an image code was not accepted, or not made.
#[derive(Debug, thiserror::Error)]
pub enum ImageCodeError {
    /// Unknown, expired, already used or mistyped: the person is told the
    /// same for each ("图片验证码有误"), and gets a new image.
    #[error("image code unknown, expired, used or mistyped")]
    Wrong,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("image code could not be drawn: {0}")]
    Draw(#[from] image::ImageError),
    /// The drawing task was cancelled (the runtime is shutting down).
    #[error("image code drawing was cancelled")]
    Cancelled,
}

/// Draws image codes and checks them, single use, against the database.
#[derive(Clone)]
pub struct ImageCodes {
    db: Db,
}

impl ImageCodes {
    /// The service on `db`; any instance on the same database checks the codes any other drew.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// A new image for `id` (a PNG, [`CONTENT_TYPE`]), whose answer
    /// replaces any the id had. Expired answers are purged on the way.
    pub async fn issue(&self, id: &ImageCodeId) -> Result<Vec<u8>, ImageCodeError> {
        // Drawing is CPU work: it runs on the blocking pool, not an async worker.
        let drawn = web::block(draw)
            .await
            .map_err(|_| ImageCodeError::Cancelled)??;
        let id = id.as_str().to_owned();
        let now = db::now();
        self.db
            .transaction(move |conn| -> Result<(), DbError> {
                db::image_code::purge_expired(conn, now)?;
                db::image_code::put(conn, &id, &drawn.answer, now + TTL)
            })
            .await?;
        Ok(drawn.png)
    }

    /// Whether `typed` is what image `id` shows, in any case, within
    /// [`TTL`]. The code is used up whatever the outcome, so each image
    /// allows one guess; `id` is taken as the client sent it.
    pub async fn check(&self, id: &str, typed: &str) -> Result<(), ImageCodeError> {
        self.check_at(id, typed, db::now()).await
    }

    /// [`Self::check`] as if it were `now`.
    pub async fn check_at(
        &self,
        id: &str,
        typed: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), ImageCodeError> {
        let id = ImageCodeId::parse(id).map_err(|_| ImageCodeError::Wrong)?;
        let typed = typed.trim().to_ascii_uppercase();
        let right = self
            .db
            .write(move |conn| db::image_code::take(conn, id.as_str(), &typed, now))
            .await?;
        if right {
            Ok(())
        } else {
            Err(ImageCodeError::Wrong)
        }
    }

    /// The answer image `id` shows, if it is stored. The tests read it here
    /// because the only other way to it is reading the picture; it is not
    /// compiled into a release build, where it would be an oracle.
    #[cfg(debug_assertions)]
    pub async fn answer_for_tests(&self, id: &ImageCodeId) -> Option<String> {
        let id = id.as_str().to_owned();
        self.db
            .run(move |conn| db::image_code::answer(conn, &id))
            .await
            .ok()
            .flatten()
    }
}

/// An image code as drawn: its answer (upper case) and its picture.
struct Drawn {
    answer: String,
    png: Vec<u8>,
}

fn draw() -> Result<Drawn, image::ImageError> {
    let captcha = CaptchaBuilder::new()
        .chars(ALPHABET.to_vec())
        .length(LENGTH)
        .width(WIDTH)
        .height(HEIGHT)
        .complexity(COMPLEXITY)
        // The light palette has yellow and pale green on pale blue; the dark
        // one is bright colours on near-black, far easier to read.
        .dark_mode(true)
        .build();
    // PNG rather than the crate's JPEG: lossless, so the characters' edges stay sharp.
    let mut png = Vec::new();
    captcha
        .image
        .write_with_encoder(PngEncoder::new(&mut png))?;
    Ok(Drawn {
        answer: captcha.text.to_ascii_uppercase(),
        png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_is_a_png_of_four_unambiguous_characters() {
        let drawn = draw().unwrap();
        assert!(drawn.png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        assert_eq!(drawn.answer.chars().count(), LENGTH);
        assert!(
            drawn.answer.chars().all(|c| ALPHABET.contains(&c)),
            "{}",
            drawn.answer
        );
    }

    #[test]
    fn drawings_differ() {
        let answers: std::collections::HashSet<String> =
            (0..20).map(|_| draw().unwrap().answer).collect();
        assert!(answers.len() > 15, "{answers:?}");
    }
}
