//! `edge-access-dev-stack`: the whole local stack for a person (`cargo xtask dev`): the Entra
//! ID emulator, the demo origin and the built worker under `wrangler dev`, until Ctrl-C.
//!
//! ```text
//! edge-access-dev-stack [--port N] [--emulator-port N] [--origin-port N]
//!                       [--config FILE] [--var NAME=VALUE]...
//! ```
//!
//! `--config` is the edge-access configuration document (JSON; the placeholders of
//! `edge_access_tests::stack` such as `${WORKER_HOST}` are replaced). Wrangler's output is
//! copied to stdout as it comes. The worker must be built first (`cargo xtask build-worker`).

#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on stderr"
)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};

const USAGE: &str = "usage: edge-access-dev-stack [--port N] [--emulator-port N] \
                     [--origin-port N] [--config FILE] [--var NAME=VALUE]...";

/// Where the worker listens unless `--port` says otherwise (wrangler's own default).
const DEFAULT_PORT: u16 = 8787;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("edge-access-dev-stack: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    // Before any thread starts, so that every thread inherits the mask (see `signals`).
    let signals = signals::block()?;

    let mut config = StackConfig::default().named("dev");
    config.port = Some(DEFAULT_PORT);
    config.startup_timeout = Duration::from_secs(300);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("`{arg}` needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--port" => config.port = Some(port(&value()?)?),
            "--emulator-port" => config.emulator_port = Some(port(&value()?)?),
            "--origin-port" => config.origin_port = Some(port(&value()?)?),
            "--config" => config.config_document = document(&PathBuf::from(value()?))?,
            "--var" => {
                let pair = value()?;
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`--var {pair}`: expected NAME=VALUE"))?;
                config.vars.push((name.to_owned(), value.to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }

    println!("starting the emulator, the demo origin and wrangler dev …");
    let stack = Stack::start(config).map_err(|error| error.to_string())?;
    print_summary(&stack);
    follow(stack.worker_log_path().to_owned());
    let signal = signals::wait(&signals);
    println!("\nstopping ({signal})");
    drop(stack);
    Ok(())
}

fn port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("bad port `{text}`"))
}

fn document(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("`{}`: {error}", path.display()))
}

fn print_summary(stack: &Stack) {
    let emulator = stack.emulator();
    println!();
    println!("    edge-access is running at {}/", stack.url());
    println!(
        "    Entra ID emulator  {}  (tenant {}, client id {})",
        emulator.url(),
        emulator.tenant_id(),
        emulator.client_id()
    );
    println!("    demo origin        {}", stack.origin().url());
    println!(
        "    wrangler log       {}",
        stack.worker_log_path().display()
    );
    println!("    started in {:.1} s", stack.startup_time().as_secs_f64());
    println!();
    println!("    users to sign in as:");
    let fixtures = emulator.fixtures();
    for user in &fixtures.users {
        println!("      {:<9} {}", user.key, user.upn);
    }
    println!();
    println!("    mint a token for a user and call the gateway with it (copy, paste):");
    println!();
    println!(
        "      TOKEN=$(curl -s -X POST {}/_admin/token -d '{{\"user\": \"ada\"}}' | sed -E 's/.*\"access_token\": *\"([^\"]+)\".*/\\1/')",
        emulator.url()
    );
    println!(
        "      curl -i -H \"Authorization: Bearer $TOKEN\" {}/eng/hello",
        stack.url()
    );
    println!();
    println!(
        "    SCIM (Entra provisioning): {}{} with `Authorization: Bearer {}`",
        stack.url(),
        edge_access_tests::stack::SCIM_PATH,
        edge_access_tests::stack::SCIM_TOKEN
    );
    println!(
        "    provision the fixtures like Entra: cargo run -p entra-emulator -- --provision {}{} --scim-token {}",
        stack.url(),
        edge_access_tests::stack::SCIM_PATH,
        edge_access_tests::stack::SCIM_TOKEN
    );
    println!();
    println!("    (`/public` is open to everyone; `/eng` needs the nested Engineering group; mallory is refused)");
    println!("    Ctrl-C stops everything.");
    println!();
}

/// Copies what wrangler writes to its log onto stdout, from now on.
fn follow(log: PathBuf) {
    let _follower = std::thread::Builder::new()
        .name("log follower".into())
        .spawn(move || {
            let Ok(mut file) = std::fs::File::open(&log) else {
                return;
            };
            let mut position = file.seek(SeekFrom::End(0)).unwrap_or(0);
            let mut buffer = Vec::new();
            loop {
                std::thread::sleep(Duration::from_millis(200));
                buffer.clear();
                if file.seek(SeekFrom::Start(position)).is_err() {
                    continue;
                }
                if let Ok(read) = file.read_to_end(&mut buffer) {
                    position = position.saturating_add(u64::try_from(read).unwrap_or(0));
                    let mut stdout = std::io::stdout().lock();
                    // Output for a person: losing some must not stop the stack.
                    let _shown = stdout.write_all(&buffer).and_then(|()| stdout.flush());
                }
            }
        });
}

#[cfg(unix)]
#[expect(
    unsafe_code,
    reason = "blocking and waiting for signals is libc; each block says why it is sound"
)]
mod signals {
    /// The signals that stop the stack.
    pub type Set = libc::sigset_t;

    /// Blocks SIGINT, SIGTERM and SIGHUP in this thread and in every thread it starts from
    /// now on, so they queue up for [`wait`] instead of ending the process without dropping
    /// the stack. (Child processes start with an empty mask: std resets it.)
    pub fn block() -> Result<Set, String> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set before sigaddset and pthread_sigmask read
        // it; all three only touch the set we pass.
        unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err("sigemptyset failed".into());
            }
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                if libc::sigaddset(set.as_mut_ptr(), signal) != 0 {
                    return Err("sigaddset failed".into());
                }
            }
            let set = set.assume_init();
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err("pthread_sigmask failed".into());
            }
            Ok(set)
        }
    }

    /// Waits for one of the blocked signals and names it.
    pub fn wait(set: &Set) -> &'static str {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait reads the initialised set and writes one int we own.
        let status = unsafe { libc::sigwait(set, &mut signal) };
        match (status, signal) {
            (0, libc::SIGINT) => "SIGINT",
            (0, libc::SIGTERM) => "SIGTERM",
            (0, libc::SIGHUP) => "SIGHUP",
            _ => "a signal",
        }
    }
}

#[cfg(not(unix))]
mod signals {
    pub type Set = ();

    pub fn block() -> Result<Set, String> {
        Ok(())
    }

    pub fn wait(_set: &Set) -> &'static str {
        loop {
            std::thread::park();
        }
    }
}
