//! Writes every seed input to `DIR/<target>/seed-<name>` (`cargo xtask fuzz` writes them into
//! `fuzz/corpus/`): `cargo run --example seeds -- DIR`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: seeds DIR");
        return ExitCode::from(2);
    };
    match edge_access_fuzz::seeds::write(std::path::Path::new(&out)) {
        Ok(count) => {
            println!("{count} seed inputs written to {}", out.to_string_lossy());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
