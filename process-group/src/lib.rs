#![doc = include_str!("../README.md")]
#![allow(
    unsafe_code,
    reason = "process groups need libc: prctl(2) in the forked child, kill(2) of a group; each block says why it is sound"
)]

use std::process::{Child, Command};

/// What [`signal_group`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: asks every process of the group to stop, as Ctrl-C in a terminal does.
    Interrupt,
    /// SIGKILL: ends every process of the group at once.
    Kill,
}

/// Makes `command` start its child as the leader of a new process group; on Linux the child
/// also gets SIGTERM when the thread that spawns it exits.
#[cfg(unix)]
pub fn lead_new_group(command: &mut Command) {
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
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Without process groups, the child is started as it is.
#[cfg(not(unix))]
pub fn lead_new_group(_command: &mut Command) {}

/// Sends `signal` to the process group that `child` leads (see [`lead_new_group`]).
#[cfg(unix)]
pub fn signal_group(child: &Child, signal: Signal) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    let signal = match signal {
        Signal::Interrupt => libc::SIGINT,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) with a negative pid signals that process group and reads no memory of
    // ours. The only expected error is ESRCH: nothing left to signal.
    let _ignored = unsafe { libc::kill(-group, signal) };
}

/// Without process groups there is no group to signal ([`kill_group`] still kills the
/// child).
#[cfg(not(unix))]
pub fn signal_group(_child: &Child, _signal: Signal) {}

/// Kills the process group that `child` leads (whatever it left running too), then the child
/// itself, and reaps it.
pub fn kill_group(child: &mut Child) {
    signal_group(child, Signal::Kill);
    let _killed = child.kill();
    let _reaped = child.wait();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use super::*;

    /// Whether `pid` is gone or a zombie nobody reaped yet (in a container the reaper may
    /// be missing): either way it runs no more.
    fn ended(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        }
    }

    /// Polls `ended(pid)`; the deadline only bounds a failing test.
    fn ends(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ended(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn killing_the_group_ends_what_the_child_started() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped());
        lead_new_group(&mut command);
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert!(!ended(grandchild), "the grandchild runs before the kill");
        kill_group(&mut child);
        assert!(ends(grandchild), "the grandchild outlived its group");
    }

    #[test]
    fn the_child_leads_its_own_group() {
        let mut command = Command::new("sleep");
        command.arg("300");
        lead_new_group(&mut command);
        let mut child = command.spawn().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        // Fields after the name: state, ppid, pgrp.
        let (_, rest) = stat.rsplit_once(')').unwrap();
        let pgrp: u32 = rest.split_whitespace().nth(2).unwrap().parse().unwrap();
        kill_group(&mut child);
        assert_eq!(pgrp, child.id());
    }

    #[test]
    fn an_interrupt_reaches_the_group() {
        let mut command = Command::new("sleep");
        command.arg("300");
        // A test run started in the background of a shell without job control inherits
        // SIGINT ignored, and so would `sleep`: the test is about delivery, so the child takes
        // the default action whatever this process was given.
        // SAFETY: `signal` is async-signal-safe, and the closure touches nothing else.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        lead_new_group(&mut command);
        let mut child = command.spawn().unwrap();
        signal_group(&child, Signal::Interrupt);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGINT));
    }
}
