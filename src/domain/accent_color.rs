/// The operator's accent colour, `#rrggbb`. It is written into the
/// stylesheet, so nothing but those seven characters may ever get through:
/// no names, no `rgb(…)`, nothing that could close a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccentColor([u8; 3]);

#[derive(Debug, thiserror::Error)]
#[error("must be a colour written #rrggbb, e.g. #e4393c")]
pub struct InvalidAccentColor;

impl AccentColor {
    pub fn parse(raw: &str) -> Result<Self, InvalidAccentColor> {
        let hex = raw.trim().strip_prefix('#').ok_or(InvalidAccentColor)?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidAccentColor);
        }
        let channel = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16);
        match (channel(0), channel(2), channel(4)) {
            (Ok(r), Ok(g), Ok(b)) => Ok(Self([r, g, b])),
            _ => Err(InvalidAccentColor),
        }
    }

    /// The colour of text written on the accent: white, or near-black on a
    /// light accent — whichever reads better (WCAG's contrast ratio).
    pub fn text_color(self) -> &'static str {
        let luminance = self.relative_luminance();
        // White's contrast is 1.05 / (L + 0.05), near-black's (L + 0.05) / 0.05.
        if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
            "#ffffff"
        } else {
            "#111111"
        }
    }

    fn relative_luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }
}

impl std::fmt::Display for AccentColor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_hex_digits_after_a_hash_are_a_colour() {
        for (raw, written) in [("#E4393C", "#e4393c"), (" #0077b6 ", "#0077b6")] {
            assert_eq!(AccentColor::parse(raw).unwrap().to_string(), written);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "#",
            "e4393c",
            "#e4393",
            "#e4393cc",
            "#fff",
            "red",
            "rgb(1,2,3)",
            "#e4393g",
            "#e4393c;}body{display:none",
            "#+1+2+3",
            "#ｅ4393c",
        ] {
            assert!(AccentColor::parse(raw).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn text_on_the_accent_is_white_on_dark_and_dark_on_light() {
        for (accent, text) in [
            ("#1f2328", "#ffffff"),
            ("#c7000b", "#ffffff"),
            // White on this red is 4.2:1, short of AA; near-black reads better.
            ("#e4393c", "#111111"),
            ("#ffd500", "#111111"),
            ("#ffffff", "#111111"),
        ] {
            assert_eq!(AccentColor::parse(accent).unwrap().text_color(), text);
        }
    }
}
