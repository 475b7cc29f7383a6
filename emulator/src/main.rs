//! `entra-emulator [--port N] [--fixtures FILE]`: the Entra ID emulator on 127.0.0.1 until
//! Ctrl-C, for people and for `cargo xtask dev`.
//!
//! `entra-emulator --provision URL --scim-token TOKEN [--dialect default|aadOptscim062020]
//! [--external-id objectId|mailNickname] [--nest-groups] [--fixtures FILE]`: instead, Entra's
//! provisioning service once, users' `externalId` mapped from `objectId` (the gateway's
//! documented set-up; Entra's own default is `mailNickname`): one
//! provisioning cycle of the fixture directory against the SCIM endpoint at URL (Test
//! Connection, users, groups, memberships, then an update, a member removal, a disable and a
//! delete; see `entra_emulator::provisioning`), then the report. As in Entra's
//! Tenant URL, `?aadOptscim062020` at the end of URL selects that dialect.

#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on stderr"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use entra_emulator::fixtures::Fixtures;
use entra_emulator::provisioning::{CycleOptions, Dialect, Directory, ExternalId, ScimClient};
use entra_emulator::Emulator;

const USAGE: &str = "usage: entra-emulator [--port N] [--fixtures FILE]\n       \
                     entra-emulator --provision URL --scim-token TOKEN \
                     [--dialect default|aadOptscim062020] [--external-id objectId|mailNickname] \
                     [--nest-groups] [--fixtures FILE]";

/// The flag Entra reads at the end of a Tenant URL.
const DIALECT_FLAG: &str = "?aadOptscim062020";

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
    let mut provision: Option<String> = None;
    let mut scim_token: Option<String> = None;
    let mut dialect: Option<Dialect> = None;
    let mut external_id: Option<ExternalId> = None;
    let mut nest_groups = false;
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
            "--provision" => provision = Some(args.next().ok_or(USAGE)?),
            "--scim-token" => scim_token = Some(args.next().ok_or(USAGE)?),
            "--dialect" => {
                let value = args.next().ok_or(USAGE)?;
                dialect = Some(value.parse().map_err(|error| format!("{error}"))?);
            }
            "--external-id" => {
                let value = args.next().ok_or(USAGE)?;
                external_id = Some(value.parse().map_err(|error| format!("{error}"))?);
            }
            "--nest-groups" => nest_groups = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let fixtures = Fixtures::load(&fixtures_path).map_err(|error| error.to_string())?;
    if let Some(url) = provision {
        let token = scim_token.ok_or("--provision needs --scim-token")?;
        let external_id = external_id.unwrap_or(ExternalId::ObjectId);
        return provision_once(&fixtures, &url, &token, dialect, external_id, nest_groups);
    }
    if scim_token.is_some() || dialect.is_some() || external_id.is_some() || nest_groups {
        return Err(format!(
            "--scim-token, --dialect, --external-id and --nest-groups go with --provision\n{USAGE}"
        ));
    }
    let emulator = Emulator::start_on(fixtures, port).map_err(|error| error.to_string())?;
    print_summary(&emulator);
    // Serves on background threads until the process is stopped.
    loop {
        std::thread::park();
    }
}

/// One provisioning cycle of the fixture directory against the SCIM endpoint at `url`.
fn provision_once(
    fixtures: &Fixtures,
    url: &str,
    token: &str,
    dialect: Option<Dialect>,
    external_id: ExternalId,
    nest_groups: bool,
) -> Result<(), String> {
    let (url, flagged) = match url.strip_suffix(DIALECT_FLAG) {
        Some(url) => (url, true),
        None => (url, false),
    };
    let dialect = match (dialect, flagged) {
        (Some(Dialect::Default), true) => {
            return Err(format!(
                "`{DIALECT_FLAG}` in the URL and --dialect default disagree"
            ))
        }
        (Some(dialect), _) => dialect,
        (None, true) => Dialect::AadOptscim062020,
        (None, false) => Dialect::Default,
    };
    let directory = Directory::from_fixtures(fixtures);
    let options = CycleOptions {
        nest_groups,
        ..CycleOptions::for_directory(&directory)
    };
    let client = ScimClient::new(url, token, dialect).with_external_id(external_id);
    println!(
        "provisioning {} users and {} groups to {url} (externalId ← {external_id})",
        directory.users.len(),
        directory.groups.len()
    );
    let report = client
        .run_cycle(&directory, &options)
        .map_err(|error| format!("{error}"))?;
    println!("{report}");
    Ok(())
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
            user.upn,
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
