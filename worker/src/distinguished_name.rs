//! The common name (`CN`) of an mTLS client certificate's subject, read from the distinguished
//! name Cloudflare gives (`request.cf.tlsClientAuth.certSubjectDN`, the RFC 2253/4514 string
//! form: `CN=James Royal,OU=Access Admins,O=Access,L=Austin,ST=Texas,C=US`, some versions with
//! a space after each comma).
//!
//! The subject's other attributes (`O`, `OU`, …) may hold text the certificate's requester
//! chose, so the DN is parsed, not split: RFC 4514 escapes (`\,` `\+` `\"` `\\` `\;` `\<`
//! `\>` `\=` `\#` `\ ` and `\XX` hex pairs, decoded as UTF-8), multi-valued RDNs (`+`), quoted
//! values (`"…"`, RFC 2253 §4), optional spaces around `,`, `+` and `=`, attribute types by
//! name (`CN`, `commonName`, any case) or OID (`2.5.4.3`, `OID.2.5.4.3`). A `CN` hidden in
//! another attribute's escaped or quoted value is never read as the CN. Anything that does not
//! parse, a `CN` given as `#` hex (BER), an empty one, one with control characters, or a
//! subject with more than one `CN` yields no common name: a `common_name` rule then matches
//! nothing (fail closed for `allow`; a `deny` rule on a common name does not see such a
//! certificate either, which is why this reading is strict about what it accepts).

/// Longer DNs are not read (Cloudflare's are a few hundred bytes).
const MAX_DN_BYTES: usize = 8 * 1024;

/// DNs with more attributes are not read.
const MAX_ATTRIBUTES: usize = 64;

/// The one `CN` of `dn`, unescaped; `None` when `dn` does not parse or has no `CN` (or more
/// than one, or an empty, `#`-hex or control-character one).
pub fn common_name(dn: &str) -> Option<String> {
    let attributes = parse(dn).ok()?;
    let mut names = attributes
        .into_iter()
        .filter(|a| a.is_common_name)
        .map(|a| a.value);
    let name = names.next()??;
    if names.next().is_some() || name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    Some(name)
}

/// Why a DN does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DnError {
    /// Longer than [`MAX_DN_BYTES`] or more than [`MAX_ATTRIBUTES`] attributes.
    TooLarge,
    /// An attribute type that is neither a name nor a dotted OID.
    BadType,
    /// Something other than `=` after an attribute type.
    MissingEquals,
    /// A `\` not followed by a special character or two hex digits.
    BadEscape,
    /// `"`, `;`, `<`, `>` or NUL unescaped outside quotes.
    Unescaped,
    /// A quoted value without its closing quote, or text after it.
    BadQuote,
    /// A `#` value that is not hex pairs.
    BadHex,
    /// A value that is not UTF-8 once unescaped.
    NotUtf8,
    /// A `,` or `+` with no attribute after it.
    Trailing,
}

/// One `type=value` of the DN (which RDN it belongs to does not matter here).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attribute {
    is_common_name: bool,
    /// `None` for a `#` hex (BER) value.
    value: Option<String>,
}

fn parse(dn: &str) -> Result<Vec<Attribute>, DnError> {
    if dn.len() > MAX_DN_BYTES {
        return Err(DnError::TooLarge);
    }
    let mut p = Cursor {
        bytes: dn.as_bytes(),
        pos: 0,
    };
    let mut attributes = Vec::new();
    p.skip_spaces();
    if p.peek().is_none() {
        return Ok(attributes);
    }
    loop {
        if attributes.len() == MAX_ATTRIBUTES {
            return Err(DnError::TooLarge);
        }
        let is_common_name = p.attribute_type()?;
        p.skip_spaces();
        if p.next() != Some(b'=') {
            return Err(DnError::MissingEquals);
        }
        p.skip_spaces();
        let value = p.attribute_value()?;
        attributes.push(Attribute {
            is_common_name,
            value,
        });
        p.skip_spaces();
        match p.next() {
            None => return Ok(attributes),
            Some(b',' | b'+') => {
                p.skip_spaces();
                if p.peek().is_none() {
                    return Err(DnError::Trailing);
                }
            }
            Some(_) => return Err(DnError::Unescaped),
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// An attribute type (RFC 4514 `descr` or `numericoid`, RFC 1779's `OID.` prefix
    /// allowed); whether it names the common name.
    fn attribute_type(&mut self) -> Result<bool, DnError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            self.pos += 1;
        }
        let text = self
            .bytes
            .get(start..self.pos)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or_default();
        let oid = text
            .get(..4)
            .filter(|prefix| prefix.eq_ignore_ascii_case("oid."))
            .and_then(|_| text.get(4..));
        if let Some(oid) = oid.or_else(|| {
            text.starts_with(|c: char| c.is_ascii_digit())
                .then_some(text)
        }) {
            if !is_numeric_oid(oid) {
                return Err(DnError::BadType);
            }
            return Ok(oid == "2.5.4.3");
        }
        let descr = text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !descr {
            return Err(DnError::BadType);
        }
        Ok(text.eq_ignore_ascii_case("cn") || text.eq_ignore_ascii_case("commonName"))
    }

    /// A value: `#` hex (`None`), a quoted string, or an RFC 4514 string, unescaped; it ends
    /// at an unescaped `,` or `+` or the end.
    fn attribute_value(&mut self) -> Result<Option<String>, DnError> {
        match self.peek() {
            Some(b'#') => {
                self.pos += 1;
                self.hex_value()?;
                Ok(None)
            }
            Some(b'"') => {
                self.pos += 1;
                self.quoted_value().map(Some)
            }
            _ => self.string_value().map(Some),
        }
    }

    fn hex_value(&mut self) -> Result<(), DnError> {
        let mut digits = 0_usize;
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            self.pos += 1;
            digits += 1;
        }
        if digits == 0 || digits % 2 == 1 {
            return Err(DnError::BadHex);
        }
        Ok(())
    }

    fn quoted_value(&mut self) -> Result<String, DnError> {
        let mut value = Vec::new();
        loop {
            match self.next() {
                None | Some(0) => return Err(DnError::BadQuote),
                Some(b'"') => break,
                Some(b'\\') => value.push(self.escaped()?),
                Some(byte) => value.push(byte),
            }
        }
        self.skip_spaces();
        if !matches!(self.peek(), None | Some(b',' | b'+')) {
            return Err(DnError::BadQuote);
        }
        String::from_utf8(value).map_err(|_| DnError::NotUtf8)
    }

    fn string_value(&mut self) -> Result<String, DnError> {
        let mut value = Vec::new();
        // The length without unescaped trailing spaces, which are not part of the value.
        let mut significant = 0;
        loop {
            match self.peek() {
                None | Some(b',' | b'+') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    value.push(self.escaped()?);
                    significant = value.len();
                }
                Some(b'"' | b';' | b'<' | b'>' | 0) => return Err(DnError::Unescaped),
                Some(byte) => {
                    self.pos += 1;
                    value.push(byte);
                    if byte != b' ' {
                        significant = value.len();
                    }
                }
            }
        }
        value.truncate(significant);
        String::from_utf8(value).map_err(|_| DnError::NotUtf8)
    }

    /// The byte after a `\`: a special character as itself, or two hex digits.
    fn escaped(&mut self) -> Result<u8, DnError> {
        match self.next() {
            Some(byte @ (b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\')) => {
                Ok(byte)
            }
            Some(high) => {
                let low = self.next().ok_or(DnError::BadEscape)?;
                match (hex_digit(high), hex_digit(low)) {
                    (Some(high), Some(low)) => Ok((high << 4) | low),
                    _ => Err(DnError::BadEscape),
                }
            }
            None => Err(DnError::BadEscape),
        }
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `number *( "." number )`, numbers without leading zeros.
fn is_numeric_oid(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cn(dn: &str) -> Option<String> {
        common_name(dn)
    }

    #[test]
    fn reads_the_common_name_of_cloudflare_shaped_dns() {
        for (dn, expected) in [
            ("CN=client.example.com,O=Example", "client.example.com"),
            (
                "CN=James Royal,OU=Access Admins,O=Access,L=Austin,ST=Texas,C=US",
                "James Royal",
            ),
            (
                "CN=cloudflareaccess.com, C=US, ST=Texas, L=Austin, O=Cloudflare",
                "cloudflareaccess.com",
            ),
            ("C=US,O=Example,CN=svc.internal", "svc.internal"),
            (
                "CN=e367826f93b8d71185e03fe518aff3b4.access",
                "e367826f93b8d71185e03fe518aff3b4.access",
            ),
        ] {
            assert_eq!(cn(dn).as_deref(), Some(expected), "{dn}");
        }
    }

    #[test]
    fn honours_rfc_4514_escapes() {
        for (dn, expected) in [
            (r"CN=Royal\, James,O=Access", "Royal, James"),
            (r"CN=a\+b,O=x", "a+b"),
            (r#"CN=\"quoted\",O=x"#, "\"quoted\""),
            (r"CN=back\\slash", r"back\slash"),
            (r"CN=semi\;colon", "semi;colon"),
            (r"CN=\<angle\>", "<angle>"),
            (r"CN=equals\=sign", "equals=sign"),
            (r"CN=\#hash", "#hash"),
            (r"CN=\ lead", " lead"),
            (r"CN=trail\ ,O=x", "trail "),
            (r"CN=trail \ ", "trail  "),
            (r"CN=caf\C3\A9", "café"),
            (r"CN=caf\c3\a9", "café"),
            (r"CN=x\2Cy", "x,y"),
            ("CN=café", "café"),
            ("CN=a=b", "a=b"),
        ] {
            assert_eq!(cn(dn).as_deref(), Some(expected), "{dn}");
        }
    }

    #[test]
    fn reads_multi_valued_rdns_quotes_types_and_spaces() {
        for (dn, expected) in [
            ("CN=svc+UID=42,O=Example", "svc"),
            ("UID=42+CN=svc,O=Example", "svc"),
            ("UID=42 + CN=svc , O=Example", "svc"),
            (r#"CN="Royal, James",O=Access"#, "Royal, James"),
            (r#"CN="a+b;c<d>e=f#g",O=x"#, "a+b;c<d>e=f#g"),
            (r#"CN="say \"hi\"",O=x"#, "say \"hi\""),
            (r#"CN = "spaced" , O = x"#, "spaced"),
            ("cn=svc", "svc"),
            ("commonName=svc", "svc"),
            ("COMMONNAME=svc", "svc"),
            ("2.5.4.3=svc", "svc"),
            ("OID.2.5.4.3=svc,O=x", "svc"),
            ("oid.2.5.4.3=svc", "svc"),
            ("CN = svc , O = x", "svc"),
            ("  CN=svc  ", "svc"),
            ("O=#04024869,CN=svc", "svc"),
        ] {
            assert_eq!(cn(dn).as_deref(), Some(expected), "{dn}");
        }
    }

    #[test]
    fn a_cn_smuggled_in_another_value_is_not_the_cn() {
        // Each of these has its real CN (if any) elsewhere; the `CN=admin` text sits inside
        // an escaped or quoted value of another attribute.
        for (dn, expected) in [
            (r"OU=x\,CN=admin,CN=alice", Some("alice")),
            (r"O=Evil\, CN=admin", None),
            (r"O=Evil\,CN=admin,OU=y", None),
            (r"OU=a\+CN=admin", None),
            (r"OU=a\+CN=admin,CN=alice", Some("alice")),
            (r#"O="x,CN=admin""#, None),
            (r#"O="x, CN=admin",CN=alice"#, Some("alice")),
            (r"O=x\2CCN=admin", None),
            (r"O=x\2C CN=admin,CN=alice", Some("alice")),
            (r"O=x\2BCN=admin", None),
            (r"CN=alice\,CN=admin", Some("alice,CN=admin")),
            (r"CN=alice\+CN=admin", Some("alice+CN=admin")),
            ("O=CN\\=admin", None),
            ("OU=CN=admin", None),
            ("OU=CN=admin,CN=alice", Some("alice")),
        ] {
            assert_eq!(cn(dn).as_deref(), expected, "{dn}");
        }
    }

    #[test]
    fn ambiguous_empty_and_odd_common_names_are_none() {
        for dn in [
            "",
            "   ",
            "O=Example,C=US",
            "CN=a,CN=b",
            "CN=a+CN=b",
            "CN=a,commonName=b",
            "CN=a,2.5.4.3=a",
            "CN=",
            "CN=  ",
            "CN=\"\"",
            "CN=#04024869",
            "2.5.4.3=#0C03737663",
            r"CN=a\00b",
            r"CN=a\0Ab",
            "CN=a\tb",
            r"CN=\C3",
            r"CN=\FF\FE",
        ] {
            assert_eq!(cn(dn), None, "{dn:?}");
        }
    }

    #[test]
    fn malformed_dns_are_refused() {
        let long = format!("CN={}", "a".repeat(MAX_DN_BYTES));
        let many = vec!["O=x"; MAX_ATTRIBUTES + 1].join(",") + ",CN=svc";
        for dn in [
            "CN=a,",
            "CN=a+",
            "CN=a, ",
            ",CN=a",
            "+CN=a",
            "CN",
            "CN a",
            "=a",
            "CN==a,O=x\\",
            "CN=a\\",
            "CN=a\\z",
            "CN=a\\zz",
            "CN=a\\4",
            "CN=a\\4G",
            "CN=\"unterminated",
            "CN=\"a\"b",
            "CN=\"a\" b",
            "CN=a\"b",
            "CN=a;O=b",
            "CN=a<b",
            "CN=a>b",
            "CN=a\u{0}b",
            "CN=\"a\u{0}b\"",
            "1CN=a",
            "C N=a",
            "-CN=a",
            "CN_X=a",
            "02.5.4.3=a",
            "2..5=a",
            "2.5.4.3.=a",
            "OID.=a",
            "OID.CN=a",
            "CN=a,O=#",
            "CN=a,O=#zz",
            "CN=a,O=#123",
            "CN=a,O=#12 34",
            "ÇN=a",
            long.as_str(),
            many.as_str(),
        ] {
            assert!(parse(dn).is_err(), "{dn:?} parsed");
            assert_eq!(cn(dn), None, "{dn:?}");
        }
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(parse("CN=a;b"), Err(DnError::Unescaped));
        assert_eq!(parse("CN=a\\q"), Err(DnError::BadEscape));
        assert_eq!(parse("CN=\"a"), Err(DnError::BadQuote));
        assert_eq!(parse("CN=#1"), Err(DnError::BadHex));
        assert_eq!(parse("1x=a"), Err(DnError::BadType));
        assert_eq!(parse("CN a"), Err(DnError::MissingEquals));
        assert_eq!(parse("CN=\\C3\\28"), Err(DnError::NotUtf8));
        assert_eq!(parse("CN=a,"), Err(DnError::Trailing));
        assert_eq!(parse(&"O=x,".repeat(3000)), Err(DnError::TooLarge));
    }
}
