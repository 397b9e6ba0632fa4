//! Who is on the other end of a request: its IP address and its user agent, as login throttling and the
//! login history need them. The IP is the TCP peer's, unless the peer is a configured trusted proxy: then
//! it is the rightmost `X-Forwarded-For` address that is not itself a trusted proxy. `X-Forwarded-For`
//! from anyone else is ignored (a client could name any address there).

use crate::AppState;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header::USER_AGENT, request::Parts, HeaderMap},
};
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.trusted_proxies).to_string());
        let user_agent = parts.headers.get(USER_AGENT).and_then(|value| value.to_str().ok()).map(str::to_owned);
        Ok(Client { ip, user_agent })
    }
}

pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.flat_map(|value| value.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|hop| !trusted.contains(hop)).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().expect("header"));
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_when_a_trusted_proxy_sent_them() {
        let (client, proxy, stranger): (IpAddr, IpAddr, IpAddr) =
            ("203.0.113.7".parse().unwrap(), "10.0.0.2".parse().unwrap(), "198.51.100.9".parse().unwrap());
        let spoofed = headers("1.2.3.4");
        assert_eq!(client_ip(stranger, &spoofed, &[proxy]), stranger, "an untrusted peer cannot name an address");
        let chain = headers(&format!("1.2.3.4, {client}"));
        assert_eq!(client_ip(proxy, &chain, &[proxy]), client, "the rightmost hop the proxy saw");
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
