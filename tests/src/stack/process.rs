//! Child processes that never outlive the harness: each in its own process group (so one
//! signal reaches wrangler and the workerd it starts), killed as a group
//! (`edge-access-process-group`).
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
    process_group::lead_new_group(&mut command);
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

/// Kills the process group that `child` leads (whatever it left running too), then reaps
/// `child`.
pub(crate) fn kill_group(mut child: Child) {
    process_group::kill_group(&mut child);
}

/// Whether process `pid` exists (on systems without `/proc`, assumed so).
pub(crate) fn is_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}
