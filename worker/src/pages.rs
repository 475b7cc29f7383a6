//! The pages the gateway answers with. They reveal nothing about policies or why a check failed.

use worker::{Headers, Response};

pub const UNAUTHORIZED: (&str, &str) = (
    "Sign-in required",
    "You need to sign in to reach this page.",
);
pub const FORBIDDEN: (&str, &str) = (
    "Access denied",
    "You signed in, but you do not have access to this application.",
);
pub const FORBIDDEN_NON_IDENTITY: (&str, &str) = (
    "Access denied",
    "Access to this application is not available from here.",
);
pub const GROUPS_UNAVAILABLE: (&str, &str) = (
    "Sign-in could not finish",
    "Your group memberships could not be read from the directory, so access cannot be decided. Try again shortly.",
);
pub const SIGN_IN_FAILED: (&str, &str) = (
    "Sign-in could not finish",
    "The sign-in could not be completed. Go back to the application and sign in again.",
);
pub const SIGNED_OUT: (&str, &str) = ("Signed out", "You are signed out of this application.");
pub const BAD_REQUEST: (&str, &str) = (
    "Bad request",
    "The address of this request is not accepted.",
);
pub const NOT_FOUND: (&str, &str) = ("Not found", "There is no application at this address.");
pub const UNAVAILABLE: (&str, &str) = (
    "Temporarily unavailable",
    "This application cannot be reached right now. Try again shortly.",
);
pub const ERROR: (&str, &str) = (
    "Something went wrong",
    "The gateway cannot serve this request. The administrators have been notified in the logs.",
);

/// A small HTML page with `status`.
pub fn html((title, message): (&str, &str), status: u16) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>"
    );
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/html; charset=utf-8");
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body.into_bytes())
}

/// `response` with one more header.
pub fn with_header(response: Response, name: &str, value: &str) -> Response {
    let headers = response.headers().clone();
    let _ = headers.set(name, value);
    response.with_headers(headers)
}
