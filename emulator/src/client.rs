//! A plain-HTTP client for scenarios: every status is an answer (not an error), redirects
//! are returned rather than followed (the gateway's 302s are what tests look at), no cookie
//! jar (tests carry `Cookie` headers themselves), and no proxy from the environment, so
//! traffic stays on 127.0.0.1.

use std::fmt;
use std::time::Duration;

/// How long one exchange may take unless [`HttpClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client; cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

/// An answer: status, headers (names lowercase, in order, repeated names kept), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body as UTF-8 (invalid bytes replaced).
    pub body: String,
}

/// Why there is no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be built (a bad method, URL or header).
    InvalidRequest(String),
    /// The exchange failed: nothing listening, a timeout, not HTTP.
    Transport(ureq::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest(problem) => write!(f, "invalid request: {problem}"),
            Self::Transport(source) => write!(f, "http: {source}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidRequest(_) => None,
            Self::Transport(source) => Some(source),
        }
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with [`DEFAULT_TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(DEFAULT_TIMEOUT)
    }

    /// A client whose exchanges each give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self { agent }
    }

    /// `GET url`.
    ///
    /// # Errors
    ///
    /// See [`HttpClient::request`].
    pub fn get(&self, url: &str) -> Result<HttpResponse, ClientError> {
        self.request("GET", url, &[], &[])
    }

    /// `GET url` with extra headers.
    ///
    /// # Errors
    ///
    /// See [`HttpClient::request`].
    pub fn get_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, ClientError> {
        self.request("GET", url, headers, &[])
    }

    /// `POST url` with a JSON body.
    ///
    /// # Errors
    ///
    /// See [`HttpClient::request`].
    pub fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|error| ClientError::InvalidRequest(error.to_string()))?;
        self.request("POST", url, &[("content-type", "application/json")], &body)
    }

    /// `POST url` with a form body (`application/x-www-form-urlencoded`, each part
    /// percent-encoded) and extra headers.
    ///
    /// # Errors
    ///
    /// See [`HttpClient::request`].
    pub fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, ClientError> {
        let body = crate::urlencoded::encode_pairs(fields);
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.request("POST", url, &all, body.as_bytes())
    }

    /// Any request. `GET` and `HEAD` must have an empty body.
    ///
    /// # Errors
    ///
    /// When the request cannot be built or the exchange fails; an HTTP error status is an
    /// answer, not an error.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, ClientError> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let invalid = |error: ureq::http::Error| ClientError::InvalidRequest(error.to_string());
        let response = if body.is_empty() {
            self.agent.run(builder.body(()).map_err(invalid)?)
        } else {
            self.agent
                .run(builder.body(body.to_vec()).map_err(invalid)?)
        }
        .map_err(ClientError::Transport)?;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut response = response;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(ClientError::Transport)?;
        Ok(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of header `name` (any case), such as each `set-cookie`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    ///
    /// When the body is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// Sends `GET request_target` over a fresh connection to `addr` with the request-target bytes
/// exactly as given — no URL parsing, no normalisation, no encoding — as an attacker's client
/// would, and reads one answer (by `Content-Length`, or chunked to its last chunk).
///
/// # Errors
///
/// When the connection fails or the answer is not HTTP/1.1.
pub fn raw_get(
    addr: std::net::SocketAddr,
    request_target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    use std::io::{BufRead, BufReader, Error, ErrorKind, Read, Write};

    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
    let mut head = format!("GET {request_target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let bad = |what: &str| Error::new(ErrorKind::InvalidData, what.to_owned());
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("no end of headers"));
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((n, v)) = trimmed.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
        }
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
