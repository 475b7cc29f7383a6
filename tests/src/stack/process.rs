//! Child processes that never outlive the harness: each in its own process group (so one
//! signal reaches wrangler and the workerd it starts), killed as a group.
//!
//! On Linux a child also gets SIGTERM when the thread that forked it exits
//! (`PR_SET_PDEATHSIG`). Children are therefore forked by one thread that lives as long as
//! the process, never by a test's thread: a stack kept in a `static` and shared by several
//! tests must not die when the test that started it ends, and must die with the process.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock, PoisonError};

type Reply = mpsc::Sender<io::Result<Child>>;

/// The spawning thread's mailbox.
static SPAWNER: OnceLock<Mutex<mpsc::Sender<(Command, Reply)>>> = OnceLock::new();

/// Starts `command` as the leader of a new process group.
pub(crate) fn spawn_in_own_group(mut command: Command) -> io::Result<Child> {
    own_process_group(&mut command);
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<(Command, Reply)>();
        // If the thread cannot start, `receiver` is gone and every `send` below fails.
        let _started = std::thread::Builder::new()
            .name("edge-access-tests spawner".into())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _asker_gone = reply.send(command.spawn());
                }
            });
        Mutex::new(sender)
    });
    let (reply, answer) = mpsc::channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send((command, reply));
    if sent.is_err() {
        return Err(io::Error::other("the spawner thread is not running"));
    }
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread did not answer"))?
}

#[cfg(unix)]
fn own_process_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    command.process_group(0);
    // (std resets the signal mask and dispositions in the child, so a parent that blocks
    // signals to wait for them does not pass that on.)
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(unix))]
fn own_process_group(_command: &mut Command) {}

/// Kills the process group that `child` leads (whatever it left running too), then reaps
/// `child`.
#[cfg(unix)]
pub(crate) fn kill_group(mut child: Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group and reads no memory
        // of ours. The only expected error is ESRCH: nothing left to signal.
        let _ignored = unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let _killed = child.kill();
    let _reaped = child.wait();
}

#[cfg(not(unix))]
pub(crate) fn kill_group(mut child: Child) {
    let _killed = child.kill();
    let _reaped = child.wait();
}

/// Whether process `pid` exists (on systems without `/proc`, assumed so).
pub(crate) fn is_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}
