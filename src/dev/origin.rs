//! Which web pages may open a socket on `dev`. Pure.
//!
//! A browser lets any page it shows open a WebSocket to any address, `ws://127.0.0.1:3001` included, and sends the
//! page's origin with the handshake (RFC 6455 §10.2: the server is expected to check it). Without a check, any site
//! the developer visits while `dev` runs could connect, authenticate with whatever the page holds, and read what the
//! backend pushes. So a handshake that carries an `Origin` is taken only from this app's own pages: `dev.open`'s and
//! the backend URL's origins, any page served from this machine (`localhost`, `127.0.0.1`, `[::1]`, on any port:
//! the developer's own dev servers), and each `--allow-origin`. A handshake without an `Origin` does not come from
//! a browser; a non-browser client can send any `Origin` it likes, so refusing it would protect nothing.

use url::Url;

/// The origins a socket may come from, besides pages served from this machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allowed {
    /// Serialised origins (`https://app.example.com`, `http://localhost:5173`, `null` for `file://` pages).
    origins: Vec<String>,
    /// `--allow-origin '*'`: every origin.
    any: bool,
}

impl Allowed {
    /// The origins of `urls` (the config's `dev.open` and backend URL) and `extra` (`--allow-origin`, each a URL or
    /// an origin; `*` for all, `null` for `file://` pages).
    pub(crate) fn new<'a>(
        urls: impl IntoIterator<Item = &'a str>,
        extra: impl IntoIterator<Item = &'a str>,
    ) -> Allowed {
        let mut allowed = Allowed::default();
        for u in urls {
            if let Some(o) = origin_of(u) {
                allowed.origins.push(o);
            }
        }
        for e in extra {
            match e.trim() {
                "*" => allowed.any = true,
                "null" => allowed.origins.push("null".into()),
                other => allowed
                    .origins
                    .push(origin_of(other).unwrap_or_else(|| other.to_ascii_lowercase())),
            }
        }
        allowed
    }

    /// Whether a handshake with this `Origin` header (None: it had none) may open a socket.
    pub(crate) fn admits(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any {
            return true;
        }
        let origin = origin.trim();
        if origin == "null" {
            return self.origins.iter().any(|o| o == "null");
        }
        let Some(serialised) = origin_of(origin) else {
            return false;
        };
        is_this_machine(origin) || self.origins.contains(&serialised)
    }
}

/// `scheme://host[:port]`, lower-cased, default port dropped: the ASCII serialisation browsers send.
fn origin_of(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    let o = u.origin();
    o.is_tuple().then(|| o.ascii_serialization())
}

/// A page served over http(s) by this machine.
fn is_this_machine(origin: &str) -> bool {
    let Ok(u) = Url::parse(origin) else {
        return false;
    };
    if !matches!(u.scheme(), "http" | "https") {
        return false;
    }
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Allowed;

    fn allowed() -> Allowed {
        Allowed::new(
            ["http://localhost:3000/", "https://App.Example.com/chat"],
            ["https://staging.example.com:8443", "null"],
        )
    }

    #[test]
    fn the_apps_own_pages_and_this_machines_are_admitted() {
        let a = allowed();
        for origin in [
            "http://localhost:3000",
            "https://app.example.com",
            "https://staging.example.com:8443",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:4000",
            "http://app.localhost:3000",
            "null",
        ] {
            assert!(a.admits(Some(origin)), "{origin}");
        }
        assert!(a.admits(None), "no Origin: not a browser");
    }

    #[test]
    fn any_other_page_is_refused() {
        let a = allowed();
        for origin in [
            "https://evil.example",
            "http://app.example.com",
            "https://staging.example.com",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "chrome-extension://abcdef",
            "not an origin",
        ] {
            assert!(!a.admits(Some(origin)), "{origin}");
        }
        assert!(
            !Allowed::new([], []).admits(Some("null")),
            "file:// pages need --allow-origin null"
        );
    }

    #[test]
    fn a_star_admits_every_origin() {
        assert!(Allowed::new([], ["*"]).admits(Some("https://evil.example")));
    }
}
