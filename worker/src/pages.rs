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

/// A small HTML page with `status`, from one of the pages above.
pub fn html(page: (&str, &str), status: u16) -> Response {
    respond(body(page), status)
}

/// A small HTML page with `status` whose text comes from the configuration (an app's
/// `custom_deny_message`): escaped, so it shows as written and cannot add markup or script.
pub fn html_text((title, message): (&str, &str), status: u16) -> Response {
    respond(body((&escape(title), &escape(message))), status)
}

/// The page's HTML; `title` and `message` are HTML already.
fn body((title, message): (&str, &str)) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>"
    )
}

/// The login chooser for the app named `app` (none: a target no app covers): a link per
/// identity provider, `(name, href)`. Plain HTML — a `main` landmark, a heading, a labelled
/// list of links a keyboard reaches in order, a visible focus ring — with no script (and a
/// `Content-Security-Policy` that would run none); every configured string is escaped.
pub fn chooser(app: Option<&str>, providers: &[(String, String)]) -> Response {
    let response = respond(chooser_body(app, providers), 200);
    with_csp(response)
}

/// The chooser's HTML.
fn chooser_body(app: Option<&str>, providers: &[(String, String)]) -> String {
    let title = match app {
        Some(app) => format!("Sign in to {}", escape(app)),
        None => "Sign in".to_owned(),
    };
    let items: String = providers
        .iter()
        .map(|(name, href)| {
            format!(
                "<li><a href=\"{}\">Sign in with {}</a></li>",
                escape(href),
                escape(name)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}\
         ul{{list-style:none;padding:0}}li{{margin:.6rem 0}}a{{display:block;padding:.8rem 1rem;border:1px solid #555;border-radius:.4rem;color:#0b3d91;text-decoration:none}}\
         a:hover{{background:#eef3fb}}a:focus{{outline:3px solid #0b57d0;outline-offset:2px}}</style></head>\
         <body><main aria-labelledby=\"chooser-title\"><h1 id=\"chooser-title\">{title}</h1><p id=\"chooser-hint\">Choose the organisation you sign in with.</p>\
         <nav aria-labelledby=\"chooser-hint\"><ul>{items}</ul></nav></main></body></html>"
    )
}

/// `response` with a `Content-Security-Policy` that runs no script and loads nothing.
pub fn with_csp(response: Response) -> Response {
    with_header(
        response,
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
    )
}

/// `text` as HTML text (also safe inside a quoted attribute).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn respond(body: String, status: u16) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_text_cannot_add_markup() {
        let message = "Ask <b>IT</b> & say \"hi\" <script>alert('x')</script>";
        let page = body((&escape("Access denied"), &escape(message)));
        assert!(page.contains(
            "<p>Ask &lt;b&gt;IT&lt;/b&gt; &amp; say &quot;hi&quot; \
             &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
        ));
        assert!(!page.contains("<b>") && !page.contains("<script>"));
    }

    #[test]
    fn the_chooser_escapes_every_configured_string_and_has_no_script() {
        let page = chooser_body(
            Some("Wiki <script>alert(1)</script>"),
            &[
                (
                    "Partner \"><img src=x onerror=alert(1)>".into(),
                    "/cdn-cgi/access/login?idp=a%22b&redirect_url=%2F".into(),
                ),
                (
                    "Entra ID".into(),
                    "/cdn-cgi/access/login?idp=entra&redirect_url=%2Fx".into(),
                ),
            ],
        );
        assert!(
            page.contains("<title>Sign in to Wiki &lt;script&gt;alert(1)&lt;/script&gt;</title>")
        );
        assert!(page.contains(
            "<li><a href=\"/cdn-cgi/access/login?idp=a%22b&amp;redirect_url=%2F\">Sign in with \
             Partner &quot;&gt;&lt;img src=x onerror=alert(1)&gt;</a></li>"
        ));
        assert!(page.contains("<main ") && page.contains("<nav ") && page.contains("<h1 "));
        let lower = page.to_ascii_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img") && !lower.contains("javascript:")
        );
        assert_eq!(
            chooser_body(None, &[])
                .matches("<title>Sign in</title>")
                .count(),
            1
        );
    }
}
