//! IPv4 and IPv6 networks, compared as address ranges rather than as text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network with its host bits cleared, so `192.0.2.7/24` equals `192.0.2.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    v6: bool,
    network: u128,
    prefix: u8,
}

/// A CIDR that does not parse; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv4 or IPv6 CIDR (e.g. 192.0.2.0/24 or 2001:db8::/32)")]
pub struct CidrError(pub String);

impl Cidr {
    /// Parses `address/prefix`; a bare address is a single host (`/32` or `/128`), as in `aws:SourceIp`.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let err = || CidrError(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let (v6, bits, max) = match addr.parse::<IpAddr>().map_err(|_| err())? {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (true, u128::from(a), 128),
        };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| err())?,
            Some(_) => return Err(err()),
            None => max,
        };
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr { v6, network: bits & mask(prefix, max), prefix })
    }

    /// Whether every address of `other` is in `self`.
    #[must_use]
    pub fn contains(&self, other: &Cidr) -> bool {
        let max = if self.v6 { 128 } else { 32 };
        self.v6 == other.v6 && self.prefix <= other.prefix && other.network & mask(self.prefix, max) == self.network
    }
}

/// The network mask of `prefix` bits in an address of `max` bits, held in the low bits of a u128.
fn mask(prefix: u8, max: u8) -> u128 {
    let all = if max == 128 { u128::MAX } else { (1u128 << max) - 1 };
    if prefix == 0 { 0 } else { (all << (max - prefix)) & all }
}

impl std::str::FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Cidr::parse(text)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", Ipv6Addr::from(self.network), self.prefix)
        } else {
            // The network of an IPv4 CIDR fits in 32 bits by construction.
            let v4 = u32::try_from(self.network).unwrap_or_default();
            write!(f, "{}/{}", Ipv4Addr::from(v4), self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_normalise_host_bits_and_nest() {
        assert_eq!(Cidr::parse("192.0.2.77/24").unwrap(), Cidr::parse("192.0.2.0/24").unwrap());
        assert_eq!(Cidr::parse("192.0.2.77/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(Cidr::parse("2001:db8:1234:ff::1/48").unwrap().to_string(), "2001:db8:1234::/48");
        assert_eq!(Cidr::parse("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::parse("::/0").unwrap().to_string(), "::/0");
        let wide = Cidr::parse("10.0.0.0/8").unwrap();
        let narrow = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(wide.contains(&narrow) && !narrow.contains(&wide) && wide.contains(&wide));
        assert!(!Cidr::parse("::/0").unwrap().contains(&narrow), "families never nest");
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/+8", "10.0.0/8", "example.com/8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
