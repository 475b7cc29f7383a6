#![doc = include_str!("../README.md")]

mod admin;
mod assertion;
mod config;
mod config_store;
mod context;
mod crypto;
mod custom_pages;
mod d1;
mod directory;
mod distinguished_name;
mod endpoints;
mod error;
mod gate;
mod graph;
mod http;
mod identity;
mod key_refresh;
mod keys;
mod log;
mod login_design;
mod pages;
mod pending;
#[cfg(feature = "phase-profile")]
mod profile;
mod proxy;
mod raw_url;
mod refusal;
mod routes;
mod scim;
mod sealed;
mod service_token;
mod session;
mod session_store;
mod signin;
mod signing;
mod time;

use worker::{event, Context, Env, Request, Response, Result};

pub use error::GatewayError;

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    Ok(routes::dispatch(request, &env).await)
}
