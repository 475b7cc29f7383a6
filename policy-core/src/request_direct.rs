//! The request's JSON read straight into a [`Request`], without the intermediate tree: the
//! fast path of [`Request::from_json`].
//!
//! Design choice: this reader accepts only what the tree reader ([`crate::request`]) accepts,
//! and gives up (`None`) at the first thing it is not sure of — an unknown or repeated key, a
//! string with escapes or control characters (it borrows every string from the text), a value
//! of another type, a value the id types refuse, or `claims` (rare from gateways; leaving them
//! to the tree reader keeps this reader small). The caller then reads the text with the tree
//! reader, which either accepts it or names every problem. So the errors are the tree
//! reader's, and property tests compare the two readers on generated requests and on every
//! vector (`tests/request_readers.rs`). It is a hand-written scanner rather than serde: in Wasm
//! it is both faster and a fraction of the code serde's visitors would add to the module.

use alloc::boxed::Box;

use crate::ids::{Country, Email, GroupId};
use crate::net::ClientIp;
use crate::request::{Identity, Mtls, Request, ServiceToken};
use crate::route::Target;

/// `text` as a request, or `None` when the tree reader has to look at it.
pub(crate) fn read(text: &str) -> Option<Request> {
    let mut scan = Scan { text, at: 0 };
    let (mut app, mut signed_in, mut service_token, mut ip, mut country, mut mtls) =
        (None, None, None, None, None, None);
    scan.object(
        &["app", "identity", "service_token", "ip", "country", "mtls"],
        |scan, key| {
            if scan.null() {
                return Some(());
            }
            match key {
                0 => app = Some(Target::parse(scan.string()?).ok()?),
                1 => signed_in = Some(identity(scan)?),
                2 => {
                    let mut id = None;
                    scan.object(&["token_id"], |scan, _| {
                        if !scan.null() {
                            id = Some(nonempty(scan.string()?)?);
                        }
                        Some(())
                    })?;
                    service_token = Some(ServiceToken { token_id: id? });
                }
                3 => ip = Some(ClientIp::parse(scan.string()?).ok()?),
                4 => country = Some(Country::parse(scan.string()?).ok()?),
                _ => {
                    let mut common_name = None;
                    scan.object(&["common_name"], |scan, _| {
                        if !scan.null() {
                            common_name = Some(Box::from(scan.string()?));
                        }
                        Some(())
                    })?;
                    mtls = Some(Mtls { common_name });
                }
            }
            Some(())
        },
    )?;
    scan.skip_whitespace();
    if scan.at != text.len() {
        return None;
    }
    Some(Request {
        target: app?,
        identity: signed_in,
        service_token,
        ip,
        country,
        mtls,
    })
}

fn identity(scan: &mut Scan<'_>) -> Option<Identity> {
    let mut identity = Identity::default();
    let keys = [
        "email",
        "user_id",
        "tenant_id",
        "idp_id",
        "groups",
        "amr",
        "acrs",
    ];
    scan.object(&keys, |scan, key| {
        if scan.null() {
            return Some(());
        }
        match key {
            0 => identity.email = Some(Email::parse(scan.string()?).ok()?),
            1 => identity.user_id = Some(nonempty(scan.string()?)?),
            2 => identity.tenant_id = Some(nonempty(scan.string()?)?),
            3 => identity.idp_id = Some(nonempty(scan.string()?)?),
            4 => scan.array(|scan| {
                identity.groups.push(scan.group_id()?);
                Some(())
            })?,
            5 => scan.array(|scan| {
                identity.amr.push(Box::from(scan.string()?));
                Some(())
            })?,
            _ => scan.array(|scan| {
                identity.acrs.push(Box::from(scan.string()?));
                Some(())
            })?,
        }
        Some(())
    })?;
    Some(identity)
}

/// A non-empty string (as the tree reader's `nonempty`: not only whitespace).
fn nonempty(s: &str) -> Option<Box<str>> {
    (!s.trim().is_empty()).then(|| Box::from(s))
}

/// A position in the text.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while matches!(bytes.get(self.at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> bool {
        let null = self.peek() == Some(b'n')
            && self.text.as_bytes().get(self.at..self.at + 4) == Some(b"null");
        if null {
            self.at += 4;
        }
        null
    }

    /// A string without escapes, borrowed from the text.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let value = self.text.get(start..self.at)?;
        self.at += 1;
        Some(value)
    }

    /// A string holding a group id. The id's 36 characters are taken as they stand and the
    /// closing quote must follow them: `GroupId::parse` accepts only hex digits and hyphens, so
    /// no quote, escape or control character can hide among them. The per-byte scan of
    /// [`Scan::string`] is skipped for what is most of a request's bytes.
    fn group_id(&mut self) -> Option<GroupId> {
        self.expect(b'"')?;
        let id = GroupId::parse(self.text.get(self.at..self.at + 36)?).ok()?;
        if self.text.as_bytes().get(self.at + 36) != Some(&b'"') {
            return None;
        }
        self.at += 37;
        Some(id)
    }

    /// An object whose keys are among `keys`, each at most once; `field` reads the value of
    /// key number `i`.
    fn object(
        &mut self,
        keys: &[&str],
        mut field: impl FnMut(&mut Scan<'a>, usize) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        let mut seen = 0u32;
        loop {
            let key = self.string()?;
            let i = keys.iter().position(|k| *k == key)?;
            let bit = 1u32 << i;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.expect(b':')?;
            field(self, i)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array; `item` reads each element.
    fn array(&mut self, mut item: impl FnMut(&mut Scan<'a>) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gateway_request_without_the_tree() {
        let text = r#"{"app": "portal.example.com/dashboard", "ip": "198.51.100.7", "country": "pt",
            "identity": {"email": "Ada@Example.com", "idp_id": "entra", "user_id": "u",
                "groups": ["7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"], "amr": ["pwd", "mfa"],
                "acrs": ["c1"]},
            "service_token": {"token_id": "ci"}, "mtls": {"common_name": "cn"}}"#;
        let request = read(text).expect("the direct reader reads it");
        assert_eq!(Ok(&request), Request::from_json_tree(text).as_ref());
        let identity = request.identity.as_ref().unwrap();
        assert_eq!(identity.groups.len(), 1);
        assert_eq!(identity.acrs.len(), 1);
    }

    #[test]
    fn gives_up_on_what_only_the_tree_reader_may_judge() {
        for text in [
            r#"["portal.example.com"]"#,
            r#"{"app": "a.example.com", "identity": ["x"]}"#,
            r#"{"app": "a.example.com", "app": "a.example.com"}"#,
            r#"{"app": "a.example.com", "other": 1}"#,
            r#"{"app": "a.exampl\u0065.com"}"#,
            r#"{"app": "a.example.com", "identity": {"claims": {"r": "a"}}}"#,
            r#"{"app": "a.example.com", "identity": {"groups": ["not-a-guid"]}}"#,
            r#"{"app": "a.example.com", "identity": {"idp_id": " "}}"#,
            r#"{"identity": {}}"#,
        ] {
            assert!(read(text).is_none(), "{text}");
        }
    }
}
