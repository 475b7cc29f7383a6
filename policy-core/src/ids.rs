//! Identifiers and values that cross a trust boundary, normalised once at construction.

use alloc::boxed::Box;
use core::fmt;

/// An Entra group object id: a GUID, compared case-insensitively (stored as its 128 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u128);

impl GroupId {
    /// Parses the hyphenated GUID form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case).
    ///
    /// # Errors
    /// [`InvalidGuid`] when `text` is not a GUID in that form.
    pub fn parse(text: &str) -> Result<GroupId, InvalidGuid> {
        parse_guid(text).map(GroupId).ok_or(InvalidGuid)
    }

    /// The GUID's 128 bits, most significant first as written.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Builds a group id from its 128 bits.
    pub fn from_u128(bits: u128) -> GroupId {
        GroupId(bits)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (b >> 96) as u32,
            ((b >> 80) & 0xffff) as u16,
            ((b >> 64) & 0xffff) as u16,
            ((b >> 48) & 0xffff) as u16,
            (b & 0xffff_ffff_ffff) as u64
        )
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({self})")
    }
}

/// The text was not a GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidGuid;

impl fmt::Display for InvalidGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a GUID")
    }
}

/// Offsets of the 32 hex digits in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const GUID_DIGITS: [usize; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
    30, 31, 32, 33, 34, 35,
];

/// Hex digit values; 0xFF for anything else.
#[expect(
    clippy::indexing_slicing,
    reason = "a table built at compile time: an index out of range fails the build, not a request"
)]
const HEX: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i: u8 = 0;
    while i < 10 {
        table[(b'0' + i) as usize] = i;
        i += 1;
    }
    let mut i: u8 = 0;
    while i < 6 {
        table[(b'a' + i) as usize] = 10 + i;
        table[(b'A' + i) as usize] = 10 + i;
        i += 1;
    }
    table
};

/// Branch-free over the digits: group ids arrive by the hundred in every request.
fn parse_guid(text: &str) -> Option<u128> {
    let bytes: &[u8; 36] = text.as_bytes().try_into().ok()?;
    if bytes.get(8) != Some(&b'-')
        || bytes.get(13) != Some(&b'-')
        || bytes.get(18) != Some(&b'-')
        || bytes.get(23) != Some(&b'-')
    {
        return None;
    }
    let mut invalid = 0u8;
    let mut half = |digits: &[usize]| {
        let mut value: u64 = 0;
        for &at in digits {
            let byte = bytes.get(at).copied().unwrap_or(0);
            let digit = HEX.get(usize::from(byte)).copied().unwrap_or(0xFF);
            invalid |= digit;
            value = (value << 4) | u64::from(digit & 0x0F);
        }
        value
    };
    let (high, low) = GUID_DIGITS.split_at(16);
    let value = (u128::from(half(high)) << 64) | u128::from(half(low));
    (invalid & 0xF0 == 0).then_some(value)
}

/// An email address, ASCII-lowercased; its domain is the part after the last `@`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(Box<str>);

impl Email {
    /// Parses `local@domain`: both parts non-empty, no whitespace or control characters.
    ///
    /// # Errors
    /// [`InvalidEmail`] when `text` is not of that form.
    pub fn parse(text: &str) -> Result<Email, InvalidEmail> {
        let at = text.rfind('@').ok_or(InvalidEmail)?;
        let (local, domain) = (
            text.get(..at).unwrap_or(""),
            text.get(at + 1..).unwrap_or(""),
        );
        if local.is_empty()
            || domain.is_empty()
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidEmail);
        }
        Ok(Email(text.to_ascii_lowercase().into_boxed_str()))
    }

    /// The address, lowercased.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or("")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// The text was not an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidEmail;

impl fmt::Display for InvalidEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid email")
    }
}

/// A domain as written in an `email_domain` rule: lowercased, no `@`, no spaces.
pub(crate) fn parse_domain(text: &str) -> Result<Box<str>, &'static str> {
    if text.starts_with('@') {
        return Err("must be a bare domain like `example.com`, without `@`");
    }
    if text.is_empty()
        || text.contains('@')
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("invalid domain");
    }
    Ok(text.to_ascii_lowercase().into_boxed_str())
}

/// An ISO 3166-1 alpha-2 country code, uppercased.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses two ASCII letters, either case.
    ///
    /// # Errors
    /// [`InvalidCountry`] for anything else.
    pub fn parse(text: &str) -> Result<Country, InvalidCountry> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountry),
        }
    }

    /// The code, uppercase.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

/// The text was not a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCountry;

impl fmt::Display for InvalidCountry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid country code")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn guid_round_trips_and_ignores_case() {
        let a = GroupId::parse("5B3E8C1A-0D6F-4A39-9C55-2F7B1E0A9D41").unwrap();
        let b = GroupId::parse("5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41");
    }

    #[test]
    fn guid_rejects_other_shapes() {
        for bad in [
            "",
            "5b3e8c1a0d6f4a399c552f7b1e0a9d41",
            "{5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41}",
            "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d4g",
            "5b3e8c1a-0d6f-4a39-9c55_2f7b1e0a9d41",
            "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d411",
            "+b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41",
            "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9dé",
        ] {
            assert!(GroupId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_domain_is_after_last_at() {
        let e = Email::parse("A@B@Example.COM").unwrap();
        assert_eq!(e.domain(), "example.com");
        assert!(Email::parse("@example.com").is_err());
        assert!(Email::parse("ada@").is_err());
        assert!(Email::parse("ada example@x.com").is_err());
        assert!(Email::parse("ada").is_err());
    }

    #[test]
    fn country_codes() {
        assert_eq!(Country::parse("pt").unwrap().as_str(), "PT");
        assert!(Country::parse("PRT").is_err());
        assert!(Country::parse("P1").is_err());
        assert!(Country::parse("").is_err());
    }
}
