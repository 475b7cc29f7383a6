//! The edge-access gateway (filled in by the edge gateway work).
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::error("edge-access: not configured", 503)
}
