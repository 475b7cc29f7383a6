//! The benchmark's origin, behind both the gateway and the pass-through Worker: an echo
//! server like the tests' demo origin (`{"method", "path", "headers"}` as JSON), but written
//! for timing: `TCP_NODELAY`, keep-alive, and each answer in a single write.
//!
//! Why not the demo origin itself: on a keep-alive connection it sends an answer's head and
//! body in separate writes without `TCP_NODELAY`, so any answer over about 1.5 KB (every
//! echo of a request carrying an Entra token) waits for the client's delayed ACK, about
//! 40 ms on Linux. The benchmark measures that stall and reports it, then uses this origin.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::{json, Map, Value};

/// A running echo origin on 127.0.0.1; stops accepting when dropped.
#[derive(Debug)]
pub struct EchoOrigin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl EchoOrigin {
    pub fn start() -> Result<Self, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("bench origin: cannot listen: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("bench origin: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("bench origin accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // Without a thread the connection is dropped; the client sees it closed.
                    let _spawned = std::thread::Builder::new()
                        .name("bench origin".into())
                        .spawn(move || serve(stream));
                }
            })
            .map_err(|e| format!("bench origin: {e}"))?;
        Ok(Self {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EchoOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _woken = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _joined = accept.join();
        }
    }
}

/// Answers requests on one connection until the peer closes it or asks to.
fn serve(stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Map::new();
        let mut length = 0_usize;
        let mut close = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "connection" {
                close = value.eq_ignore_ascii_case("close");
            }
            match headers.get_mut(&name) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name, Value::String(value));
                }
            }
        }
        let mut body = vec![0_u8; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let echo = json!({
            "method": method,
            "path": path,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
             Content-Length: {}\r\n{}\r\n",
            echo.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        answer.extend_from_slice(echo.as_bytes());
        if writer.write_all(&answer).is_err() || close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Connection, Prepared};

    #[test]
    fn echoes_requests_on_one_connection() {
        let origin = EchoOrigin::start().unwrap();
        let mut connection = Connection::new(origin.addr());
        for path in ["/a?x=1", "/b"] {
            let request = Prepared::get(origin.addr(), path, &[("Authorization", "Bearer t")]);
            let answer = connection.send(&request).unwrap();
            assert_eq!(answer.status, 200);
            let echo: Value = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!(echo["path"], path);
            assert_eq!(echo["headers"]["authorization"], "Bearer t");
        }
    }
}
