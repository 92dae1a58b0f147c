//! A QQ avatar's address, safe to put in a page.

use url::Url;

/// An https address on one of QQ's own avatar hosts.
///
/// QQ hands avatars out as `http://` URLs; a page served over https that
/// loaded them would be mixed content, and a URL from anywhere else could
/// track whoever opens the account centre. So only QQ's avatar hosts pass,
/// and always as https (they serve it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(String);

/// The hosts QQ serves avatars from, and their subdomains.
const QQ_AVATAR_HOSTS: [&str; 2] = ["qlogo.cn", "qpic.cn"];

impl AvatarUrl {
    /// The URL QQ gave, as https, if it is on QQ's avatar hosts.
    pub fn from_qq(raw: &str) -> Option<Self> {
        let mut url = Url::parse(raw.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.port().is_some()
        {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let ours = QQ_AVATAR_HOSTS
            .iter()
            .any(|h| host == *h || host.ends_with(&format!(".{h}")));
        if !ours {
            return None;
        }
        url.set_scheme("https").ok()?;
        Some(Self(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::AvatarUrl;

    #[test]
    fn qq_avatars_become_https() {
        let url = AvatarUrl::from_qq("http://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100").unwrap();
        assert_eq!(
            url.as_str(),
            "https://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100"
        );
        let url = AvatarUrl::from_qq("http://qzapp.qlogo.cn/qzapp/101/ABC/100").unwrap();
        assert_eq!(url.as_str(), "https://qzapp.qlogo.cn/qzapp/101/ABC/100");
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "javascript:alert(1)",
            "http://evil.example/qlogo.cn",
            "http://qlogo.cn.evil.example/a",
            "http://evilqlogo.cn/a",
            "http://user@thirdqq.qlogo.cn/a",
            "http://thirdqq.qlogo.cn:8080/a",
            "ftp://thirdqq.qlogo.cn/a",
            "data:image/png;base64,AAAA",
        ] {
            assert_eq!(AvatarUrl::from_qq(raw), None, "{raw}");
        }
    }
}
