//! Where a webhook may go: an `http` or `https` URL whose host resolves only to public
//! addresses, unless the operator allows private ones (`RETAINWISE_WEBHOOK_ALLOW_PRIVATE`). A
//! URL a user gives is a request the server makes for them, so loopback, private, link-local
//! (the cloud metadata service) and other special ranges are refused — server-side request
//! forgery, OWASP SSRF Prevention Cheat Sheet. The check runs when the endpoint is registered
//! and again before every delivery (DNS may change), and the delivery connects only to the
//! addresses that passed it.

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;

/// A URL that passed the check, with the addresses its host resolved to.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The URL as registered.
    pub url: Url,
    /// The host name to pin to `addrs` (empty for an IP literal).
    pub host: String,
    /// The addresses the delivery may connect to.
    pub addrs: Vec<SocketAddr>,
}

/// `raw` as it may be shown (listings, the CLI, error messages, logs): a user name and password
/// in the URL (`https://user:pass@host/`, RFC 3986 §3.2.1 userinfo) are replaced by `***`, since
/// a receiver's basic-auth password is a secret like the signing one.
pub fn redacted(raw: &str) -> String {
    // As the URL parser reads it: `http:user:pw@host` and `http:\\user:pw@host` carry the same
    // userinfo as `http://user:pw@host` and are sent with it.
    if let Ok(mut url) = Url::parse(raw.trim()) {
        if url.password().is_some() || !url.username().is_empty() {
            let _ = url.set_password(None);
            let _ = url.set_username("***");
            return url.to_string();
        }
    }
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        // Not a URL the parser reads with userinfo (`http//u:p@h`, `javascript:u:p@h`): what
        // stands before an `@` may still be a password, so none of it is shown.
        return match raw.rfind('@') {
            Some(at) => format!("***{}", &raw[at..]),
            None => raw.to_owned(),
        };
    };
    let rest = &raw[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..scheme_end], &rest[at..]),
        None => raw.to_owned(),
    }
}

/// Checks `raw` and resolves its host.
///
/// Errors: a sentence naming the URL and what is wrong (not http(s), no host, a host that does
/// not resolve, or one resolving to a non-public address while `allow_private` is false).
pub async fn check(raw: &str, allow_private: bool) -> Result<Destination, String> {
    let parsed = Url::parse(raw.trim());
    let raw = &redacted(raw);
    let url = parsed.map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{raw:?} has scheme {:?}; a webhook URL must be http:// or https://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{raw:?} names no host"))?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{raw:?} names no port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("the host of {raw:?} does not resolve ({e})"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("the host of {raw:?} resolves to no address"));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(format!(
                "{raw:?} resolves to {}, a loopback, private or link-local address; webhooks go \
                 only to public addresses unless the operator sets \
                 RETAINWISE_WEBHOOK_ALLOW_PRIVATE=true",
                bad.ip()
            ));
        }
    }
    let host = if bare.parse::<IpAddr>().is_ok() {
        String::new()
    } else {
        host
    };
    Ok(Destination { url, host, addrs })
}

/// True for an address on the public internet: not loopback, private (RFC 1918, RFC 4193
/// unique-local), link-local, shared (RFC 6598), unspecified, broadcast, multicast or
/// documentation; an IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            // An IPv4 address carried inside IPv6 reaches that IPv4 host: the NAT64 prefix
            // 64:ff9b::/96 (RFC 6052) and the deprecated IPv4-compatible ::a.b.c.d (RFC 4291).
            let [h1, h2] = [seg[6], seg[7]];
            let embedded =
                std::net::Ipv4Addr::new((h1 >> 8) as u8, h1 as u8, (h2 >> 8) as u8, h2 as u8);
            if (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4])
                || (seg[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified())
            {
                return is_public(IpAddr::V4(embedded));
            }
            let first = seg[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_and_nothing_else() {
        assert_eq!(
            redacted("https://user:pass@host.example/x?a=b@c"),
            "https://***@host.example/x?a=b@c"
        );
        assert_eq!(
            redacted("https://token@host.example"),
            "https://***@host.example/"
        );
        // Spellings the URL parser reads with the same userinfo.
        for odd in [
            "http:user:hunter2@8.8.8.8/h",
            "http:/\\user:hunter2@8.8.8.8/h",
            "http:\\\\user:hunter2@8.8.8.8/h",
        ] {
            assert_eq!(redacted(odd), "http://***@8.8.8.8/h", "{odd}");
        }
        assert_eq!(
            redacted("https://host.example/a@b"),
            "https://host.example/a@b"
        );
        assert_eq!(redacted("not a url"), "not a url");
        // Refused as not a URL or not http(s): the message quoting it shows no password.
        for (odd, shown) in [
            ("http//user:pwA@127.0.0.1:18503/x", "***@127.0.0.1:18503/x"),
            ("user:pwD@127.0.0.1:18503/x", "***@127.0.0.1:18503/x"),
            ("javascript:user:pwJ@x", "***@x"),
        ] {
            assert_eq!(redacted(odd), shown, "{odd}");
        }
    }

    #[test]
    fn special_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn only_public_http_urls_pass_unless_private_is_allowed() {
        let err = check("ftp://example.com/x", true).await.unwrap_err();
        assert!(err.contains("http://"), "{err}");
        let err = check("http://127.0.0.1:9/hook", false).await.unwrap_err();
        assert!(err.contains("RETAINWISE_WEBHOOK_ALLOW_PRIVATE"), "{err}");
        let err = check("http://localhost:9/hook", false).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = check("http://[::1]:9/hook", false).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let ok = check("http://127.0.0.1:9/hook", true).await.unwrap();
        assert_eq!(ok.addrs, vec!["127.0.0.1:9".parse().unwrap()]);
        assert!(check("not a url", true).await.is_err());
    }
}
