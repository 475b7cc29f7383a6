//! `demo-origin [--port N]`: the echo origin on 127.0.0.1 until Ctrl-C.

#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on stderr"
)]

use std::process::ExitCode;

use edge_access_tests::origin::Origin;

const USAGE: &str = "usage: demo-origin [--port N]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo-origin: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut port = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or(USAGE)?;
                port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| format!("bad port `{value}`"))?,
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let origin = Origin::start_on(port).map_err(|error| format!("cannot listen: {error}"))?;
    println!(
        "demo origin listening on {} (echoes every request as JSON)",
        origin.url()
    );
    loop {
        std::thread::park();
    }
}
