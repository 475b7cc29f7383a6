//! The browserless sign-in behind [`super::Emulator::sign_in`]: fetch the sign-in page, read
//! its form (just enough HTML scanning for the emulator's own pages), submit it with a user's
//! button, and return where the emulator redirects.

use super::EmulatorError;
use crate::client::{HttpClient, HttpResponse};
use crate::urlencoded;

/// [`super::Emulator::sign_in`]: the page, its form with the user's button, the redirect.
pub(super) fn sign_in(authorize_url: &str, user: &str) -> Result<String, EmulatorError> {
    sign_in_with_session(authorize_url, user).map(|(location, _)| location)
}

/// [`super::Emulator::sign_in_with_session`]: [`sign_in`], and the `name=value` of the
/// session cookie the emulator sets with the redirect.
pub(super) fn sign_in_with_session(
    authorize_url: &str,
    user: &str,
) -> Result<(String, Option<String>), EmulatorError> {
    let client = HttpClient::new();
    let page = client.get(authorize_url).map_err(EmulatorError::Http)?;
    if page.status != 200 {
        return Err(EmulatorError::SignIn(format!(
            "GET {authorize_url} answered {}: {}",
            page.status,
            visible_text(&page.body)
        )));
    }
    let tags = start_tags(&page.body);
    let action = tags
        .iter()
        .find(|tag| tag.name == "form")
        .and_then(|form| form.attribute("action"))
        .ok_or_else(|| EmulatorError::SignIn(format!("no sign-in form at {authorize_url}")))?;
    let mut fields: Vec<(&str, &str)> = tags
        .iter()
        .filter(|tag| tag.name == "input" && tag.attribute("type") == Some("hidden"))
        .filter_map(|tag| Some((tag.attribute("name")?, tag.attribute("value").unwrap_or(""))))
        .collect();
    let id = format!("user-{user}");
    let button = tags
        .iter()
        .find(|tag| tag.name == "button" && tag.attribute("id") == Some(id.as_str()))
        .ok_or_else(|| EmulatorError::UnknownUser(user.to_owned()))?;
    fields.push((
        button.attribute("name").unwrap_or("user"),
        button.attribute("value").unwrap_or(user),
    ));
    let target = resolve(authorize_url, action)
        .ok_or_else(|| EmulatorError::SignIn(format!("form action `{action}` is not a URL")))?;
    let body = urlencoded::encode_pairs(&fields);
    let answer = client
        .request(
            "POST",
            &target,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .map_err(EmulatorError::Http)?;
    let session = answer
        .header("set-cookie")
        .and_then(|cookie| cookie.split(';').next())
        .map(str::to_owned);
    match (answer.status, answer.header("location")) {
        (302 | 303, Some(location)) => Ok((location.to_owned(), session)),
        _ => Err(unexpected(&target, &answer)),
    }
}

fn unexpected(url: &str, answer: &HttpResponse) -> EmulatorError {
    EmulatorError::SignIn(format!(
        "POST {url} answered {} without a redirect: {}",
        answer.status,
        visible_text(&answer.body)
    ))
}

/// `action` made absolute against the page's URL (absolute URLs and absolute paths only).
fn resolve(page_url: &str, action: &str) -> Option<String> {
    if action.starts_with("http://") || action.starts_with("https://") {
        return Some(action.to_owned());
    }
    if !action.starts_with('/') {
        return None;
    }
    let (scheme, rest) = page_url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}{action}"))
}

/// The text of an HTML page, tags dropped and whitespace collapsed, at most 400 characters.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let collapsed = unescape(&collapsed);
    collapsed.chars().take(400).collect()
}

/// A start tag: its lowercase name and attributes (values unescaped).
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl Tag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every start tag of `html`, enough for the emulator's own pages.
fn start_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = rest.get(open + 1..).unwrap_or_default();
        let name_end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let name = rest
            .get(..name_end)
            .unwrap_or_default()
            .to_ascii_lowercase();
        rest = rest.get(name_end..).unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let mut attributes = Vec::new();
        loop {
            rest = rest.trim_start();
            match rest.chars().next() {
                None => break,
                Some('>') => {
                    rest = rest.get(1..).unwrap_or_default();
                    break;
                }
                Some('/') => {
                    rest = rest.get(1..).unwrap_or_default();
                    continue;
                }
                Some(_) => {}
            }
            let attribute_end = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let attribute = rest
                .get(..attribute_end)
                .unwrap_or_default()
                .to_ascii_lowercase();
            rest = rest.get(attribute_end..).unwrap_or_default().trim_start();
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                match after.chars().next() {
                    Some(quote @ ('"' | '\'')) => {
                        let inner = after.get(1..).unwrap_or_default();
                        let close = inner.find(quote).unwrap_or(inner.len());
                        value = unescape(inner.get(..close).unwrap_or_default());
                        rest = inner.get(close + 1..).unwrap_or_default();
                    }
                    _ => {
                        let end = after
                            .find(|c: char| c.is_whitespace() || c == '>')
                            .unwrap_or(after.len());
                        value = unescape(after.get(..end).unwrap_or_default());
                        rest = after.get(end..).unwrap_or_default();
                    }
                }
            }
            if attribute.is_empty() {
                // Not an attribute: skip a character so the scan moves on.
                rest = rest.get(1..).unwrap_or_default();
            } else {
                attributes.push((attribute, value));
            }
        }
        tags.push(Tag { name, attributes });
    }
    tags
}

/// The character references [`escape`] writes, and `&#NN;`/`&#xNN;`, back to text.
fn unescape(text: &str) -> String {
    let mut unescaped = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        unescaped.push_str(rest.get(..amp).unwrap_or_default());
        rest = rest.get(amp..).unwrap_or_default();
        let reference = rest
            .find(';')
            .and_then(|semicolon| rest.get(1..semicolon))
            .unwrap_or_default();
        let character = match reference {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            numeric => numeric.strip_prefix('#').and_then(|number| {
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match character {
            Some(character) => {
                unescaped.push(character);
                rest = rest.get(reference.len() + 2..).unwrap_or_default();
            }
            None => {
                unescaped.push('&');
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
    unescaped.push_str(rest);
    unescaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let text = "a&b<c>\"d\"'e' &amp; é";
        assert_eq!(unescape(&super::super::signin::escape(text)), text);
        assert_eq!(unescape("&#65;&#x42;&unknown; &"), "AB&unknown; &");
    }

    #[test]
    fn tags_and_attributes_are_read() {
        let tags = start_tags(
            "<!doctype html><form method=\"post\" action='/t/x'>\
             <input type=\"hidden\" name=\"state\" value=\"a&amp;b&quot;c\">\
             <button type=submit id=\"user-ada\" disabled>Ada</button></form>",
        );
        let names: Vec<&str> = tags.iter().map(|tag| tag.name.as_str()).collect();
        assert_eq!(names, ["form", "input", "button"]);
        assert_eq!(tags[0].attribute("action"), Some("/t/x"));
        assert_eq!(tags[1].attribute("value"), Some("a&b\"c"));
        assert_eq!(tags[2].attribute("type"), Some("submit"));
        assert_eq!(tags[2].attribute("disabled"), Some(""));
    }

    #[test]
    fn actions_resolve_against_the_page() {
        assert_eq!(
            resolve("http://127.0.0.1:1/t/oauth2/v2.0/authorize?x=1", "/t/a").unwrap(),
            "http://127.0.0.1:1/t/a"
        );
        assert!(resolve("http://127.0.0.1:1/", "relative").is_none());
    }
}
