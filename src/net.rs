//! `TrustedProxies`: the networks of `server.trusted_proxies`, parsed once; config checks the list, the client-address rules use it.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// The networks whose forwarding headers are believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Parse CIDRs (`10.0.0.0/8`, `fd00::/8`) and bare addresses (one host); `Err((index, why))`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, String)> {
        let nets = entries
            .iter()
            .enumerate()
            .map(|(i, e)| parse_net(e.as_ref()).map_err(|why| (i, why)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(nets.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Is `ip` (canonical form) inside one of the networks?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => s
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("{s:?} is not a CIDR (10.0.0.0/8, fd00::/8) or an address"))?,
    };
    // `::ffff:10.0.0.0/104` means 10.0.0.0/8: addresses are compared in canonical form.
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.network().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            if let Ok(v4) = ipnet::Ipv4Net::new(v4, len) {
                return Ok(IpNet::V4(v4));
            }
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_parse() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let t =
            TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1", "fd00::/8", "2001:db8::1", " 172.16.5.4/12 "])
                .unwrap();
        for yes in ["10.255.0.1", "192.0.2.1", "fd12::1", "2001:db8::1", "172.31.0.1"] {
            assert!(t.contains(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "192.0.2.2", "fe00::1", "2001:db8::2", "172.32.0.1"] {
            assert!(!t.contains(ip(no)), "{no}");
        }
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "10.0.0.0/33"]).is_err_and(|(i, _)| i == 1));
        assert!(TrustedProxies::parse(&["localhost"]).is_err());
        assert!(TrustedProxies::parse::<&str>(&[]).unwrap().is_empty());
    }
}
