//! CPU time of a Worker's `workerd` processes, from Linux's `/proc`: the sum over every thread
//! of every `workerd` in a wrangler process group of the time on CPU
//! (`/proc/PID/task/TID/schedstat`, nanoseconds). Under `wrangler dev` a request crosses two
//! workerd processes (wrangler's proxy Worker, then the Worker itself), both counted; the
//! wrangler Node process is not. Elsewhere than Linux nothing is measured.

use std::path::Path;

/// A wrangler process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group(pub i32);

impl Group {
    /// The group of the wrangler process serving `port` (its command line holds
    /// `--port PORT`), for the gateway's wrangler, which the tests' harness starts.
    pub fn of_wrangler_on(port: u16) -> Option<Group> {
        let port = port.to_string();
        processes().into_iter().find_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
            let is_wrangler = args
                .iter()
                .any(|arg| String::from_utf8_lossy(arg).contains("wrangler"));
            let serves_port = args
                .windows(2)
                .any(|pair| matches!(pair, [flag, value] if *flag == b"--port" && *value == port.as_bytes()));
            (is_wrangler && serves_port)
                .then(|| stat(pid).map(|stat| Group(stat.group)))
                .flatten()
        })
    }

    /// Nanoseconds on CPU so far of the group's `workerd` processes, `None` when none is
    /// found (not Linux, or the group is gone).
    pub fn workerd_cpu_ns(self) -> Option<u64> {
        let mut total = 0_u64;
        let mut found = false;
        for pid in processes() {
            let Some(stat) = stat(pid) else { continue };
            if stat.group != self.0 || stat.name != "workerd" {
                continue;
            }
            found = true;
            total += threads_cpu_ns(pid);
        }
        found.then_some(total)
    }
}

fn processes() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

struct Stat {
    name: String,
    group: i32,
}

/// `/proc/PID/stat`: `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let group = rest.nth(2)?.parse().ok()?;
    Some(Stat { name, group })
}

fn threads_cpu_ns(pid: u32) -> u64 {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
