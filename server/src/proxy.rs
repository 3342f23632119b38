//! Where a client really connects from when chattrd sits behind reverse proxies.
//!
//! A proxy connects on the client's behalf and names the client in a header it adds: the
//! standard `Forwarded` (RFC 7239, `for=`) or the older `X-Forwarded-For`. Each proxy on the
//! way appends the address it received the request from, so the list reads from the client
//! (left) to the last proxy (right) — but anything left of what a trusted proxy appended came
//! from the client and may be forged. So the client is the **rightmost address that is not a
//! trusted proxy**: walk the list from the right past the trusted hops and take the first other
//! one. Headers are read only when the socket's peer is itself a trusted proxy; from anywhere
//! else they change nothing.
//!
//! Which header: by default `X-Forwarded-For` when the request has one (nginx, Caddy, Traefik
//! and HAProxy all write it), else `Forwarded`. A proxy that writes only `Forwarded` passes a
//! client's forged `X-Forwarded-For` through untouched, so behind one set
//! `CHATTR_PROXY_HEADER=forwarded` (and `x-forwarded-for` behind the others, to ignore a forged
//! `Forwarded` likewise).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use clap::ValueEnum;
use ipnet::IpNet;

/// Which header names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProxyHeader {
    /// `X-Forwarded-For` if the request has one, else `Forwarded`.
    #[default]
    Auto,
    /// Only `X-Forwarded-For`.
    XForwardedFor,
    /// Only `Forwarded` (RFC 7239).
    Forwarded,
}

/// The addresses (single ones or CIDR networks) whose word on the client's address is taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ProxyHeader,
}

/// Where a request came from: its socket's peer and the client behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr {
    /// The client's address: the peer's own unless the peer is a trusted proxy.
    pub ip: IpAddr,
    /// Whether the peer is a trusted proxy (so `ip` came from its headers, and the peer's own
    /// address is shared by many clients).
    pub via_proxy: bool,
}

impl TrustedProxies {
    pub(crate) fn new(nets: Vec<IpNet>, header: ProxyHeader) -> Self {
        Self { nets, header }
    }

    /// The proxies configured.
    pub(crate) fn of(config: &crate::Config) -> Self {
        Self::new(config.trusted_proxies.clone(), config.proxy_header)
    }

    /// Whether `ip` is a trusted proxy.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client behind a request that arrived from `peer` with `headers`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return ClientAddr { ip: peer, via_proxy: false };
        }
        let xff = HeaderName::from_static("x-forwarded-for");
        let use_xff = match self.header {
            ProxyHeader::XForwardedFor => true,
            ProxyHeader::Forwarded => false,
            ProxyHeader::Auto => headers.contains_key(&xff),
        };
        let ip = if use_xff {
            self.rightmost_untrusted(peer, hops(headers, &xff, x_forwarded_for))
        } else {
            self.rightmost_untrusted(peer, hops(headers, &axum::http::header::FORWARDED, forwarded))
        };
        ClientAddr { ip, via_proxy: true }
    }

    /// Walks `hops` (each an address, or `None` for an entry that names none: `unknown`, an
    /// obfuscated name, garbage) from the right past trusted proxies, starting from `peer`. The
    /// first untrusted address is the client; an entry naming no address there stops the walk
    /// at the last trusted hop (the one that received the request from whoever it was); a list
    /// of trusted hops only ends at its leftmost.
    fn rightmost_untrusted(&self, peer: IpAddr, hops: Vec<Option<IpAddr>>) -> IpAddr {
        let mut nearest = peer;
        for hop in hops.into_iter().rev() {
            match hop.map(|ip| ip.to_canonical()) {
                Some(ip) if self.trusts(ip) => nearest = ip,
                Some(ip) => return ip,
                None => return nearest,
            }
        }
        nearest
    }
}

/// Every entry of every `name` header, in order (several header lines are one list, RFC 9110
/// §5.3), each parsed by `entries`. Entries are read from the raw bytes: one that is not text
/// names no address without taking the others of its line with it (a client's `\xff` before
/// what the proxy appended must not hide the address the proxy wrote).
fn hops(
    headers: &HeaderMap,
    name: &HeaderName,
    entries: fn(&[u8]) -> Vec<Option<IpAddr>>,
) -> Vec<Option<IpAddr>> {
    headers.get_all(name).iter().flat_map(|value| entries(value.as_bytes())).collect()
}

/// `X-Forwarded-For: client, proxy1, proxy2`: addresses, some proxies adding a port.
fn x_forwarded_for(value: &[u8]) -> Vec<Option<IpAddr>> {
    value.split(|&b| b == b',').map(|entry| std::str::from_utf8(entry).ok().and_then(address)).collect()
}

/// `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"` (RFC 7239 §4): the `for` of
/// each element. Elements are split on commas and pairs on semicolons outside quoted strings,
/// so a quoted value (`host="a;for=6.6.6.6"`) cannot smuggle a `for` in; an element naming
/// `for` more than once, or whose `for` is no address (`unknown`, an obfuscated `_name`), names
/// none. (The `rfc7239` crate splits inside quotes, which let a client pick its address.)
fn forwarded(value: &[u8]) -> Vec<Option<IpAddr>> {
    split_unquoted(value, b',')
        .into_iter()
        .map(|element| {
            let mut fors = split_unquoted(element, b';').into_iter().filter_map(|pair| {
                let eq = pair.iter().position(|&b| b == b'=')?;
                let name = std::str::from_utf8(&pair[..eq]).ok()?.trim();
                name.eq_ignore_ascii_case("for").then(|| &pair[eq + 1..])
            });
            match (fors.next(), fors.next()) {
                (Some(node), None) => std::str::from_utf8(node).ok().and_then(|n| address(unquote(n.trim()))),
                _ => None,
            }
        })
        .collect()
}

/// `value` cut at every `sep` that is not inside a quoted string (with `\` escapes).
fn split_unquoted(value: &[u8], sep: u8) -> Vec<&[u8]> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A quoted string's content (escapes are not needed for an address, which has none).
fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// An address, with or without a port (`1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:5678`).
fn address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok())
}

/// A trusted proxy as configured: an address or a CIDR network.
pub(crate) fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(net) => net.trunc(),
        Err(_) => s
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{s}` is neither an address nor a CIDR network (e.g. 10.0.0.0/8)"))?,
    };
    Ok(canonical(net))
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it is: peers are
/// compared as IPv4 addresses, so the mapped form would never match.
pub(crate) fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(nets: &[&str], header: ProxyHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_net(n).unwrap()).collect(), header)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bytes_that_are_not_text_spoil_only_their_own_entry() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::Auto);
        // What nginx sends on for a client that put a non-ASCII byte in its own header.
        let mut map = HeaderMap::new();
        map.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff, 203.0.113.9").unwrap());
        assert_eq!(p.client(ip("10.0.0.1"), &map).ip, ip("203.0.113.9"));
        let mut map = HeaderMap::new();
        map.append("forwarded", HeaderValue::from_bytes(b"for=\"\xff\", for=203.0.113.9").unwrap());
        assert_eq!(p.client(ip("10.0.0.1"), &map).ip, ip("203.0.113.9"));
    }

    #[test]
    fn a_quoted_value_cannot_smuggle_a_for_into_forwarded() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::Forwarded);
        // The proxy wrote `for` then the client's Host, quoted.
        for host in [r#"host="a;for=6.6.6.6""#, r#"host="a, for=6.6.6.6""#, r#"host="a\";for=6.6.6.6""#] {
            let value = format!("for=198.51.100.7;{host}");
            assert_eq!(client(&p, "10.0.0.1", &[("forwarded", &value)]), ip("198.51.100.7"), "{value}");
        }
        // An element naming `for` twice names nobody.
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", "for=198.51.100.7;for=6.6.6.6")]), ip("10.0.0.1"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(p: &TrustedProxies, peer: &str, pairs: &[(&'static str, &str)]) -> IpAddr {
        p.client(ip(peer), &headers(pairs)).ip
    }

    #[test]
    fn headers_from_an_untrusted_peer_change_nothing() {
        let p = proxies(&["10.0.0.1"], ProxyHeader::Auto);
        let forged = [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")];
        let seen = p.client(ip("203.0.113.9"), &headers(&forged));
        assert_eq!(seen, ClientAddr { ip: ip("203.0.113.9"), via_proxy: false });
        // No proxies configured: the same.
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "10.0.0.1", &forged), ip("10.0.0.1"));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.1"], ProxyHeader::Auto);
        // One proxy: what it appended.
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "198.51.100.7")]), ip("198.51.100.7"));
        // A forged entry on the left is skipped: the proxy appended the real address after it.
        assert_eq!(
            client(&p, "10.0.0.1", &[("x-forwarded-for", "1.1.1.1, 198.51.100.7")]),
            ip("198.51.100.7")
        );
        // Two trusted proxies in a row (a CDN edge, then the local nginx), over two header lines.
        let chain = [("x-forwarded-for", "1.1.1.1, 198.51.100.7"), ("x-forwarded-for", "192.168.1.1")];
        assert_eq!(client(&p, "10.0.0.1", &chain), ip("198.51.100.7"));
        // Only trusted hops: the leftmost one.
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "10.1.2.3, 192.168.1.1")]), ip("10.1.2.3"));
        // No header at all: the proxy itself.
        let seen = p.client(ip("10.0.0.1"), &HeaderMap::new());
        assert_eq!(seen, ClientAddr { ip: ip("10.0.0.1"), via_proxy: true });
    }

    #[test]
    fn an_entry_naming_no_address_stops_at_the_nearest_trusted_hop() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::Auto);
        for garbage in ["unknown", "not an address", "", "1.2.3.4.5"] {
            let list = format!("1.1.1.1, {garbage}, 10.9.9.9");
            assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", &list)]), ip("10.9.9.9"), "{garbage:?}");
        }
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", "for=unknown")]), ip("10.0.0.1"));
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", "for=_hidden, for=10.2.2.2")]), ip("10.2.2.2"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let p = proxies(&["::1", "10.0.0.0/8"], ProxyHeader::Auto);
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "198.51.100.7:4711")]), ip("198.51.100.7"));
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "[2001:db8::7]:4711")]), ip("2001:db8::7"));
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "2001:db8::7")]), ip("2001:db8::7"));
        assert_eq!(client(&p, "10.0.0.1", &[("x-forwarded-for", "[2001:db8::7]")]), ip("2001:db8::7"));
        // A proxy reached over an IPv4-mapped IPv6 socket is the IPv4 address it is, and so is
        // a client it names that way.
        assert_eq!(
            client(&p, "::ffff:10.0.0.1", &[("x-forwarded-for", "::ffff:198.51.100.7")]),
            ip("198.51.100.7")
        );
        assert_eq!(client(&p, "::1", &[("x-forwarded-for", "198.51.100.7")]), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_is_read_per_rfc_7239() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::Auto);
        let value = r#"for=1.1.1.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1, for=10.3.3.3"#;
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", value)]), ip("2001:db8:cafe::17"));
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", "For=\"198.51.100.7:80\"")]), ip("198.51.100.7"));
        // An element with no `for` names no address.
        assert_eq!(client(&p, "10.0.0.1", &[("forwarded", "proto=https")]), ip("10.0.0.1"));
    }

    #[test]
    fn the_header_read_is_the_one_configured() {
        let both = [("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=203.0.113.5")];
        let auto = proxies(&["10.0.0.1"], ProxyHeader::Auto);
        assert_eq!(client(&auto, "10.0.0.1", &both), ip("198.51.100.7"), "auto prefers X-Forwarded-For");
        assert_eq!(client(&auto, "10.0.0.1", &both[1..]), ip("203.0.113.5"), "and falls back to Forwarded");
        let fwd = proxies(&["10.0.0.1"], ProxyHeader::Forwarded);
        assert_eq!(client(&fwd, "10.0.0.1", &both), ip("203.0.113.5"));
        assert_eq!(
            client(&fwd, "10.0.0.1", &both[..1]),
            ip("10.0.0.1"),
            "a forged X-Forwarded-For is ignored"
        );
        let xff = proxies(&["10.0.0.1"], ProxyHeader::XForwardedFor);
        assert_eq!(client(&xff, "10.0.0.1", &both[1..]), ip("10.0.0.1"), "a forged Forwarded is ignored");
    }

    #[test]
    fn configured_proxies_parse_as_addresses_or_networks() {
        assert_eq!(parse_net(" 10.0.0.1 ").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        // IPv4-mapped networks are the IPv4 networks they are, as peers are compared.
        assert_eq!(parse_net("::ffff:10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_net("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
        assert!(TrustedProxies::new(vec![parse_net("::ffff:10.0.0.0/104").unwrap()], ProxyHeader::Auto)
            .trusts(ip("::ffff:10.1.2.3")));
        let refused = parse_net("proxy.example").unwrap_err();
        assert!(refused.contains("proxy.example"), "{refused}");
        assert!(parse_net("10.0.0.0/33").is_err());
    }
}
