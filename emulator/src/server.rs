//! A loopback HTTP server on tiny_http that answers each request on its own thread, so a
//! deliberately slow answer (a JWKS fault) never holds up the others. Stops when dropped.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What answers a request; it must respond (a dropped request gets an empty 500).
pub type Handler = dyn Fn(tiny_http::Request) + Send + Sync + 'static;

/// The most a request body may hold; more is answered with 413.
pub const MAX_BODY: u64 = 1 << 20;

/// A running server on 127.0.0.1.
pub struct Server {
    addr: SocketAddr,
    inner: Option<Arc<tiny_http::Server>>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Listens on 127.0.0.1:`port` (a free port when `None`) and hands every request to
    /// `handler` on a new thread named `name`.
    pub fn start(name: &str, port: Option<u16>, handler: Arc<Handler>) -> io::Result<Self> {
        Self::serve(name, bind(port)?, handler)
    }

    /// Serves `listener` (see [`bind`]): for a handler that needs the address first.
    pub fn serve(name: &str, listener: TcpListener, handler: Arc<Handler>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let inner =
            Arc::new(tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?);
        let accepting = Arc::clone(&inner);
        let thread_name = name.to_owned();
        let accept = std::thread::Builder::new()
            .name(format!("{name} accept"))
            .spawn(move || {
                // Ends when `Drop` unblocks the queue.
                while let Ok(request) = accepting.recv() {
                    let handler = Arc::clone(&handler);
                    // Without a thread the request is dropped, which answers 500.
                    let _spawned = std::thread::Builder::new()
                        .name(thread_name.clone())
                        .spawn(move || handler(request));
                }
            })?;
        Ok(Self {
            addr,
            inner: Some(inner),
            accept: Some(accept),
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        inner.unblock();
        if let Some(accept) = self.accept.take() {
            let _joined = accept.join();
        }
        // The last reference: tiny_http wakes its listening thread, which closes the socket.
        drop(inner);
        // Wait (briefly) until it has, so a stopped server is really gone.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline
            && TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A listener on 127.0.0.1:`port`, or on a free port when `None`.
pub fn bind(port: Option<u16>) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port.unwrap_or(0)))
}

/// The request body, at most [`MAX_BODY`] bytes (`None` when longer).
pub fn read_body(request: &mut tiny_http::Request) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)?;
    let too_long = u64::try_from(body.len()).map_or(true, |length| length > MAX_BODY);
    Ok((!too_long).then_some(body))
}

/// Answers `request` with `status` and `body` of `content_type`, plus `headers`. A client
/// that went away is not an error worth reporting.
pub fn respond(
    request: tiny_http::Request,
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) {
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    let all = std::iter::once(("Content-Type", content_type)).chain(headers.iter().copied());
    for (name, value) in all {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _gone = request.respond(response);
}

/// Answers `request` with bytes that are not an HTTP response: the client's request fails
/// without a status, as it does when the connection drops before the answer.
pub fn answer_broken(request: tiny_http::Request) {
    let mut writer = request.into_writer();
    let _gone = writer.write_all(b"\0\0 this is not HTTP \r\n\r\n");
    let _gone = writer.flush();
}

/// Answers with `value` as JSON.
pub fn respond_json(
    request: tiny_http::Request,
    status: u16,
    headers: &[(&str, &str)],
    value: &serde_json::Value,
) {
    let body = serde_json::to_vec(value).unwrap_or_default();
    respond(
        request,
        status,
        "application/json; charset=utf-8",
        headers,
        body,
    );
}
