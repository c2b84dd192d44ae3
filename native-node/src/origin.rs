//! Which web pages may open a node's UI socket (`/ws/ui`), and the rule that no page may open
//! its peer socket (`/ws/peer`).
//!
//! A browser lets any page open a WebSocket to any address, `127.0.0.1` included, and tells the
//! server only one thing about who is asking: the `Origin` header, which the page cannot forge.
//! So a node decides on it:
//!
//! - **No `Origin`: accepted.** Browsers always send one on a WebSocket handshake, so a
//!   connection without one is not a web page: a CLI tool, a test, a script. Anything that can
//!   leave the header out can also write whatever it likes in it, so refusing it would stop
//!   nobody; what guards the node against such clients is the network it listens on.
//! - **The node's own pages: accepted.** An origin whose host and port are those of the
//!   request's `Host` when that is an IP address or `localhost` (the page this node served: the
//!   same origin), or this node's address, or the address of any member of its cluster (the page
//!   served by another node, which connects to every member). `localhost`, `127.0.0.0/8` and
//!   `[::1]` count as one host. Domain names other than `localhost` never match through `Host`:
//!   a page on `evil.example` that resolves its name to 127.0.0.1 (DNS rebinding) would send a
//!   matching `Host` and `Origin`.
//! - **Listed origins: accepted.** `--ui-allow-origin ORIGIN` (repeatable), e.g. the page from
//!   `python3 -m http.server`: `--ui-allow-origin http://127.0.0.1:8000`.
//! - **Anything else, `null` included** (a `file://` page, a sandboxed frame): refused with
//!   `403 forbidden_origin`.
//! - **The peer socket** refuses every request that carries an `Origin`: peers are nodes, which
//!   never send one, and a page must not join a cluster that has no secret.

use axum::http::Uri;
use std::net::IpAddr;

/// An origin reduced to what is compared: scheme, host (loopback names made one) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// How every loopback host is written once normalised.
const LOOPBACK: &str = "loopback";

fn normal_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    match lower.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => LOOPBACK.to_string(),
        Ok(ip) => ip.to_string(),
        Err(_) if lower == "localhost" => LOOPBACK.to_string(),
        Err(_) => lower,
    }
}

impl Origin {
    /// Parses `scheme://host[:port]` (an `Origin` header, or a `--ui-allow-origin` value).
    pub fn parse(s: &str) -> Result<Origin, String> {
        let bad = || format!("{s:?} is not an origin like http://127.0.0.1:8000");
        let uri: Uri = s.trim_end_matches('/').parse().map_err(|_| bad())?;
        let scheme = uri.scheme_str().ok_or_else(bad)?.to_ascii_lowercase();
        let host = uri.host().ok_or_else(bad)?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad());
        }
        let port = match (uri.port_u16(), scheme.as_str()) {
            (Some(p), _) => p,
            (None, "http") => 80,
            (None, "https") => 443,
            _ => return Err(bad()),
        };
        Ok(Origin {
            scheme,
            host: normal_host(host),
            port,
        })
    }

    /// The origin of a page served over plain HTTP at `host:port` (a node's address or a
    /// request's `Host`); `None` if it has no port.
    fn of_address(address: &str) -> Option<Origin> {
        let (host, port) = address.rsplit_once(':')?;
        Some(Origin {
            scheme: "http".into(),
            host: normal_host(host),
            port: port.parse().ok()?,
        })
    }
}

/// Parses a `--ui-allow-origin` value (clap's value parser).
pub fn parse_allowed(s: &str) -> Result<String, String> {
    Origin::parse(s).map(|_| s.to_string())
}

/// What the UI socket's policy says about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a browser.
    NoOrigin,
    /// The node's own page, a member's, or a listed one.
    Allowed,
    /// Any other page: refused, and why.
    Refused(String),
}

/// Whether the page at `origin` may open this node's UI socket. `host` is the request's `Host`
/// header, `addresses` this node's and its members' addresses, `listed` the
/// `--ui-allow-origin` values.
pub fn check(
    origin: Option<&str>,
    host: Option<&str>,
    addresses: &[String],
    listed: &[String],
) -> Verdict {
    let Some(raw) = origin else {
        return Verdict::NoOrigin;
    };
    let refused = || {
        Verdict::Refused(format!(
            "a page from {raw} may not use this node's UI socket (start the node with \
             --ui-allow-origin {raw} to allow it)"
        ))
    };
    let Ok(origin) = Origin::parse(raw) else {
        return refused();
    };
    if listed
        .iter()
        .any(|l| Origin::parse(l).ok().as_ref() == Some(&origin))
    {
        return Verdict::Allowed;
    }
    if origin.scheme != "http" {
        return refused();
    }
    let host_is_literal = host
        .and_then(Origin::of_address)
        .filter(|h| h.host == LOOPBACK || h.host.parse::<IpAddr>().is_ok());
    if host_is_literal.as_ref() == Some(&origin)
        || addresses
            .iter()
            .any(|a| Origin::of_address(a).as_ref() == Some(&origin))
    {
        return Verdict::Allowed;
    }
    refused()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_of(origin: Option<&str>, host: &str) -> Verdict {
        let members = ["127.0.0.1:7001".to_string(), "10.0.0.7:7002".to_string()];
        let listed = ["http://127.0.0.1:8000".to_string()];
        check(origin, Some(host), &members, &listed)
    }

    #[test]
    fn own_member_and_listed_pages_pass_and_others_are_refused() {
        assert_eq!(check_of(None, "127.0.0.1:7001"), Verdict::NoOrigin);
        // The page this node served, by IP or by localhost.
        let own = check_of(Some("http://127.0.0.1:7003"), "127.0.0.1:7003");
        assert_eq!(own, Verdict::Allowed);
        let local = check_of(Some("http://localhost:7003"), "localhost:7003");
        assert_eq!(local, Verdict::Allowed);
        let lan = check_of(Some("http://192.168.1.5:7003"), "192.168.1.5:7003");
        assert_eq!(lan, Verdict::Allowed);
        // A page served by a member, under another loopback name.
        let member = check_of(Some("http://localhost:7001"), "127.0.0.1:7003");
        assert_eq!(member, Verdict::Allowed);
        assert_eq!(
            check_of(Some("http://10.0.0.7:7002"), "127.0.0.1:7003"),
            Verdict::Allowed
        );
        // The static server the README names, listed.
        let listed = check_of(Some("http://localhost:8000"), "127.0.0.1:7003");
        assert_eq!(listed, Verdict::Allowed);
        // Everything else.
        for origin in [
            "https://evil.example",
            "http://evil.example:7003",
            "http://127.0.0.1:8001",
            "null",
            "http://127.0.0.1:7003/path",
            "https://127.0.0.1:7001",
        ] {
            let verdict = check_of(Some(origin), "127.0.0.1:7003");
            assert!(
                matches!(verdict, Verdict::Refused(_)),
                "{origin}: {verdict:?}"
            );
        }
        // DNS rebinding: a name that resolves to the node sends a matching Host and Origin.
        let rebound = check_of(Some("http://evil.example:7003"), "evil.example:7003");
        assert!(matches!(rebound, Verdict::Refused(_)), "{rebound:?}");
    }

    #[test]
    fn allowed_origins_are_checked_when_given() {
        assert!(parse_allowed("http://127.0.0.1:8000").is_ok());
        assert!(parse_allowed("https://example.org").is_ok());
        assert!(parse_allowed("127.0.0.1:8000").is_err());
        assert!(parse_allowed("http://127.0.0.1:8000/index.html").is_err());
    }
}
