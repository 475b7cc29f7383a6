//! A minimal HTTP/1.1 keep-alive client for the load loops: one connection, requests
//! prepared once as bytes, `TCP_NODELAY`, bodies read by `Content-Length` or chunked. Its own
//! cost per request is a few microseconds, the same for every target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest a single exchange may take (the slowest verify requests take well under a second).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A request prepared once: `GET path` with the given headers.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub addr: SocketAddr,
    bytes: Vec<u8>,
}

impl Prepared {
    pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut text = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Self {
            addr,
            bytes: text.into_bytes(),
        }
    }
}

/// A status and a body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection, reopened when the server closed it.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// Sends `request` and reads the answer; one retry on a fresh connection when a reused
    /// one turns out to be closed.
    pub fn send(&mut self, request: &Prepared) -> Result<Answer, String> {
        if request.addr != self.addr {
            return Err(format!(
                "request for {} on a connection to {}",
                request.addr, self.addr
            ));
        }
        let reused = self.stream.is_some();
        match self.exchange(request) {
            Ok(answer) => Ok(answer),
            Err(_) if reused => {
                self.stream = None;
                self.exchange(request)
            }
            Err(error) => Err(error),
        }
    }

    fn exchange(&mut self, request: &Prepared) -> Result<Answer, String> {
        let result = self.try_exchange(request);
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(|error| format!("{}: {error}", self.addr))
    }

    fn try_exchange(&mut self, request: &Prepared) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, TIMEOUT)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, stream));
        }
        let Some(reader) = self.stream.as_mut() else {
            return Err(std::io::Error::other("no connection"));
        };
        reader.get_mut().write_all(&request.bytes)?;

        let mut line = String::new();
        read_line(reader, &mut line)?;
        // "HTTP/1.1 200 OK"
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("not an HTTP status line: {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            read_line(reader, &mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("content-length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                read_line(reader, &mut line)?;
                let size = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| invalid(format!("chunk size {size:?}")))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        read_line(reader, &mut line)?;
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(body.get_mut(start..).unwrap_or_default())?;
                let mut crlf = [0_u8; 2];
                reader.read_exact(&mut crlf)?;
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        } else if status != 204 && status != 304 {
            // No length: the body runs to the end of the connection.
            reader.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(Answer { status, body })
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<()> {
    line.clear();
    if reader.read_line(line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(())
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
