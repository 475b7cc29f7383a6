//! `{prefix}/logout`.

use worker::{Env, Headers, Request, Response, Url};

use crate::config::Gateway;
use crate::error::Stop;
use crate::http::origin_of;
use crate::log;
use crate::pages::{self, Frame, Kind};
use crate::refusal::Refusal;
use crate::session::{self, Revocation};
use crate::time::UnixMillis;

/// `{prefix}/logout`: `GET` revokes this browser's session, a same-origin `POST` every
/// session of the user; both clear the cookie. A `POST` from anywhere else (another site's
/// form) is refused and revokes nothing.
pub async fn logout(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    scope: Revocation,
    request_id: &str,
) -> Result<Response, Stop> {
    let url = request.url()?;
    if scope == Revocation::Everywhere && !same_origin(request.headers(), &url) {
        log::event(
            "logout",
            &[("refused", "logout everywhere refused: not same-origin")],
        );
        return Err(Stop::Refused(Refusal::Forbidden {
            reason: "logout everywhere refused: not a same-origin request".into(),
            non_identity: true,
        }));
    }
    let now = UnixMillis::now();
    if let Some(token) = session::cookie(request.headers(), session::COOKIE) {
        if let Some(found) = session::lookup(env, gateway, &token, None, now).await? {
            session::revoke(env, &found, scope, now).await?;
            log::event(
                "logout",
                &[
                    ("user", &found.user),
                    ("scope", scope.as_str()),
                    ("request_id", request_id),
                ],
            );
        }
    }
    // Signed out: the page offers a new sign-in, and names no one.
    let frame = Frame {
        design: Some(&gateway.login_design),
        endpoints: Some(&gateway.endpoints),
        request_id: Some(request_id),
        ..Frame::default()
    };
    let response = pages::page(Kind::SignedOut, None, &frame, 200);
    Ok(pages::with_header(
        response,
        "Set-Cookie",
        &session::clear_cookie(),
    ))
}

/// Whether the request comes from the gateway's own origin: its `Origin` is this origin, or
/// (without `Origin`) its fetch metadata says `same-origin`.
fn same_origin(headers: &Headers, url: &Url) -> bool {
    match headers.get("Origin").ok().flatten() {
        Some(origin) => origin.trim() == origin_of(url),
        None => headers
            .get("Sec-Fetch-Site")
            .ok()
            .flatten()
            .is_some_and(|site| site.trim().eq_ignore_ascii_case("same-origin")),
    }
}
