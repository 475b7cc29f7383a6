//! Headless Chromium driven over the W3C WebDriver protocol, for the browser sign-in tests.
//!
//! [`Browser::start`] starts Debian's `chromedriver` (`/usr/bin/chromedriver`, installed by
//! `cargo xtask setup` with `/usr/bin/chromium`) on a free port of 127.0.0.1 in its own process
//! group, opens a session with a fresh profile, and speaks plain JSON over HTTP to it.
//! Dropping the browser ends the session and kills chromedriver's whole group (Chromium
//! included), also while a failing test unwinds.
//!
//! Chromium runs with the flags this machine needs: `--headless --no-sandbox --disable-gpu
//! --disable-quic --no-first-run --disable-background-networking --disable-component-update
//! --disable-sync` and a new `--user-data-dir`, so it reaches nothing but 127.0.0.1.
//!
//! ```no_run
//! # fn main() -> Result<(), edge_access_tests::browser::BrowserError> {
//! use edge_access_tests::browser::Browser;
//! let browser = Browser::start("my_test")?;
//! browser.goto("http://127.0.0.1:8787/app")?;
//! browser.find("#user-ada")?.click()?;
//! println!("{}", browser.current_url()?);
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::stack::{process, Stack};
use entra_emulator::client::HttpClient;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags Chromium needs on this machine (besides `--user-data-dir`).
pub const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// How long chromedriver may take to answer `/status` as ready.
const DRIVER_STARTUP: Duration = Duration::from_secs(20);
/// How long one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Page loads and scripts, as the session's own timeouts.
const PAGE_LOAD_MS: u64 = 30_000;

/// The key of a web element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why the browser could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrowserError {
    /// Chromium or chromedriver is not installed.
    NotInstalled {
        /// The missing file.
        path: PathBuf,
    },
    /// A file or process operation failed.
    Io {
        /// What was being done.
        action: String,
        /// The cause.
        source: std::io::Error,
    },
    /// chromedriver exited or did not become ready.
    Driver(String),
    /// A WebDriver command failed: the command, the WebDriver error code and message.
    Command {
        /// `METHOD path`.
        command: String,
        /// WebDriver's error code (`no such element`, `timeout`, …) or the HTTP problem.
        error: String,
        /// WebDriver's message.
        message: String,
    },
    /// A wait ran out.
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The URL the browser was at.
        url: String,
    },
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled { path } => write!(
                f,
                "`{}` is missing: run `cargo xtask setup` (it installs Debian's chromium and \
                 chromium-driver)",
                path.display()
            ),
            Self::Io { action, source } => write!(f, "cannot {action}: {source}"),
            Self::Driver(problem) => write!(f, "chromedriver: {problem}"),
            Self::Command {
                command,
                error,
                message,
            } => {
                let message = message.lines().next().unwrap_or_default();
                write!(f, "webdriver {command}: {error}: {message}")
            }
            Self::Timeout { what, waited, url } => write!(
                f,
                "waited {} ms for {what}; the browser is at {url}",
                waited.as_millis()
            ),
        }
    }
}

impl std::error::Error for BrowserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A cookie as the browser keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Its path.
    pub path: String,
    /// Its domain.
    pub domain: String,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite` (`Lax`, `Strict`, `None`), when reported.
    pub same_site: Option<String>,
    /// Expiry, seconds since the epoch; `None` for a session cookie.
    pub expiry: Option<u64>,
}

impl Cookie {
    fn from_json(value: &Value) -> Option<Self> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let flag = |name: &str| value.get(name).and_then(Value::as_bool).unwrap_or(false);
        Some(Self {
            name: text("name")?,
            value: text("value")?,
            path: text("path").unwrap_or_default(),
            domain: text("domain").unwrap_or_default(),
            http_only: flag("httpOnly"),
            secure: flag("secure"),
            same_site: text("sameSite"),
            expiry: value.get("expiry").and_then(Value::as_u64),
        })
    }
}

/// Numbers the browsers of this process, for unique profile directories and log names.
static BROWSERS: AtomicU64 = AtomicU64::new(0);

/// A headless Chromium session; dropping it ends the session and kills chromedriver.
#[derive(Debug)]
pub struct Browser {
    driver: Option<Child>,
    /// `http://127.0.0.1:PORT` of chromedriver.
    driver_url: String,
    /// `{driver_url}/session/{id}`.
    session: String,
    http: HttpClient,
    profile: PathBuf,
    log_path: PathBuf,
}

/// One element of the current page.
#[derive(Debug)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
    selector: String,
}

impl Browser {
    /// Whether Chromium and chromedriver are installed.
    ///
    /// # Errors
    ///
    /// [`BrowserError::NotInstalled`] naming the missing file.
    pub fn check_installed() -> Result<(), BrowserError> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(path).is_file() {
                return Err(BrowserError::NotInstalled { path: path.into() });
            }
        }
        Ok(())
    }

    /// Starts chromedriver and a new headless Chromium session with an empty profile.
    /// `name` names chromedriver's log (`target/e2e-logs/browser-{name}-{pid}-{n}.log`).
    ///
    /// # Errors
    ///
    /// When Chromium or chromedriver is missing, chromedriver does not become ready, or the
    /// session cannot be created (the error holds chromedriver's message).
    pub fn start(name: &str) -> Result<Self, BrowserError> {
        Self::check_installed()?;
        let target = target_dir()?;
        let id = format!(
            "{}-{}-{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            std::process::id(),
            BROWSERS.fetch_add(1, Ordering::SeqCst)
        );
        let profile = target.join("e2e").join(format!("browser-{id}"));
        let logs = target.join("e2e-logs");
        for dir in [&profile, &logs] {
            std::fs::create_dir_all(dir).map_err(|source| BrowserError::Io {
                action: format!("create `{}`", dir.display()),
                source,
            })?;
        }
        let log_path = logs.join(format!("browser-{id}.log"));
        let mut browser = Self {
            driver: None,
            driver_url: String::new(),
            session: String::new(),
            http: HttpClient::with_timeout(COMMAND_TIMEOUT),
            profile,
            log_path,
        };
        // A port that was free a moment ago may be taken by the time chromedriver binds it.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match browser.spawn_driver() {
                Ok(()) => break,
                Err(_) if attempts < 3 => browser.kill_driver(),
                Err(error) => return Err(error),
            }
        }
        browser.new_session()?;
        Ok(browser)
    }

    fn spawn_driver(&mut self) -> Result<(), BrowserError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(|source| BrowserError::Io {
                action: "find a free port on 127.0.0.1".into(),
                source,
            })?;
        let log = File::create(&self.log_path).map_err(|source| BrowserError::Io {
            action: format!("create `{}`", self.log_path.display()),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| BrowserError::Io {
            action: format!("open `{}`", self.log_path.display()),
            source,
        })?;
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = process::spawn_in_own_group(command).map_err(|source| BrowserError::Io {
            action: format!("start `{CHROMEDRIVER}`"),
            source,
        })?;
        self.driver = Some(child);
        self.driver_url = format!("http://127.0.0.1:{port}");

        let started = Instant::now();
        let probe = HttpClient::with_timeout(Duration::from_secs(2));
        loop {
            if let Some(child) = self.driver.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(BrowserError::Driver(format!(
                        "exited ({status}) before it was ready; its log ends:\n{}",
                        tail(&self.log())
                    )));
                }
            }
            let ready = probe
                .get(&format!("{}/status", self.driver_url))
                .ok()
                .and_then(|response| response.json().ok())
                .is_some_and(|status: Value| {
                    status.pointer("/value/ready") == Some(&Value::Bool(true))
                });
            if ready {
                return Ok(());
            }
            if started.elapsed() > DRIVER_STARTUP {
                return Err(BrowserError::Driver(format!(
                    "not ready after {} s; its log ends:\n{}",
                    DRIVER_STARTUP.as_secs(),
                    tail(&self.log())
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&mut self) -> Result<(), BrowserError> {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| (*flag).into()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "pageLoad": PAGE_LOAD_MS, "script": PAGE_LOAD_MS, "implicit": 0 },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                }
            }
        });
        let url = format!("{}/session", self.driver_url);
        let value = self.call("POST", &url, Some(&capabilities))?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| BrowserError::Command {
                command: "POST /session".into(),
                error: "no sessionId".into(),
                message: value.to_string(),
            })?;
        self.session = format!("{}/session/{id}", self.driver_url);
        Ok(())
    }

    /// chromedriver's log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Where chromedriver logs.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Navigates to `url` and waits for the page to load.
    ///
    /// # Errors
    ///
    /// When the page does not load (a network error, a timeout).
    pub fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// The current page's URL.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn current_url(&self) -> Result<String, BrowserError> {
        self.string("GET", "/url")
    }

    /// The current page's title.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn title(&self) -> Result<String, BrowserError> {
        self.string("GET", "/title")
    }

    /// The current page's HTML, as the browser serializes it.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn page_source(&self) -> Result<String, BrowserError> {
        self.string("GET", "/source")
    }

    /// The page's visible text (`document.body.innerText`).
    ///
    /// # Errors
    ///
    /// When the script fails.
    pub fn body_text(&self) -> Result<String, BrowserError> {
        let value = self.execute("return document.body ? document.body.innerText : '';", &[])?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching the CSS `selector`.
    ///
    /// # Errors
    ///
    /// `no such element` when nothing matches.
    pub fn find(&self, selector: &str) -> Result<Element<'_>, BrowserError> {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.command("POST", "/element", Some(&body))?;
        self.element(&value, selector)
    }

    /// Every element matching the CSS `selector` (none is not an error).
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn find_all(&self, selector: &str) -> Result<Vec<Element<'_>>, BrowserError> {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.command("POST", "/elements", Some(&body))?;
        value
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|item| self.element(item, selector))
            .collect()
    }

    /// Waits until an element matches `selector`, and returns it.
    ///
    /// # Errors
    ///
    /// [`BrowserError::Timeout`] after `timeout`; other errors at once.
    pub fn wait_for(&self, selector: &str, timeout: Duration) -> Result<Element<'_>, BrowserError> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find_all(selector)?.into_iter().next() {
                return Ok(element);
            }
            if started.elapsed() >= timeout {
                return Err(self.timeout(format!("an element `{selector}`"), started));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the current URL satisfies `accept` (`what` describes it for the error),
    /// and returns it.
    ///
    /// # Errors
    ///
    /// [`BrowserError::Timeout`] after `timeout`; other errors at once.
    pub fn wait_for_url(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String, BrowserError> {
        let started = Instant::now();
        loop {
            let url = self.current_url()?;
            if accept(&url) {
                return Ok(url);
            }
            if started.elapsed() >= timeout {
                return Err(self.timeout(what.to_owned(), started));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and returns
    /// what it returns.
    ///
    /// # Errors
    ///
    /// `javascript error` when the script throws.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, BrowserError> {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/sync", Some(&body))
    }

    /// Runs `script` asynchronously: it ends by calling `arguments[arguments.length - 1]`
    /// with its result (a `fetch` from the page, say).
    ///
    /// # Errors
    ///
    /// `javascript error` when the script throws, `script timeout` after 30 s.
    pub fn execute_async(&self, script: &str, args: &[Value]) -> Result<Value, BrowserError> {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/async", Some(&body))
    }

    /// The cookies visible to the current page, `HttpOnly` ones included.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn cookies(&self) -> Result<Vec<Cookie>, BrowserError> {
        let value = self.command("GET", "/cookie", None)?;
        Ok(value
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(Cookie::from_json)
            .collect())
    }

    /// The cookie `name` visible to the current page, if there is one.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn cookie(&self, name: &str) -> Result<Option<Cookie>, BrowserError> {
        Ok(self
            .cookies()?
            .into_iter()
            .find(|cookie| cookie.name == name))
    }

    /// Deletes the cookie `name` of the current page (nothing when there is none).
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn delete_cookie(&self, name: &str) -> Result<(), BrowserError> {
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(BrowserError::Command {
                command: format!("DELETE /cookie/{name}"),
                error: "invalid argument".into(),
                message: "only cookie names of letters, digits, `_` and `-`".into(),
            });
        }
        self.command("DELETE", &format!("/cookie/{name}"), None)
            .map(drop)
    }

    /// Deletes every cookie of the current page.
    ///
    /// # Errors
    ///
    /// When the session is gone.
    pub fn delete_all_cookies(&self) -> Result<(), BrowserError> {
        self.command("DELETE", "/cookie", None).map(drop)
    }

    /// Adds a cookie for the current page's host.
    ///
    /// # Errors
    ///
    /// `invalid cookie domain` and such.
    pub fn add_cookie(&self, name: &str, value: &str, path: &str) -> Result<(), BrowserError> {
        let body = json!({ "cookie": { "name": name, "value": value, "path": path } });
        self.command("POST", "/cookie", Some(&body)).map(drop)
    }

    /// Presses `key` (a W3C key code such as [`Element::TAB`]) on the keyboard, wherever the
    /// focus is (WebDriver actions: no element is targeted).
    ///
    /// # Errors
    ///
    /// When the driver refuses the action.
    pub fn press(&self, key: &str) -> Result<(), BrowserError> {
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }] }] });
        self.command("POST", "/actions", Some(&actions)).map(drop)
    }

    /// A PNG screenshot of the viewport, written to `path` (for looking at a failure).
    ///
    /// # Errors
    ///
    /// When the screenshot fails or the file cannot be written.
    pub fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        use base64::Engine as _;
        let value = self.command("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .map_err(|error| BrowserError::Command {
                command: "GET /screenshot".into(),
                error: "not base64".into(),
                message: error.to_string(),
            })?;
        std::fs::write(path, png).map_err(|source| BrowserError::Io {
            action: format!("write `{}`", path.display()),
            source,
        })
    }

    /// Ends the session and stops chromedriver (as dropping does, but reporting a failed
    /// session end).
    ///
    /// # Errors
    ///
    /// When the session could not be ended cleanly (chromedriver is killed anyway).
    pub fn quit(mut self) -> Result<(), BrowserError> {
        let ended = self.end_session();
        self.kill_driver();
        ended
    }

    fn end_session(&mut self) -> Result<(), BrowserError> {
        if self.session.is_empty() {
            return Ok(());
        }
        let session = std::mem::take(&mut self.session);
        self.call("DELETE", &session, None).map(drop)
    }

    fn kill_driver(&mut self) {
        if let Some(child) = self.driver.take() {
            process::kill_group(child);
        }
    }

    fn element(&self, value: &Value, selector: &str) -> Result<Element<'_>, BrowserError> {
        let id = value
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| BrowserError::Command {
                command: format!("find `{selector}`"),
                error: "not an element reference".into(),
                message: value.to_string(),
            })?;
        Ok(Element {
            browser: self,
            id: id.to_owned(),
            selector: selector.to_owned(),
        })
    }

    fn timeout(&self, what: String, started: Instant) -> BrowserError {
        BrowserError::Timeout {
            what,
            waited: started.elapsed(),
            url: self
                .current_url()
                .unwrap_or_else(|error| format!("(unknown: {error})")),
        }
    }

    fn string(&self, method: &str, path: &str) -> Result<String, BrowserError> {
        let value = self.command(method, path, None)?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// A command of this session: `path` is relative to `/session/{id}`.
    fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, BrowserError> {
        if self.session.is_empty() {
            return Err(BrowserError::Command {
                command: format!("{method} {path}"),
                error: "no session".into(),
                message: "the session has ended".into(),
            });
        }
        self.call(method, &format!("{}{path}", self.session), body)
    }

    /// One WebDriver exchange: the answer's `value`, or its error.
    fn call(&self, method: &str, url: &str, body: Option<&Value>) -> Result<Value, BrowserError> {
        let command = format!(
            "{method} {}",
            url.strip_prefix(&self.driver_url).unwrap_or(url)
        );
        let bytes = match (method, body) {
            (_, Some(body)) => body.to_string().into_bytes(),
            // POST always carries a JSON body in WebDriver, even an empty one.
            ("POST", None) => b"{}".to_vec(),
            _ => Vec::new(),
        };
        let headers: &[(&str, &str)] = if bytes.is_empty() {
            &[]
        } else {
            &[("content-type", "application/json; charset=utf-8")]
        };
        let response = self
            .http
            .request(method, url, headers, &bytes)
            .map_err(|error| BrowserError::Command {
                command: command.clone(),
                error: "http".into(),
                message: error.to_string(),
            })?;
        let mut answer: Value = response.json().map_err(|error| BrowserError::Command {
            command: command.clone(),
            error: format!("HTTP {} without JSON", response.status),
            message: format!("{error}: {}", tail(&response.body)),
        })?;
        let value = answer
            .get_mut("value")
            .map(Value::take)
            .unwrap_or(Value::Null);
        if response.status == 200 {
            return Ok(value);
        }
        Err(BrowserError::Command {
            command,
            error: value
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| format!("HTTP {}", response.status), str::to_owned),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

impl Element<'_> {
    /// Clicks the element (and waits for a navigation it starts, as chromedriver does).
    ///
    /// # Errors
    ///
    /// When the element is gone or cannot be clicked.
    pub fn click(&self) -> Result<(), BrowserError> {
        self.browser
            .command("POST", &format!("/element/{}/click", self.id), None)
            .map(drop)
    }

    /// Types `keys` into the element as a keyboard would (W3C key codes such as
    /// [`Element::ENTER`] included): on a focused link, Enter follows it.
    ///
    /// # Errors
    ///
    /// When the element is gone or cannot take the keys.
    pub fn send_keys(&self, keys: &str) -> Result<(), BrowserError> {
        self.browser
            .command(
                "POST",
                &format!("/element/{}/value", self.id),
                Some(&serde_json::json!({ "text": keys })),
            )
            .map(drop)
    }

    /// The Enter key, for [`Element::send_keys`] and [`Browser::press`].
    pub const ENTER: &'static str = "\u{E007}";

    /// The Tab key, for [`Browser::press`].
    pub const TAB: &'static str = "\u{E004}";

    /// The element's rendered text.
    ///
    /// # Errors
    ///
    /// When the element is gone.
    pub fn text(&self) -> Result<String, BrowserError> {
        self.browser
            .string("GET", &format!("/element/{}/text", self.id))
    }

    /// An attribute's value, if the element has it.
    ///
    /// # Errors
    ///
    /// When the element is gone.
    pub fn attribute(&self, name: &str) -> Result<Option<String>, BrowserError> {
        let value = self.browser.command(
            "GET",
            &format!("/element/{}/attribute/{name}", self.id),
            None,
        )?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The selector that found it.
    pub fn selector(&self) -> &str {
        &self.selector
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A short, polite end (Chromium writes its profile), then the whole group goes.
        if !self.session.is_empty() && self.driver.is_some() {
            let session = std::mem::take(&mut self.session);
            let quick = HttpClient::with_timeout(Duration::from_secs(5));
            let _ended = quick.request("DELETE", &session, &[], &[]);
        }
        self.kill_driver();
        let _removed = std::fs::remove_dir_all(&self.profile);
    }
}

/// The checkout's target directory (`CARGO_TARGET_DIR` or `target/`), found at run time.
/// One browser at a time per test process: the machine is small.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A browser test's run: its binary's shared stack and a new browser, held one at a time.
#[derive(Debug)]
pub struct Run {
    pub stack: &'static Stack,
    pub browser: Browser,
    _turn: MutexGuard<'static, ()>,
}

impl Run {
    /// The run of `test` in the binary `binary` over the stack `stack` starts, or `None` when
    /// the end-to-end tests are skipped here (a missing browser skips too, unless
    /// prerequisites are required).
    ///
    /// # Panics
    /// When the browser does not start, or a required prerequisite is missing.
    #[expect(
        clippy::panic,
        clippy::print_stderr,
        reason = "test harness: a failure panics the test; a skip is reported on stderr"
    )]
    pub fn start(binary: &str, test: &str, stack: impl FnOnce() -> &'static Stack) -> Option<Run> {
        let name = format!("{binary}::{test}");
        if !Stack::should_run(&name).unwrap_or_else(|e| panic!("{e}")) {
            return None;
        }
        match Browser::check_installed() {
            Ok(()) => {}
            Err(error) if Stack::prerequisites_required() => panic!("{error}"),
            Err(error) => {
                eprintln!("SKIPPED {name}: {error}");
                return None;
            }
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let stack = stack();
        let browser = Browser::start(test).unwrap_or_else(|e| panic!("{e}"));
        Some(Run {
            stack,
            browser,
            _turn: turn,
        })
    }

    /// `path` on the stack's worker.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url())
    }

    /// On failure, what the browser showed: the URL, the page's text, a screenshot and the
    /// chromedriver log.
    pub fn context(&self, error: &BrowserError) -> String {
        let shot = self.browser.log_path().with_extension("png");
        let _ = self.browser.screenshot(&shot);
        format!(
            "{error}\n  at {}\n  page: {}\n  screenshot: {}\n  chromedriver log: {}",
            self.browser.current_url().unwrap_or_default(),
            self.browser.body_text().unwrap_or_default(),
            shot.display(),
            self.browser.log_path().display()
        )
    }

    /// `result`'s value, or a panic with [`Run::context`].
    #[expect(clippy::panic, reason = "test harness: a failure panics the test")]
    pub fn ok<T>(&self, result: Result<T, BrowserError>) -> T {
        result.unwrap_or_else(|error| panic!("{}", self.context(&error)))
    }

    /// On the emulator's sign-in page at `authorize`, picks `user` and waits for the way
    /// back; returns the URL the browser lands on.
    pub fn pick_user(&self, authorize: &str, user: &str) -> String {
        const WAIT: Duration = Duration::from_secs(30);
        let button = self.ok(self.browser.wait_for(&format!("#user-{user}"), WAIT));
        self.ok(button.click());
        self.ok(self
            .browser
            .wait_for_url("the way back from the emulator", WAIT, |url| {
                !url.starts_with(authorize)
            }))
    }

    /// A screenshot of the page kept as a test artifact, `target/test-artifacts/<name>.png`;
    /// its path is printed.
    #[expect(clippy::print_stderr, reason = "test harness: the artifact's path")]
    pub fn keep_screenshot(&self, name: &str) -> PathBuf {
        let dir = self.ok(target_dir()).join("test-artifacts");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}.png"));
        self.ok(self.browser.screenshot(&path));
        eprintln!("screenshot: {}", path.display());
        path
    }
}

fn target_dir() -> Result<PathBuf, BrowserError> {
    let root = workspace_root::find().map_err(|e| BrowserError::Io {
        action: "find the checkout".into(),
        source: std::io::Error::other(e),
    })?;
    Ok(workspace_root::target_dir(&root))
}

/// The last lines of a log, for error messages.
fn tail(text: &str) -> String {
    const LINES: usize = 30;
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LINES);
    lines
        .iter()
        .skip(skip)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}
