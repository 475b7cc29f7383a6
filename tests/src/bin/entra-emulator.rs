//! `entra-emulator [--port N] [--fixtures FILE]`: the Entra ID emulator on 127.0.0.1 until
//! Ctrl-C, for people and for `cargo xtask dev`.

#![allow(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on stderr"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use edge_access_tests::emulator::Emulator;
use edge_access_tests::fixtures::Fixtures;

const USAGE: &str = "usage: entra-emulator [--port N] [--fixtures FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("entra-emulator: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut port = None;
    let mut fixtures_path = Fixtures::default_path();
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
            "--fixtures" => fixtures_path = PathBuf::from(args.next().ok_or(USAGE)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let fixtures = Fixtures::load(&fixtures_path).map_err(|error| error.to_string())?;
    let emulator = Emulator::start_on(fixtures, port).map_err(|error| error.to_string())?;
    print_summary(&emulator);
    // Serves on background threads until the process is stopped.
    loop {
        std::thread::park();
    }
}

fn print_summary(emulator: &Emulator) {
    let base = emulator.url();
    let tid = emulator.tenant_id();
    println!("Entra ID emulator listening on {base}");
    println!("  tenant    {tid}");
    println!("  client id {} (the API audience)", emulator.client_id());
    println!("  v1 issuer {}", emulator.v1_issuer());
    println!("  v2 issuer {}", emulator.v2_issuer());
    println!("  discovery {base}/{tid}/v2.0/.well-known/openid-configuration");
    println!("  JWKS      {}", emulator.v2_jwks_url());
    println!(
        "  secret    {} (the client secret)",
        emulator.client_secret()
    );
    println!("  authorize {}", emulator.authorize_endpoint());
    println!("  token     {}", emulator.token_endpoint());
    println!(
        "  graph     {} (for https://graph.microsoft.com)",
        emulator.graph_url()
    );
    println!();
    println!("users:");
    let fixtures = emulator.fixtures();
    for user in &fixtures.users {
        println!(
            "  {:<9} {:<28} {} groups",
            user.key,
            user.email,
            fixtures.transitive_groups(user).len()
        );
    }
    println!();
    println!("a token:  curl -s -X POST {base}/_admin/token -d '{{\"user\": \"ada\"}}'");
    println!(
        "sign in:  {}",
        emulator.authorize_url("http://127.0.0.1:9/callback", "state", "nonce", None)
    );
    println!("more:     {base}/");
}
