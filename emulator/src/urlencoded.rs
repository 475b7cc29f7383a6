//! `application/x-www-form-urlencoded` and query strings, both ways: what the emulator's
//! authorize and token endpoints read, and what tests send them.

/// Percent-encodes `text` for a query string or form body: every byte but the RFC 3986
/// unreserved characters (`A–Z a–z 0–9 - . _ ~`) becomes `%XX`.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `name=value&…`, each part [`encode`]d.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes one component: `+` is a space, `%XX` a byte. `None` when a `%` is not followed by
/// two hex digits or the bytes are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            b'%' => {
                let high = bytes.get(index + 1).copied().and_then(hex_value)?;
                let low = bytes.get(index + 2).copied().and_then(hex_value)?;
                decoded.push(high << 4 | low);
                index += 3;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The pairs of a query string or form body, in order (repeated names kept; a part without
/// `=` has an empty value; empty parts are skipped). `None` when a part does not decode.
pub fn decode_pairs(text: &str) -> Option<Vec<(String, String)>> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The query of `url` (after `?`, before `#`), decoded; `None` when it does not decode.
pub fn query_pairs(url: &str) -> Option<Vec<(String, String)>> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    decode_pairs(query)
}

/// The first value of `name` among `pairs`.
pub fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value.as_str())
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_anything() {
        let text = "a b&c=d/é?#%+~._-";
        assert_eq!(encode(text), "a%20b%26c%3Dd%2F%C3%A9%3F%23%25%2B~._-");
        assert_eq!(decode(&encode(text)).unwrap(), text);
    }

    #[test]
    fn forms_decode_plus_as_space_and_keep_repeats() {
        let pairs = decode_pairs("a=1+2&b=%41&a=3&flag&&c=").unwrap();
        let expected = [
            ("a", "1 2"),
            ("b", "A"),
            ("a", "3"),
            ("flag", ""),
            ("c", ""),
        ];
        assert_eq!(pairs.len(), expected.len());
        for ((name, value), (want_name, want_value)) in pairs.iter().zip(expected) {
            assert_eq!((name.as_str(), value.as_str()), (want_name, want_value));
        }
        assert_eq!(value(&pairs, "a"), Some("1 2"));
    }

    #[test]
    fn bad_escapes_do_not_decode() {
        assert!(decode("%4").is_none());
        assert!(decode("%zz").is_none());
        assert!(decode("%FF").is_none());
    }

    #[test]
    fn queries_come_from_urls() {
        let pairs = query_pairs("http://h/p?code=x%2By&state=s#frag").unwrap();
        assert_eq!(value(&pairs, "code"), Some("x+y"));
        assert_eq!(value(&pairs, "state"), Some("s"));
        assert!(query_pairs("http://h/p").unwrap().is_empty());
    }
}
