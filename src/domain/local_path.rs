/// Where to send a person after login: always a path on this site.
///
/// Anything that could leave the site — `//evil.example`, `/\evil.example`,
/// `https://…`, control characters that browsers strip — becomes `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPath(String);

const MAX_LEN: usize = 1024;

impl LocalPath {
    /// Never fails: an unacceptable target is replaced by the home page.
    pub fn sanitize(raw: Option<&str>) -> Self {
        raw.filter(|p| is_local(p))
            .map_or_else(Self::home, |p| Self(p.to_owned()))
    }

    pub fn home() -> Self {
        Self("/".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_local(p: &str) -> bool {
    let b = p.as_bytes();
    p.len() <= MAX_LEN
        && b.first() == Some(&b'/')
        // `//host` and `/\host` are protocol-relative to browsers.
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        // Browsers drop tabs and newlines inside URLs, which can turn `/\t/host` into `//host`.
        && !p.chars().any(|c| c.is_control() || c == '\\')
}

impl std::fmt::Display for LocalPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_local_paths() {
        for ok in ["/", "/orders?id=3&x=1", "/用户/中心", "/a#frag"] {
            assert_eq!(LocalPath::sanitize(Some(ok)).as_str(), ok);
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_becomes_home() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            " /x",
            "\\\\evil",
        ] {
            assert_eq!(LocalPath::sanitize(Some(bad)), LocalPath::home(), "{bad:?}");
        }
        assert_eq!(LocalPath::sanitize(None), LocalPath::home());
        assert_eq!(
            LocalPath::sanitize(Some(&format!("/{}", "a".repeat(5000)))),
            LocalPath::home()
        );
    }
}
