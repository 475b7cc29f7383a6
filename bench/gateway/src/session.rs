//! A browser sign-in over HTTP, without a browser: `/cdn-cgi/access/login` → the emulator's
//! authorize page and its form post ([`entra_emulator::Emulator::sign_in`]) →
//! the gateway's callback → the first page with the session cookie. Cookies are carried by
//! hand (a jar of name → value for the gateway's host; paths are not checked, which only
//! adds the binding cookie to requests a browser would send without it), redirects are
//! followed by hand, and each step is timed.

use std::time::{Duration, Instant};

use edge_access_tests::stack::Stack;
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::urlencoded;

/// The session cookie's name.
pub const COOKIE: &str = "CF_Authorization";

/// One sign-in's steps, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// `GET /cdn-cgi/access/login?redirect_url=…` → 302 to the authorize endpoint.
    pub login: f64,
    /// The emulator's authorize page and its form post → the callback URL.
    pub authorize: f64,
    /// `GET /cdn-cgi/access/callback?code=…` (the gateway redeems the code, reads the groups
    /// and issues the session) → 302 back to the page.
    pub callback: f64,
    /// The page itself, with the session cookie → 200 from the origin.
    pub first_page: f64,
}

impl Timing {
    pub fn total(&self) -> f64 {
        self.login + self.authorize + self.callback + self.first_page
    }
}

/// A finished sign-in: the session cookie's value and how long each step took.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub cookie: String,
    pub timing: Timing,
}

struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> Option<String> {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store(&mut self, response: &HttpResponse) {
        for line in response.header_all("set-cookie") {
            let mut parts = line.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attribute| {
                attribute.split_once('=').is_some_and(|(key, age)| {
                    key.eq_ignore_ascii_case("max-age")
                        && age.parse::<i64>().is_ok_and(|age| age <= 0)
                })
            });
            self.0.retain(|(n, _)| n != name);
            if !expired && !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

const NAVIGATION: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn navigate(client: &HttpClient, jar: &mut Jar, url: &str) -> Result<(HttpResponse, f64), String> {
    let cookie = jar.header();
    let mut headers = vec![("accept", NAVIGATION)];
    if let Some(cookie) = cookie.as_deref() {
        headers.push(("cookie", cookie));
    }
    let start = Instant::now();
    let response = client
        .request("GET", url, &headers, &[])
        .map_err(|e| format!("GET {url}: {e}"))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    jar.store(&response);
    Ok((response, ms))
}

fn redirect(response: &HttpResponse, step: &str) -> Result<String, String> {
    match (response.status, response.header("location")) {
        (302 | 303, Some(location)) => Ok(location.to_owned()),
        _ => Err(format!(
            "sign-in, {step}: expected a redirect, got HTTP {} {}",
            response.status,
            response.body.chars().take(300).collect::<String>()
        )),
    }
}

/// Signs `user` in to `path` on the gateway of `stack` from a fresh jar.
pub fn sign_in(stack: &Stack, path: &str, user: &str) -> Result<SignedIn, String> {
    let client = HttpClient::with_timeout(Duration::from_secs(30));
    let mut jar = Jar(Vec::new());
    let base = stack.url();
    let login = format!(
        "{base}/cdn-cgi/access/login?redirect_url={}",
        urlencoded::encode(path)
    );
    let (answer, login_ms) = navigate(&client, &mut jar, &login)?;
    let authorize = redirect(&answer, "login")?;

    let start = Instant::now();
    let callback = stack
        .emulator()
        .sign_in(&authorize, user)
        .map_err(|e| format!("sign-in, authorize page: {e}"))?;
    let authorize_ms = start.elapsed().as_secs_f64() * 1e3;
    if !callback.starts_with(&format!("{base}/cdn-cgi/access/callback?")) {
        return Err(format!("the emulator sent the browser to {callback}"));
    }

    let (answer, callback_ms) = navigate(&client, &mut jar, &callback)?;
    let back = redirect(&answer, "callback")?;
    let cookie = jar
        .get(COOKIE)
        .ok_or_else(|| format!("no {COOKIE} cookie after the callback: {answer:?}"))?
        .to_owned();
    let page = if back.starts_with('/') {
        format!("{base}{back}")
    } else {
        back
    };
    let (answer, first_page_ms) = navigate(&client, &mut jar, &page)?;
    if answer.status != 200 {
        return Err(format!(
            "the first page after sign-in answered HTTP {}: {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        ));
    }
    Ok(SignedIn {
        cookie,
        timing: Timing {
            login: login_ms,
            authorize: authorize_ms,
            callback: callback_ms,
            first_page: first_page_ms,
        },
    })
}
