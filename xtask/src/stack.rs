//! A set of long-running child processes (the dev stack) that start in order, are probed
//! until they answer HTTP, and stop together.
//!
//! Each service runs in its own process group, so stopping it reaches its whole tree
//! (wrangler → workerd) and a Ctrl-C in the terminal reaches only xtask, which then stops
//! the services in reverse order: SIGINT, a grace period, then SIGKILL for what is left.
//! On Linux a service also gets SIGTERM if xtask dies without cleaning up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::XtaskError;
use crate::process;

/// How often the stack looks at its services and the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// How long a service has to exit after SIGINT before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// Running services, stopped when the stack is dropped.
#[derive(Debug)]
pub struct Stack {
    services: Vec<Service>,
    stop: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Service {
    name: String,
    child: Child,
}

impl Stack {
    /// An empty stack; from now on Ctrl-C, SIGTERM and SIGHUP ask it to stop instead of
    /// ending xtask at once.
    ///
    /// # Errors
    ///
    /// When the signal handlers cannot be installed.
    pub fn new() -> Result<Self, XtaskError> {
        let stop = Arc::new(AtomicBool::new(false));
        signals::stop_on_signals(&stop)?;
        Ok(Self {
            services: Vec::new(),
            stop,
        })
    }

    /// Starts `command` as the service `name`, without stdin (so it never waits on the
    /// terminal), with stdout and stderr shared with xtask.
    ///
    /// # Errors
    ///
    /// When the program cannot be started.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> Result<(), XtaskError> {
        println!("    $ {}", process::describe(&command));
        command.stdin(Stdio::null());
        process_group::lead_new_group(&mut command);
        let child = command
            .spawn()
            .map_err(|source| process::spawn_error(&command, source))?;
        self.services.push(Service {
            name: name.to_owned(),
            child,
        });
        Ok(())
    }

    /// Waits until something answers HTTP at `addr` (any status), while every service is
    /// still running.
    ///
    /// # Errors
    ///
    /// When a service exits, the stack is asked to stop, or `timeout` passes.
    pub fn wait_for_http(
        &mut self,
        name: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<u16, XtaskError> {
        let started = Instant::now();
        loop {
            self.check()?;
            if let Ok(status) = http_status(addr, "/") {
                return Ok(status);
            }
            if started.elapsed() > timeout {
                return Err(XtaskError::Stack {
                    service: name.to_owned(),
                    problem: format!(
                        "did not answer HTTP on {addr} within {}s",
                        timeout.as_secs()
                    ),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs until Ctrl-C (then `Ok`) or until a service exits on its own (an error).
    ///
    /// # Errors
    ///
    /// When a service stops by itself.
    pub fn run_until_stopped(mut self) -> Result<(), XtaskError> {
        loop {
            match self.check() {
                Err(XtaskError::Interrupted) => {
                    println!("==> stopping");
                    self.shutdown();
                    return Ok(());
                }
                Err(error) => return Err(error),
                Ok(()) => std::thread::sleep(POLL),
            }
        }
    }

    /// `Interrupted` when asked to stop, an error when a service has exited.
    fn check(&mut self) -> Result<(), XtaskError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(XtaskError::Interrupted);
        }
        for service in &mut self.services {
            if let Ok(Some(status)) = service.child.try_wait() {
                return Err(XtaskError::Stack {
                    service: service.name.clone(),
                    problem: format!("exited on its own ({status})"),
                });
            }
        }
        Ok(())
    }

    /// Stops every service, the last started first.
    fn shutdown(&mut self) {
        while let Some(mut service) = self.services.pop() {
            process_group::signal_group(&service.child, process_group::Signal::Interrupt);
            let deadline = Instant::now() + GRACE;
            let exited = loop {
                match service.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break true,
                    Ok(None) if Instant::now() >= deadline => break false,
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            if !exited {
                println!(
                    "    {} did not stop within {}s; killing it",
                    service.name,
                    GRACE.as_secs()
                );
            }
            // Also reaches what the service left behind in its group.
            process_group::kill_group(&mut service.child);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The status code of `GET path` at `addr`.
///
/// # Errors
///
/// When nothing listens, or the answer is not HTTP.
pub fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.1 503"
    std::str::from_utf8(&head)
        .ok()
        .filter(|text| text.starts_with("HTTP/1."))
        .and_then(|text| text.get(9..12))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

#[cfg(unix)]
mod signals {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    use crate::error::XtaskError;

    pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<(), XtaskError> {
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(signal, Arc::clone(stop)).map_err(|source| {
                XtaskError::Spawn {
                    program: format!("signal handler for signal {signal}"),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod signals {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use crate::error::XtaskError;

    pub fn stop_on_signals(_stop: &Arc<AtomicBool>) -> Result<(), XtaskError> {
        Ok(())
    }
}
