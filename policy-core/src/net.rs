//! Client addresses and the CIDR ranges of `ip` rules.

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client address; an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is held as IPv4 so it
/// compares with IPv4 ranges.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ClientIp(IpAddr);

impl ClientIp {
    /// Parses an IPv4 or IPv6 address.
    ///
    /// # Errors
    /// [`InvalidIp`] when `text` is not an address.
    pub fn parse(text: &str) -> Result<ClientIp, InvalidIp> {
        text.parse::<IpAddr>()
            .map(ClientIp::new)
            .map_err(|_| InvalidIp)
    }

    /// Wraps an address, unmapping IPv4-mapped IPv6.
    pub fn new(addr: IpAddr) -> ClientIp {
        match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientIp(IpAddr::V4(v4)),
                None => ClientIp(IpAddr::V6(v6)),
            },
            v4 => ClientIp(v4),
        }
    }

    /// The address.
    pub fn addr(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The text was not an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidIp;

impl fmt::Display for InvalidIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid IP address")
    }
}

/// A CIDR range, IPv4 or IPv6.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IpRange {
    /// `network/prefix` over 32 bits.
    V4 {
        /// The network address.
        network: u32,
        /// Prefix length, 0–32.
        prefix: u8,
    },
    /// `network/prefix` over 128 bits.
    V6 {
        /// The network address.
        network: u128,
        /// Prefix length, 0–128.
        prefix: u8,
    },
}

impl IpRange {
    /// Parses `address/prefix` or a bare address (a single host). The address must be the
    /// network address: `10.1.2.3/8` is refused rather than guessed.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                let prefix: u8 = p
                    .parse()
                    .ok()
                    .filter(|_| !p.starts_with('+') && !p.is_empty())
                    .ok_or_else(|| format!("invalid IP range `{text}`: bad prefix length"))?;
                (a, Some(prefix))
            }
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid IP range `{text}`: bad address"))?;
        let range = match ClientIp::new(addr).addr() {
            IpAddr::V4(v4) => {
                // An IPv4-mapped IPv6 range keeps its meaning over the IPv4 space.
                let prefix = match (addr, prefix) {
                    (IpAddr::V6(_), Some(p)) if p >= 96 => Some(p - 96),
                    (IpAddr::V6(_), Some(_)) => {
                        return Err(format!(
                            "invalid IP range `{text}`: an IPv4-mapped range needs a prefix of at least 96"
                        ))
                    }
                    (_, p) => p,
                };
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return Err(format!("invalid IP range `{text}`: prefix longer than 32"));
                }
                IpRange::V4 {
                    network: u32::from(v4),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return Err(format!("invalid IP range `{text}`: prefix longer than 128"));
                }
                IpRange::V6 {
                    network: u128::from(v6),
                    prefix,
                }
            }
        };
        if !range.is_network_address() {
            return Err(format!(
                "invalid IP range `{text}`: host bits are set (the network is `{}`)",
                range.network_form()
            ));
        }
        Ok(range)
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: ClientIp) -> bool {
        match (*self, ip.addr()) {
            (IpRange::V4 { network, prefix }, IpAddr::V4(a)) => {
                (u32::from(a) & mask32(prefix)) == network
            }
            (IpRange::V6 { network, prefix }, IpAddr::V6(a)) => {
                (u128::from(a) & mask128(prefix)) == network
            }
            _ => false,
        }
    }

    fn is_network_address(&self) -> bool {
        match *self {
            IpRange::V4 { network, prefix } => network & !mask32(prefix) == 0,
            IpRange::V6 { network, prefix } => network & !mask128(prefix) == 0,
        }
    }

    fn network_form(&self) -> String {
        match *self {
            IpRange::V4 { network, prefix } => {
                format!("{}/{prefix}", Ipv4Addr::from(network & mask32(prefix)))
            }
            IpRange::V6 { network, prefix } => {
                format!("{}/{prefix}", Ipv6Addr::from(network & mask128(prefix)))
            }
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IpRange::V4 { network, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(network)),
            IpRange::V6 { network, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(network)),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> ClientIp {
        ClientIp::parse(s).unwrap()
    }

    #[test]
    fn v4_ranges() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains(ip("10.255.255.255")));
        assert!(!r.contains(ip("11.0.0.0")));
        assert!(r.contains(ip("::ffff:10.1.2.3")));
        assert!(!r.contains(ip("::1")));
        let all = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        let host = IpRange::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
    }

    #[test]
    fn v6_ranges() {
        let r = IpRange::parse("2001:db8::/32").unwrap();
        assert!(r.contains(ip("2001:db8:ffff::1")));
        assert!(!r.contains(ip("2001:db9::1")));
        assert!(!r.contains(ip("10.0.0.1")));
        let all = IpRange::parse("::/0").unwrap();
        assert!(all.contains(ip("2001:db8::1")));
        let mapped = IpRange::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("10.9.9.9")));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "10.1.2.3/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "::/129",
            "::ffff:10.0.0.0/64",
            "example.com",
            "",
            "10.0.0.0/8/8",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }
}
